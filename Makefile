# The project's commands. Each one installs what it needs first (see scripts/setup.sh).
.PHONY: demo test bench fmt chaos

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
