# The two commands of the README: `make run` and `make test`. Both need only Python 3.11+ and pip.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint imports bench screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(BIN)/kerasflow: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# One pip run for the project and its dev extras (a second run would resolve everything again).
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(BIN)/kerasflow

run: $(BIN)/kerasflow
	$(BIN)/kerasflow train

# Three test processes on two cores: much of the suite waits on subprocesses, servers and
# polls, so a third process fills the idle time (the whole suite here: 716 s with two, 616 s
# with three; the CPU 97 % busy at the median). --dist loadfile keeps a module in one
# process, so a module fixture (the end-to-end server) starts once.
test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(MAKE) --no-print-directory imports
	$(BIN)/python -m pytest -n 3 --dist loadfile

# The import contracts of .importlinter. import-linter reads a package from its folder, and
# the editable install maps kerasflow.flows, .tasks and .models from the top-level folders, so
# it reads a tree of links shaped as the wheel installs them.
imports: $(VENV)/.dev
	rm -rf .import-tree && mkdir -p .import-tree/kerasflow
	cp kerasflow/__init__.py .import-tree/kerasflow/
	ln -s ../../flows ../../tasks ../../models .import-tree/kerasflow/
	cd .import-tree && PYTHONPATH=. ../$(BIN)/lint-imports ../.importlinter --no-cache

# Regenerate the Prefect UI screenshots in docs/ (needs Debian's chromium).
screenshots: $(VENV)/.dev
	KERASFLOW_SCREENSHOTS=docs KERASFLOW_E2E_BROWSER=required $(BIN)/python -m pytest tests/deploy/test_e2e.py

lint: $(VENV)/.dev
	$(BIN)/ruff check .

bench: $(VENV)/.dev
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/input_pipeline.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/resume.py
	$(BIN)/python bench/multiworker.py

clean:
	rm -rf $(VENV) .kerasflow .pytest_cache .import-tree
