# Two commands do all set-up on a fresh machine:
#   make demo   - create .venv, install, fetch the Delta jars, run the flights example repository end to end
#   make test   - same set-up, then lint + the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
JARS   := $(VENV)/.jars-stamp
PYTEST_ARGS ?=

.PHONY: demo test test-all setup jars java lint bench cluster-up cluster-down clean

java:
	@scripts/check_java.sh

$(STAMP): pyproject.toml | java
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench,demo]'
	@touch $(STAMP)

setup: $(STAMP)

# Spark resolves the Delta Lake jars from Maven Central on first use; do it once, visibly.
$(JARS): $(STAMP)
	$(PY) -m engine.session --fetch-jars
	@touch $(JARS)

jars: $(JARS)

# the flights example (examples/flights) through the generic job: ingest, apply, backfill, train, score, monitor
demo: $(JARS)
	$(PY) -m jobs.run --repo examples/flights

lint: $(STAMP)
	$(PY) -m ruff check engine jobs tests benchmarks notebooks examples

# CI's suite: everything but the `extended` tests (the 30-minute budget on 2 cores)
test: $(JARS) lint
	$(PY) -m pytest -m "not extended" $(PYTEST_ARGS)

# the whole suite, extended tests included (~1 h on 2 cores)
test-all: $(JARS) lint
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(JARS)
	$(PY) -m benchmarks.asof_bench

cluster-up: $(JARS)
	scripts/cluster.sh up

cluster-down:
	scripts/cluster.sh down

clean:
	rm -rf warehouse .pytest_cache .ruff_cache .hypothesis
