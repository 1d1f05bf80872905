# Two commands on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint setup servers clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## make run: install, migrate, create the first admin and the demo site, serve on :8000
run: $(STAMP)
	$(BIN)/hub migrate
	$(BIN)/hub bootstrap
	$(BIN)/hub serve

servers:
	@bash tests/start-servers.sh

## make test: install, start the test servers, lint, run every test
test: $(STAMP) servers
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) data .pytest_cache
