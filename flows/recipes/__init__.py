"""The bundled recipes: one YAML preset per case of the Keras guide."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from kerasflow.tasks.config import ConfigError, TrainConfig, load_config

RECIPES_DIR = Path(__file__).parent
# The first line of every bundled recipe: editors with a YAML language server complete and
# check its keys against the schema beside it (tasks/config/reference.recipe_schema).
SCHEMA_FILE = "recipe.schema.json"
SCHEMA_LINE = f"# yaml-language-server: $schema={SCHEMA_FILE}"


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def describe(name: str) -> str:
    """The first comment line of a recipe: what it trains on what (the editor's schema line skipped)."""
    for line in (RECIPES_DIR / f"{name}.yaml").read_text().splitlines():
        if line.startswith("#") and not line.startswith(SCHEMA_LINE.split("=", 1)[0]):
            return line.lstrip("# ").strip()
    return ""


def resolve(recipe: str) -> Path:
    """A bundled recipe name or a path to a YAML file."""
    if recipe.endswith((".yaml", ".yml")) or "/" in recipe:
        return Path(recipe)
    path = RECIPES_DIR / f"{recipe}.yaml"
    if not path.exists():
        raise ConfigError(f"received recipe {recipe!r}, expected one of {recipe_names()} or a path to a .yaml file")
    return path


def load_recipe(recipe: str = "digits", assignments: Iterable[str] = ()) -> TrainConfig:
    return load_config(resolve(recipe), assignments)
