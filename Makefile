# Two commands on a fresh machine: `make local` and `make test`. Every target installs what it needs
# (pinned, idempotent: stamp files are rebuilt only when their pins change).
SHELL := /bin/bash
.DEFAULT_GOAL := help
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
STAGE ?= sandbox
VENV := .venv
CLOUD_VENV := .venv-cloud
# node@22 (npm package) and the CDK CLI live in node_modules/.bin, first on PATH, ahead of the system Node 20.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export CDK_DISABLE_CLI_TELEMETRY := true
export PYTHONDONTWRITEBYTECODE := 1
# mypy's cache outside the checkout: a fresh clone (CI) on the same machine reuses what is unchanged
# (aws-cdk-lib's stubs are most of the work); mypy validates cached entries against the sources.
export MYPY_CACHE_DIR ?= $(HOME)/.cache/loosely-coupled-aws/mypy

VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
CLOUD_STAMP := $(CLOUD_VENV)/.installed

.PHONY: help setup toolchain synth lint lint-code audit openapi test test-fast local local-down local-reset deploy diagram bench gameday redrive redis graphviz chromium screenshots clean

help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV_STAMP): pyproject.toml constraints.txt
	[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CLOUD_STAMP): localcloud/requirements.txt
	[ -x $(CLOUD_VENV)/bin/python ] || $(PYTHON) -m venv $(CLOUD_VENV)
	$(CLOUD_VENV)/bin/python -m pip install -q --disable-pip-version-check -r localcloud/requirements.txt
	touch $@

redis: ## install Debian's redis-server when it is missing
	command -v redis-server >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; }

toolchain: $(VENV_STAMP) $(NODE_STAMP) ## Python venv + Node 22 + CDK CLI
	@echo "node $$(node --version), cdk $$(cdk --version), $$($(VENV)/bin/python --version)"

chromium: ## install Debian's chromium and chromium-driver (the browser tests' browser) when missing
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }

setup: toolchain $(CLOUD_STAMP) redis graphviz chromium ## everything: toolchain, local-cloud venv, redis-server, graphviz, chromium

# Extra context for synth and deploy, e.g. CONTEXT="-c certificateArn=arn:aws:acm:..." (production needs it).
CONTEXT ?=

synth: toolchain ## synthesize every stack into cdk.out (STAGE=sandbox|production|local; CONTEXT="-c key=value")
	cdk synth -c stage=$(STAGE) $(CONTEXT) --quiet

# Python sources ruff and mypy check (everything but caches, venvs and generated assemblies).
PY_SOURCES := app.py contracts lambdas localcloud scripts services stacks tests
# The Lambda contexts are top-level packages of the code asset (asset root lambdas/).
MYPY_TARGETS := app.py contracts localcloud scripts services stacks tests $(wildcard lambdas/*/)

lint-code: toolchain ## ruff (lint + format), mypy (strict on contracts and domain rules), OpenAPI drift
	$(VENV)/bin/ruff check $(PY_SOURCES)
	$(VENV)/bin/ruff format --check $(PY_SOURCES)
	$(VENV)/bin/mypy $(MYPY_TARGETS)
	$(VENV)/bin/python -m scripts.openapi --check

lint: lint-code synth audit ## lint-code, cfn-lint over every template in cdk.out, dependency audit
	$(VENV)/bin/cfn-lint --config-file .cfnlintrc.yaml -- cdk.out/*.template.json

audit: toolchain $(CLOUD_STAMP) ## pip-audit over .venv and .venv-cloud, npm audit; exceptions in audit-exceptions.toml
	$(VENV)/bin/python -m scripts.audit

openapi: toolchain ## regenerate docs/openapi.json from the API's routes and the contract's models
	$(VENV)/bin/python -m scripts.openapi

# Unit and infra tests start no servers: they run on one pytest-xdist worker per core (at most 4: each
# worker synthesizes the stages it needs), a test file per worker. Integration tests (fixed ports) and
# the e2e tests (one local cloud per machine) run in one process after them.
TEST_WORKERS ?= $(shell n=$$(nproc); echo $$(( n < 4 ? n : 4 )))
PARALLEL_TESTS := tests/unit tests/infra
SERIAL_TESTS := tests/integration tests/e2e

test: setup lint-code ## lint-code, then unit, integration, infra and end-to-end (local cloud) tests
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PARALLEL_TESTS)
	$(VENV)/bin/python -m pytest $(SERIAL_TESTS)

test-fast: toolchain $(CLOUD_STAMP) redis graphviz ## unit + integration + infra tests (no local cloud)
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PARALLEL_TESTS)
	$(VENV)/bin/python -m pytest tests/integration

local: setup ## deploy every stack to the local cloud and run the storefront scenario
	$(VENV)/bin/python -m localcloud up

local-down: ## stop what `make local` started (the cloud's state is kept for the next `make local`)
	[ -x $(VENV)/bin/python ] && $(VENV)/bin/python -m localcloud down || true

local-reset: ## stop the local cloud and delete its saved state
	[ -x $(VENV)/bin/python ] && $(VENV)/bin/python -m localcloud down --reset || true

deploy: toolchain ## deploy to a real account: AWS_PROFILE=... make deploy STAGE=sandbox
	cdk deploy --all -c stage=$(STAGE) $(CONTEXT) --require-approval broadening

graphviz: ## install Debian's graphviz (the `dot` renderer) when it is missing
	command -v dot >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq graphviz >/dev/null; }

diagram: toolchain graphviz ## draw docs/diagrams/*.png (overview + one per flow, AWS icons) from the synthesized app
	$(VENV)/bin/python -m scripts.diagram

# Flags of scripts/bench.py, e.g. `make bench BENCH_ARGS="--skip-clean-clone --runs 1"` (`--help` lists them).
BENCH_ARGS ?=
bench: setup ## every row of issue 10 (synth, suite, clean-clone make test, make local, orders, memory, imports); restarts the local cloud
	$(VENV)/bin/python -m scripts.bench $(BENCH_ARGS)

# QUEUE: a dead-letter queue or its work queue (name or URL); empty lists the DLQs with their depths.
# Flags of scripts/redrive.py, e.g. `make redrive QUEUE=<name> REDRIVE_ARGS="--local --dry-run"` (`--help` lists them).
QUEUE ?=
REDRIVE_ARGS ?=
redrive: toolchain ## move a DLQ's messages back to their source queue (QUEUE=<name>; StartMessageMoveTask, or a loop)
	$(VENV)/bin/python -m scripts.redrive $(QUEUE) $(REDRIVE_ARGS)

# Flags of scripts/gameday.py, e.g. `make gameday GAMEDAY_ARGS="--profile short"` (`--help` lists them).
GAMEDAY_ARGS ?=
gameday: setup ## ~1000 orders through the web ALB and the API while 7 faults are injected; docs/gameday.md + .png
	$(VENV)/bin/python -m scripts.gameday $(GAMEDAY_ARGS)

screenshots: setup ## docs/storefront-{catalog,cart,pay,order}.png from the storefront in headless Chromium (after make local)
	$(VENV)/bin/python -m scripts.screenshots

clean:
	rm -rf cdk.out .pytest_cache .build
