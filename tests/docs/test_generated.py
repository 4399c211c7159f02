"""The generated reference pages and the recipe schema are what the code generates now.

Each fails when the code changed and the committed file was not regenerated:
``make reference`` writes them all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kerasflow.flows.recipes import RECIPES_DIR, SCHEMA_FILE, SCHEMA_LINE, recipe_names
from kerasflow.tasks.config import reference

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_command_line_reference_is_the_commands_help():
    typer = Path(sys.executable).parent / "typer"
    generated = subprocess.run(
        [typer, "kerasflow.flows.cli", "utils", "docs", "--name", "kerasflow", "--title", "Command line reference"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (DOCS / "reference" / "cli.md").read_text() == generated, "docs/reference/cli.md is stale: make reference"


def test_the_model_families_page_lists_every_builder_with_its_params():
    committed = (DOCS / "reference" / "families.md").read_text()
    assert committed == reference.families_markdown(), "docs/reference/families.md is stale: make reference"
    assert "## `digits_cnn`" in committed and "| `filters` | `32` |" in committed


def test_the_recipe_schema_is_the_config_models_and_every_bundled_recipe_names_it():
    committed = (RECIPES_DIR / SCHEMA_FILE).read_text()
    assert committed == reference.recipe_schema(), "flows/recipes/recipe.schema.json is stale: make reference"
    schema = json.loads(committed)
    assert {"data", "model", "training", "gate", "storage"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False, "unknown top-level keys are refused, as the config refuses them"
    for name in recipe_names():
        assert (RECIPES_DIR / f"{name}.yaml").read_text().splitlines()[0] == SCHEMA_LINE, name
