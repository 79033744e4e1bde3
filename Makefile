# Cloudcart: `make run` serves the shop locally, `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 7071
DATA_DIR ?= .data

.PHONY: run test install install-dev lint typecheck pytest bench bench-tools browser-tools clean

$(BIN)/python:
	@$(PYTHON) -c "import sys; assert sys.version_info >= (3, 11), sys.version" || { echo "Python 3.11+ is required (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files make the installs re-run only when a requirements file changes.
$(VENV)/.local-installed: $(BIN)/python requirements.txt requirements-local.txt pyproject.toml
	$(BIN)/pip install --quiet -r requirements-local.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.local-installed requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.local-installed

install-dev: $(VENV)/.dev-installed node_modules/.installed browser-tools

run: install
	$(BIN)/cloudcart serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR) --demo

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install-dev
	$(BIN)/mypy

pytest: install-dev
	PATH="$(CURDIR)/node_modules/.bin:$$PATH" $(BIN)/pytest

test: lint typecheck pytest

bench: install-dev
	$(BIN)/python -m benchmarks.cold_start
	$(BIN)/python -m benchmarks.documents

# wrk drives the HTTP benchmarks (benchmarks/storefront_http.py) from C, so the client is
# never the bottleneck; Debian packages it.
bench-tools:
	command -v wrk >/dev/null || apt-get install -y wrk || sudo apt-get install -y wrk

# The browser tests (tests/browser) drive Debian's Chromium through Playwright; Playwright's
# own browser download is not used. A fresh image may have no package lists yet, hence the
# update before the retry. The tests read the same variable.
CLOUDCART_CHROMIUM ?= /usr/bin/chromium
export CLOUDCART_CHROMIUM
browser-tools:
	@test -x $(CLOUDCART_CHROMIUM) \
	  || apt-get install -y chromium \
	  || { apt-get update && apt-get install -y chromium; } \
	  || { sudo apt-get update && sudo apt-get install -y chromium; }

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache
