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
    """The first comment line of a recipe: what it trains on what (the editor's schema line skipped).

    Args:
        name: a bundled recipe's name (its file name without ``.yaml``).
    """
    for line in (RECIPES_DIR / f"{name}.yaml").read_text().splitlines():
        if line.startswith("#") and not line.startswith(SCHEMA_LINE.split("=", 1)[0]):
            return line.lstrip("# ").strip()
    return ""


def resolve(recipe: str) -> Path:
    """A bundled recipe name or a path to a YAML file.

    Args:
        recipe: a bundled recipe's name, or a path (one with a ``/`` or ending in ``.yaml``/``.yml``).

    Returns:
        The path of the recipe file; a path given is returned unchecked.

    Raises:
        ConfigError: ``recipe`` is neither a path nor a bundled recipe's name.
    """
    if recipe.endswith((".yaml", ".yml")) or "/" in recipe:
        return Path(recipe)
    path = RECIPES_DIR / f"{recipe}.yaml"
    if not path.exists():
        raise ConfigError(f"received recipe {recipe!r}, expected one of {recipe_names()} or a path to a .yaml file")
    return path


def load_recipe(recipe: str = "digits", assignments: Iterable[str] = ()) -> TrainConfig:
    """A bundled recipe or a recipe file, read with ``dotted.key=value`` overrides applied.

    Args:
        recipe: a bundled recipe's name (``kerasflow recipes`` lists them) or a path to a YAML file.
        assignments: ``dotted.key=value`` strings, values parsed as YAML.

    Raises:
        ConfigError: the recipe is unknown, its file missing or invalid, or the config is invalid.
    """
    return load_config(resolve(recipe), assignments)
