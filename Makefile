# Two commands on a fresh clone: `make run` and `make test` (and `make bench` for the numbers).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The test tools (pytest, ruff, mypy, Playwright...) come on top, for make test only.
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint setup servers clean bench bench-quick screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP)

setup: $(DEV_STAMP)

## make run: install, migrate, create the first admin and the demo site, serve on :8000
run: $(STAMP)
	$(BIN)/hub migrate
	$(BIN)/hub bootstrap
	$(BIN)/hub serve

servers:
	@bash tests/start-servers.sh

## make test: install, start the test servers, lint (ruff, import contracts, mypy), run
## every test, and print the coverage of hub/, channels/, agent_console/ and storage/
test: $(DEV_STAMP) servers lint
	$(BIN)/pytest --cov --cov-report=term

## make screenshots: the browser tests, saving the pictures the docs show into docs/img
## (a plain `make test` saves them under test-artifacts/ and changes no tracked file)
screenshots: $(DEV_STAMP) servers
	HUB_DOCS_IMG=docs/img $(BIN)/pytest -p no:xdist -q tests/test_browser_chat.py \
		tests/test_browser_email.py tests/test_browser_visitors.py tests/test_browser_calls.py

## make bench: install, run every benchmark against its baseline (under 10 minutes on
## 2 cores), write the table to bench/results.md
bench: $(DEV_STAMP)
	$(BIN)/python -m bench.run

## make bench-quick: small sizes, for trying the harness on a busy machine
bench-quick: $(DEV_STAMP)
	$(BIN)/python -m bench.run --quick

## make lint: ruff, the import contracts of pyproject.toml ([tool.importlinter]), and mypy
## ([tool.mypy]: which folders, how strict)
lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache
