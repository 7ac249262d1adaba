# carehub developer entry points; CI (.ci/run) calls the same targets, so what passes here passes there.
#
#   make dev     start the embedded all-in-one hub (SQLite, in-process delivery); HOST=… PORT=… to override
#   make test    start local Redis + PostgreSQL (and install Chromium) if needed, then pytest in TEST_WORKERS parallel
#                processes (pytest-xdist); PYTEST_ARGS=… to pass on
#   make check   ruff lint, ruff format check, mypy --strict
#   make bench   run the benchmarks in bench/ (needs Redis + PostgreSQL, started like for tests); BENCH_ARGS=… to pass on
#   make bootstrap   only install the pinned uv into .tools/ and sync .venv from uv.lock (the others do it first)

UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
# The stamp names the version, so bumping UV_VERSION reinstalls uv on every machine that already has .tools/.
UV_STAMP := $(TOOLS)/.uv-$(UV_VERSION)
VENV := .venv
BIN := $(VENV)/bin

# These machines cannot fetch interpreters from the network: fail fast if python3.11 is missing instead of hanging.
export UV_PYTHON_DOWNLOADS ?= never

# Only the source folders that exist yet: ruff and mypy fail on a path that is not there.
PY_DIRS := $(wildcard carehub channels workers tests bench)

HOST ?=
PORT ?=
PYTEST_ARGS ?=
# Most tests wait (on sockets, timers, other processes) more than they compute: three workers on two cores halve the
# suite's time (each worker has its own PostgreSQL database, Redis DB index and pub/sub prefix).
TEST_WORKERS ?= 3
BENCH_ARGS ?=

.DEFAULT_GOAL := bootstrap
.PHONY: bootstrap dev test check bench

$(UV_STAMP):
	test -x $(TOOLS)/bin/pip || python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	touch $@

# uv sync --frozen installs exactly uv.lock and is a sub-second no-op when .venv already matches it.
bootstrap: $(UV_STAMP)
	$(UV) sync --frozen

dev: bootstrap
	$(BIN)/carehub dev $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

test: bootstrap
	scripts/services-up
	scripts/browser-up
	$(BIN)/pytest -n $(TEST_WORKERS) --durations=15 $(PYTEST_ARGS)

check: bootstrap
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/mypy $(PY_DIRS)

# bench/__main__.py runs every benchmark; each measures its own baseline in the same run.
bench: bootstrap
	scripts/services-up
	$(BIN)/python -m bench $(BENCH_ARGS)
