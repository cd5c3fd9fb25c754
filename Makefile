# The project's commands. Each one installs what it needs first (see scripts/setup.sh).
.PHONY: demo test fmt

demo:
	@scripts/demo.sh

test:
	@scripts/test.sh

fmt:
	cargo fmt --all
