# The project's commands. Each one installs what it needs first (see scripts/setup.sh).
.PHONY: demo test bench fmt

demo:
	@scripts/demo.sh

test:
	@scripts/test.sh

bench:
	@bench/run.sh

fmt:
	cargo fmt --all
