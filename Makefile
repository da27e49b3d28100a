# One task runner for people and CI. `make demo` and `make test` are the README's two commands.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Bytecode is cached outside the tree (in the venv), not turned off: compiling shoal's sources
# at every start cost the server about 0.3 s of its start-up (W6 of bench/).
unexport PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX := $(CURDIR)/$(VENV)/pycache

.PHONY: install system-deps node-deps demo test check lint fmt typecheck unit conformance integration test-pg bench bench-full proto clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q src
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the dashboard's browser tests (Playwright drives it; it never downloads one).
system-deps:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# The Node example worker's gRPC packages, from the lock file.
node-deps: examples/node-worker/node_modules/.installed
examples/node-worker/node_modules/.installed: examples/node-worker/package-lock.json
	cd examples/node-worker && npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: install
	$(BIN)/shoal demo

fmt: install
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts

lint: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_sizes.py

typecheck: install
	$(BIN)/mypy

check: lint typecheck

unit: install
	$(BIN)/pytest tests/unit -q

conformance: install
	$(BIN)/pytest tests/conformance -q

integration: install
	$(BIN)/pytest tests/integration -q

test-pg: install
	SHOAL_TEST_POSTGRES_URL=$${SHOAL_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/postgres} \
		$(BIN)/pytest -m postgres -q

# The whole suite: static checks, then every tier.
test: check system-deps node-deps
	$(BIN)/pytest -q

# The benchmark workloads W1-W6 beside the reference limits, in one run (about ten minutes).
bench: install
	$(BIN)/python -m bench.run --quick

# Everything, with the 1,000,000-job backlogs and the full durations.
bench-full: install
	$(BIN)/python -m bench.run --full
	$(BIN)/python -m bench.store_bench --jobs 100000
	$(BIN)/python -m bench.dashboard_bench --jobs 1000000

# Regenerate the gRPC code from proto/ (CI checks it is in sync: tests/unit/test_proto_in_sync.py).
proto: install
	$(BIN)/python scripts/gen_proto.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist src/*.egg-info
