# Cloudcart: `make run` serves the shop locally, `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 7071
DATA_DIR ?= .data

.PHONY: run test install install-dev lint typecheck pytest bench bench-tools clean

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

install-dev: $(VENV)/.dev-installed node_modules/.installed

run: install
	$(BIN)/cloudcart serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR) --demo

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

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

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache
