# The two commands: `make serve` (a working server with embedded defaults) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test test-cluster lint typecheck clean bench bench-tools

install: $(STAMP)

# Re-install only when the dependency list changes; the package itself is editable.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "chatcore needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

serve: install
	$(BIN)/chatcore serve --config config/server.toml

test: install lint typecheck
	$(BIN)/python -m pytest
	$(MAKE) test-cluster

# The core protocol suites again, each on a 2-node cluster (PostgreSQL + Redis, then
# PostgreSQL + NATS) with consecutive clients on different nodes. Only the core modules: the
# whole tests/e2e twice would add well over 4 minutes on a 2-core machine.
CLUSTER_SUITES := $(addprefix tests/e2e/test_e2e_,ws_send.py sync.py messages.py rooms.py live.py crash.py push.py)

test-cluster: install
	CHATCORE_TEST_CLUSTER=redis $(BIN)/python -m pytest $(CLUSTER_SUITES) -q
	CHATCORE_TEST_CLUSTER=nats $(BIN)/python -m pytest $(CLUSTER_SUITES) -q

# chatcore against a bare Python relay and a Node relay, same run (about 3.5 minutes; needs node
# and taskset; PostgreSQL for the storage rows). Results land in bench/results/.
bench: install bench-tools
	$(BIN)/python bench/harness.py $(BENCH_ARGS)

bench-tools:
	@command -v node >/dev/null || { echo "make bench needs Node.js (node) for its load generator"; exit 1; }
	test -d bench/node/node_modules/ws || npm ci --prefix bench/node --no-audit --no-fund

lint: install
	$(BIN)/ruff check chatcore plugins tests examples scripts bench

typecheck: install
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
