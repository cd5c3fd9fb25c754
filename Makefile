# The project's commands. Each one installs what it needs first (see scripts/setup.sh).
.PHONY: demo test bench fmt chaos test-odoo

demo:
	@scripts/demo.sh

test:
	@scripts/test.sh

bench:
	@bench/run.sh

# Fault tests on a throwaway PostgreSQL cluster (docs/deployment.md#failure-behaviour).
chaos:
	@tests/chaos/run.sh

fmt:
	cargo fmt --all

# Issue 15's scenarios against a real Odoo 19 (ODOO_URL, ODOO_DATABASE, DATABASE_URL); skips
# loudly when no Odoo answers.
test-odoo:
	tests/odoo/run.sh
