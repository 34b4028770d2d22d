# Everything runs inside .venv, installed from this project's own files.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-all

.PHONY: install run test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $(STAMP)

install: $(STAMP)

## Run the whole pipeline on the embedded defaults (data under ./var).
run: install
	$(BIN)/pikcha run

## Run the full test suite.
test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: install
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

## Run every benchmark; figures land in benchmarks/results/*.json.
bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
