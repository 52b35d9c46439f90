# Developer entry points. CI runs `make test` (see .ci/run); every step must pass.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_DB := sqlite:///$(CURDIR)/herald.sqlite

.PHONY: venv run test lint services services-stop bench tempest

venv: $(VENV)/.installed

# Reinstalled when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[test]'
	touch $@

run: venv
	$(BIN)/herald db upgrade --database $(RUN_DB)
	$(BIN)/herald serve --database $(RUN_DB)

# The whole suite with its services: PostgreSQL, RabbitMQ and Keystone (HERALD_REQUIRE_PG turns a missing
# service into a failure), then lint.
test: venv
	pg_env="$$(scripts/test-services)"; eval "$$pg_env"; HERALD_REQUIRE_PG=1 $(BIN)/pytest
	$(MAKE) lint

lint: venv
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports

services:
	scripts/test-services

services-stop:
	scripts/test-services stop

# Load test of both shapes and the power sync pass (bench/README.md); BENCH_ARGS="--shapes embedded" for one.
# Needs wrk, a Debian package (root installs it when missing); the cluster shape starts the test services
# (scripts/test-services) unless HERALD_TEST_PG_URL and HERALD_TEST_AMQP_URL are set.
bench: venv
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python -m bench $(BENCH_ARGS)

# Tempest's compute tests against herald serve behind a real Keystone (about ten minutes; not part of test).
tempest: venv
	scripts/tempest
