# The two commands of the README: `make run` and `make test`. Both need only Python 3.11+ and pip.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint imports docs reference package-tree bench screenshots clean module-seconds

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
# process, so a module fixture (the end-to-end server) starts once; the modules measured
# longest go first (tests/module_order.py), so no process is left alone with a long one at the end.
PYTEST_PROCESSES := -n 3 --dist loadfile --no-loadscope-reorder
test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(MAKE) --no-print-directory imports docs
	$(BIN)/python -m pytest $(PYTEST_PROCESSES)

# Measure each test module's seconds for the order above: a run of the whole suite (a run with
# failures still measures, so the figures are written either way).
module-seconds: $(VENV)/.dev
	$(BIN)/python -m pytest $(PYTEST_PROCESSES) --junitxml=.module-seconds.xml -q || true
	$(BIN)/python -m tests.module_order .module-seconds.xml > tests/module_seconds.json
	rm -f .module-seconds.xml

# import-linter and mkdocstrings read a package from its folder, and the editable install
# maps kerasflow.flows, .tasks and .models from the top-level folders: both read a tree of
# links shaped as the wheel installs them.
package-tree:
	rm -rf .import-tree && mkdir -p .import-tree/kerasflow
	cp kerasflow/__init__.py .import-tree/kerasflow/
	ln -s ../../flows ../../tasks ../../models .import-tree/kerasflow/

# The import contracts of .importlinter.
imports: $(VENV)/.dev package-tree
	cd .import-tree && PYTHONPATH=. ../$(BIN)/lint-imports ../.importlinter --no-cache

# The docs site (mkdocs.yml), built strict: a broken link, a page missing from the nav or a
# docstring mkdocstrings cannot read fails the build.
docs: $(VENV)/.dev package-tree
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Regenerate what the docs and the recipes take from the code (tests/docs/test_generated.py
# and tests/tasks/config/test_config.py fail when it is stale).
reference: $(VENV)/.dev
	$(BIN)/kerasflow recipes --reference > docs/recipe-reference.md
	$(BIN)/kerasflow recipes --schema > flows/recipes/recipe.schema.json
	$(BIN)/kerasflow recipes --families > docs/reference/families.md
	$(BIN)/typer kerasflow.flows.cli utils docs --name kerasflow --title "Command line reference" > docs/reference/cli.md
	$(BIN)/python -m tests.deferred_imports > docs/reference/deferred-imports.md

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
	rm -rf $(VENV) .kerasflow .pytest_cache .import-tree .site
