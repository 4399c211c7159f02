"""The references generated from the code, so they cannot drift from it.

- the recipe reference: every section of :class:`~kerasflow.tasks.config.TrainConfig`
  becomes a table of its keys: type, default and description (``kerasflow recipes
  --reference``, docs/recipe-reference.md);
- the recipe JSON Schema, which editors read to complete and check a recipe's keys
  (``kerasflow recipes --schema``, flows/recipes/recipe.schema.json; the bundled recipes
  name it on their first line);
- the model families: every registered builder with its params and defaults (``kerasflow
  recipes --families``, docs/reference/families.md).

Tests check each committed file against what these functions generate.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from kerasflow.models.builders import BUILDER_REGISTRY

HEADER = """# Recipe reference

Every key a recipe may hold, section by section (generated from `tasks/config/__init__.py` and
`tasks/config/runtime.py` by `kerasflow recipes --reference`; do not edit by hand).
Unknown keys are refused, with the closest valid key suggested. `--set a.b.c=value`
overrides one key; values are YAML.
"""


def reference_markdown() -> str:
    """The whole reference as Markdown."""
    from kerasflow.tasks.config import TrainConfig

    parts = [HEADER]
    for path, model in sections(TrainConfig):
        parts.append(_section_table(path, model))
    return "\n".join(parts)


def sections(model: type[BaseModel], path: str = "") -> list[tuple[str, type[BaseModel]]]:
    """(dotted path, model) of ``model``'s nested sections, depth first; dict values as ``<key>``.

    Args:
        model: a section's model (``TrainConfig`` for the whole tree).
        path: ``model``'s dotted path; empty: the root, which is not listed itself.
    """
    found: list[tuple[str, type[BaseModel]]] = [] if not path else [(path, model)]
    for name, field in model.model_fields.items():
        for suffix, inner in _nested_models(field.annotation):
            child = f"{path}.{name}{suffix}" if path else f"{name}{suffix}"
            if all(child != seen for seen, _ in found):
                found += sections(inner, child)
    return found


def section_model(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model a validation error's location (without its last part) points into.

    Args:
        root: the model the location starts from (``TrainConfig``).
        loc: the location's parts: field names, and keys of dict fields.

    Returns:
        The section's model; None when the location leads outside the sections (a value, an unknown key).
    """
    model: type[BaseModel] | None = root
    annotation: Any = None
    for part in loc:
        if annotation is not None:  # inside a dict: this part is a key of it
            value = typing.get_args(annotation)[1]
            model, annotation = _as_model(value)
            continue
        if model is None or part not in model.model_fields:
            return None
        model, annotation = _as_model(model.model_fields[part].annotation)
    return model if annotation is None else None


def _as_model(annotation: Any) -> tuple[type[BaseModel] | None, Any]:
    """(model, None) for a section, (None, the dict annotation) for a mapping, (None, None) otherwise."""
    for arg in _union_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg, None
        if typing.get_origin(arg) is dict:
            return None, arg
    return None, None


def _nested_models(annotation: Any, suffix: str = "") -> list[tuple[str, type[BaseModel]]]:
    model, mapping = _as_model(annotation)
    if model is not None:
        return [(suffix, model)]
    if mapping is not None:
        return _nested_models(typing.get_args(mapping)[1], f"{suffix}.<key>")
    return []


def _union_args(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _section_table(path: str, model: type[BaseModel]) -> str:
    doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    generic = doc.startswith(("Usage docs:", "A base class")) or not model.__doc__
    lines = [f"## `{path}`", ""]
    if doc and not generic:
        lines += [doc, ""]
    lines += ["| key | type | default | description |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        nested = _nested_models(field.annotation)
        description = field.description or ""
        if nested:
            description = (description + "; " if description else "") + f"section `{path}.{name}{nested[0][0]}`"
        row = [f"`{name}`", _type_text(field.annotation), _default_text(field), description]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return "\n".join(lines) + "\n"


def _type_text(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_text(a) for a in args)
    if origin in (dict, list, tuple):
        inner = ", ".join("…" if a is Ellipsis else _type_text(a) for a in args)
        return f"{origin.__name__}[{inner}]"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation))


def _default_text(field: Any) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, str):
            return "computed"  # from the environment (storage.root): see the description
    else:
        value = field.default
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "(section)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, dict | list | tuple) and not value:
        return "empty"
    return f"`{value}`"


def recipe_schema() -> str:
    """The JSON Schema of a recipe (the config models' validation schema), as formatted JSON."""
    import json

    from kerasflow.tasks.config import TrainConfig

    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **TrainConfig.model_json_schema(),
        "title": "kerasflow recipe",
    }
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


FAMILIES_HEADER = """# Model families

Every builder a recipe can name with `model.family` (generated by `kerasflow recipes
--families`; do not edit by hand), with the params `model.params` may set and their
defaults. A team's own builder is named with `model.builder: "package.module:function"`,
or registered under a family name of its own (Your own model).
"""


def families_markdown() -> str:
    """Every registered builder as a Markdown section: its summary, then a table of its params."""
    import inspect


    parts = [FAMILIES_HEADER]
    for name, builder in BUILDER_REGISTRY.load_all().items():
        summary = (inspect.getdoc(builder) or "").split("\n\n", 1)[0].replace("\n", " ")
        rows = [
            f"| `{param.name}` | `{_default(param.default)}` |"
            for param in inspect.signature(builder).parameters.values()
            if param.name != "input_spec" and param.kind is inspect.Parameter.KEYWORD_ONLY
        ]
        table = "| param | default |\n|---|---|\n" + "\n".join(rows) if rows else "No params."
        parts.append(f"## `{name}`\n\n{summary}\n\n{table}\n")
    return "\n".join(parts)


def _default(value: Any) -> str:
    import inspect

    if value is inspect.Parameter.empty:
        return "required"
    return repr(value)
