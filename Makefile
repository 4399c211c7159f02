# The two commands of the README: `make run` and `make test`. Both need only Python 3.11+ and pip.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/kerasflow: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(BIN)/kerasflow
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/kerasflow
	$(BIN)/kerasflow train

test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check .

bench: $(VENV)/.dev
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/input_pipeline.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/resume.py
	$(BIN)/python bench/multiworker.py

clean:
	rm -rf $(VENV) .kerasflow .pytest_cache
