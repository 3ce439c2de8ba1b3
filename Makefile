# `make up` runs the product on the embedded default; `make test` runs lint, types and tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The console's third-party JavaScript and CSS, from the npm registry (package-lock.json).
ASSETS := node_modules/.installed

.PHONY: up serve test lint types pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(ASSETS): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(ASSETS)

up: $(STAMP) $(ASSETS)
	$(BIN)/crm up

serve: $(STAMP) $(ASSETS)
	$(BIN)/crm serve

lint: $(STAMP)
	$(BIN)/ruff check crm tests bench

types: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) $(ASSETS)
	$(BIN)/pytest -q

test: lint types pytest

bench: $(STAMP)
	$(BIN)/python -m bench.provisioning
	$(BIN)/python -m bench.migrate

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
