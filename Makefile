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

# CI's suite: every suite that proves a promise (unit, Spark, properties, repositories, jobs, README,
# notebooks, reliability: crash / concurrency / hostile / soak of 20 inserts / faults, the standalone
# cluster); only the `extended` tests are left out. Prints the slowest tests and the total time.
test: $(JARS) lint
	$(PY) -m pytest -m "not extended" --durations=25 $(PYTEST_ARGS)

# everything, with the full 200-insert soak and the extended tests
test-all: $(JARS) lint
	FF_SOAK_INSERTS=200 $(PY) -m pytest --durations=25 $(PYTEST_ARGS)

bench: $(JARS)
	$(PY) -m benchmarks.asof_bench

cluster-up: $(JARS)
	scripts/cluster.sh up

cluster-down:
	scripts/cluster.sh down

clean:
	rm -rf warehouse .pytest_cache .ruff_cache .hypothesis
