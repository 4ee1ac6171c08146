# neoactions — every task of the project. `make help` lists them.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTO_FILES := $(shell find proto -name '*.proto')
#: `make run PORT=50052 DATA_DIR=/tmp/na`: the port `make run` serves on and its data directory
PORT ?= 50051
#: `make run HTTP_PORT=8081`: the port of the dashboard and HTTP ingest (`HTTP_PORT=-1`: no HTTP)
HTTP_PORT ?= 8080
DATA_DIR ?= .neoactions

.PHONY: help install run test test-fast check lint typecheck proto proto-check client client-check bench clean
.PHONY: buf-lint buf-breaking ts-test plugins-registry
TS_DIR := clients/typescript
BUF := $(TS_DIR)/node_modules/.bin/buf
#: `make buf-breaking BUF_AGAINST=<buf input>`: what proto/ must stay compatible with
#: (default: the newest v* tag, else the commit that put proto/ under buf)
BUF_AGAINST ?=

help:
	@grep -E '^[a-z-]+:.*?## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) with $$($(PY) --version 2>&1)"
	@$(PY) -m venv $(VENV)
	@echo "==> upgrading pip"
	@$(BIN)/pip install -q --upgrade pip
	@echo "==> installing neoactions and its dev tools into $(VENV) (about a minute the first time)"
	@set -o pipefail; $(BIN)/pip install --progress-bar off -e '.[dev]' | { grep -E '^(Collecting|Successfully)' || true; }
	@touch $(STAMP)
	@echo "==> installed: $(BIN)/neoactions ($$($(BIN)/neoactions --version))"

install: $(STAMP) ## create .venv and install neoactions with its dev tools

run: $(STAMP) ## serve on the embedded store (no PostgreSQL or Redis needed); PORT=50051 HTTP_PORT=8080 DATA_DIR=.neoactions
	$(BIN)/neoactions serve --port $(PORT) --http-port $(HTTP_PORT) --data-dir $(DATA_DIR)

test: $(STAMP) ## run the whole test suite
	$(BIN)/pytest -q

test-fast: $(STAMP) ## unit and contract tests only
	$(BIN)/pytest -q tests/unit tests/contract

lint: $(STAMP) ## ruff
	$(BIN)/ruff check proto server sandboxes plugins clients tests bench
	$(BIN)/ruff format --check server sandboxes plugins clients tests bench

typecheck: $(STAMP) ## mypy --strict
	$(BIN)/mypy -p neoactions.domain -p neoactions.server -p neoactions.sandboxes -p neoactions.plugins -p neoactions.client

proto: $(STAMP) ## regenerate the *_pb2 modules from proto/
	$(BIN)/python -m grpc_tools.protoc -I proto --python_out=proto --pyi_out=proto --grpc_python_out=proto $(PROTO_FILES)

proto-check: $(STAMP) ## fail when the committed generated code drifted from proto/
	@tmp=$$(mktemp -d); \
	$(BIN)/python -m grpc_tools.protoc -I proto --python_out=$$tmp --pyi_out=$$tmp --grpc_python_out=$$tmp $(PROTO_FILES); \
	status=0; \
	for f in $$(cd $$tmp && find . -name '*_pb2*.py*'); do \
	  if ! cmp -s $$tmp/$$f proto/$$f; then echo "drift: proto/$$f (run make proto)"; status=1; fi; \
	done; \
	rm -rf $$tmp; exit $$status

client: $(STAMP) ## regenerate the blocking client from the asyncio one
	$(BIN)/python scripts/gen_sync_client.py

client-check: $(STAMP) ## fail when the blocking client drifted from the asyncio one
	$(BIN)/python scripts/gen_sync_client.py --check

$(TS_DIR)/node_modules/.installed: $(TS_DIR)/package.json $(TS_DIR)/package-lock.json
	cd $(TS_DIR) && npm ci --no-audit --no-fund
	@touch $@

buf-lint: $(TS_DIR)/node_modules/.installed ## buf lint of proto/ (rules: proto/buf.yaml)
	$(BUF) lint proto

buf-breaking: $(TS_DIR)/node_modules/.installed ## fail on a breaking change to proto/ (BUF_AGAINST=...)
	@against='$(BUF_AGAINST)'; \
	if [ -z "$$against" ]; then \
	  base=$$(git describe --tags --abbrev=0 --match 'v*' 2>/dev/null || git log --diff-filter=A --format=%H -- proto/buf.yaml | tail -1); \
	  against=".git#ref=$$base,subdir=proto"; \
	fi; \
	echo "buf breaking proto --against $$against"; \
	$(BUF) breaking proto --against "$$against"

ts-test: $(TS_DIR)/node_modules/.installed $(STAMP) ## the TypeScript client's suite (builds it, runs real servers)
	cd $(TS_DIR) && npm test

check: lint typecheck proto-check client-check buf-lint buf-breaking test ## everything CI runs

plugins-registry: $(STAMP) ## build, sign and publish the example plugins into plugins/registry/build
	$(BIN)/python plugins/registry/build.py plugins/registry/build

bench: $(STAMP) ## benchmarks; results go to docs/benchmarks.md
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache $(DATA_DIR)
