# The two commands: `make serve` (a working server with embedded defaults) and `make test`.
#
# Installs come from the lock files in requirements/ (exact versions and hashes of every
# package), so every machine gets the same set: serve.txt holds what running a node needs,
# test.txt adds the test and lint tools. pyproject.toml keeps version ranges for people who
# `pip install chatcore` into their own projects; `make lock` turns those ranges into new locks,
# and `make test-latest` runs the suite on the newest versions the ranges allow.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check
# The package itself is installed editable on top of the locked set, without resolving again.
INSTALL_PROJECT := $(PIP) install --no-deps --no-build-isolation -e .
# pytest workers (pytest-xdist), each taking whole files (--dist loadfile: a module starts its
# server once). e2e modules start server processes that mostly wait on I/O,
# so two per core keeps a 2-core machine busy.
TEST_WORKERS ?= 4

.PHONY: install install-test serve test test-cluster test-latest lock lint typecheck clean bench bench-tools

install: $(VENV)/.serve-installed
install-test: $(VENV)/.test-installed

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "chatcore needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.serve-installed: requirements/serve.txt pyproject.toml | $(BIN)/python
	$(PIP) install --require-hashes --no-deps -r requirements/serve.txt
	$(INSTALL_PROJECT)
	touch $@

$(VENV)/.test-installed: requirements/test.txt pyproject.toml | $(BIN)/python
	$(PIP) install --require-hashes --no-deps -r requirements/test.txt
	$(INSTALL_PROJECT)
	touch $@ $(VENV)/.serve-installed

serve: install
	$(BIN)/chatcore serve --config config/server.toml

# One pytest session: unit, contract and end-to-end tests, the core protocol suites of tests/e2e
# also on 2-node PostgreSQL + Redis and PostgreSQL + NATS clusters (CHATCORE_TEST_DEPLOYMENTS,
# see tests/e2e/conftest.py). PYTEST_ARGS adds options, e.g. `make test
# PYTEST_ARGS=--store-module-durations` (tests/conftest.py) or `PYTEST_ARGS="-k search"`.
test: install-test lint typecheck
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Only the core protocol suites, only on the clusters.
test-cluster: install-test
	CHATCORE_TEST_DEPLOYMENTS=redis,nats $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m core_suite tests/e2e -q

# The lock files, from pyproject.toml's ranges (uv is fetched into a tool venv of its own).
# test.txt is resolved first and constrains serve.txt, so both agree on every shared package.
LOCK := .venv-tools/bin/uv pip compile --universal --python-version 3.11 --generate-hashes --quiet
lock:
	test -x .venv-tools/bin/uv || { $(PYTHON) -m venv .venv-tools && .venv-tools/bin/pip install --quiet uv; }
	$(LOCK) pyproject.toml requirements/build.in --extra test -o requirements/test.txt
	$(LOCK) pyproject.toml requirements/build.in --extra all -c requirements/test.txt -o requirements/serve.txt

# The suite on the newest versions pyproject.toml allows, in a venv of its own. Run it before
# `make lock`, and now and then (a new release of a dependency breaks users who install with
# pip before it breaks us).
test-latest:
	rm -rf .venv-latest && $(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip --quiet install --upgrade -r requirements/build.in
	.venv-latest/bin/python -m pip --quiet install --upgrade --no-build-isolation -e ".[test]"
	.venv-latest/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# chatcore against a bare Python relay and a Node relay, same run, with progress on stderr (the
# whole run: about 3.5 minutes on a quiet 2-core machine, 211 s measured; up to 6 when other
# work shares it; --quick: under a minute). Needs node and taskset, PostgreSQL for its rows. Results land in
# bench/results/.
bench: install-test bench-tools
	$(BIN)/python bench/harness.py $(BENCH_ARGS)

bench-tools:
	@command -v node >/dev/null || { echo "make bench needs Node.js (node) for its load generator"; exit 1; }
	test -d bench/node/node_modules/ws || npm ci --prefix bench/node --no-audit --no-fund

lint: install-test
	$(BIN)/ruff check chatcore plugins tests examples scripts bench

typecheck: install-test
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .venv-latest .venv-tools .pytest_cache .ruff_cache .mypy_cache
