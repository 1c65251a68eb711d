# The two commands that matter: `make test` (everything CI checks) and `make moto` (an
# emulator for development). Python tools live in .venv, Rust in the workspace.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

VENV := .venv
PYTHON ?= python3
# moto for the AWS adapter tests; changing the spec reinstalls it (the stamp holds the spec).
MOTO_SPEC := moto[server]>=5.1,<6
MOTO_STAMP := $(VENV)/.reimbi-moto
WITH_MOTO := infra/scripts/with-moto.sh

# What `make test` runs, in this order, against one moto server. Add steps here.
TEST_STEPS := fmt-check lint check-template cargo-test

.PHONY: test venv moto moto-stop fmt fmt-check lint cargo-test check-template bench build $(TEST_STEPS)

test: venv
	$(WITH_MOTO) $(MAKE) --no-print-directory $(TEST_STEPS)

venv: $(MOTO_STAMP)

$(MOTO_STAMP): Makefile
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	@if [ ! -f $@ ] || [ "$$(cat $@)" != '$(MOTO_SPEC)' ]; then \
		echo "installing $(MOTO_SPEC) into $(VENV)"; \
		$(VENV)/bin/pip install -q '$(MOTO_SPEC)'; \
		echo '$(MOTO_SPEC)' > $@; \
	fi
	@touch $@

moto: venv
	@$(WITH_MOTO) --serve

moto-stop:
	@$(WITH_MOTO) --stop

fmt:
	cargo fmt --all

fmt-check:
	cargo fmt --all --check

lint:
	cargo clippy --workspace --all-targets -- -D warnings

# The closing line sums every test binary's result, so a run's total is read in one place.
cargo-test:
	@mkdir -p target
	cargo test --workspace 2>&1 | tee target/cargo-test.log
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "\ntotal: %d passed, %d failed\n", p, f }' target/cargo-test.log

# The SAM template checks (infra/scripts/check-template.sh) need moto: started here unless
# this runs inside `make test`, whose server it reuses.
check-template: venv
	@if [ -f infra/scripts/check-template.sh ]; then \
		$(WITH_MOTO) bash infra/scripts/check-template.sh; \
	else \
		echo "check-template: infra/scripts/check-template.sh does not exist, nothing to check"; \
	fi

bench:
	cargo bench --workspace --benches

build:
	@if [ -f infra/scripts/build.sh ]; then bash infra/scripts/build.sh; else echo "build: infra/scripts/build.sh does not exist" >&2; exit 1; fi
