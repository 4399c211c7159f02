"""The recipe reference, generated from the config models so it cannot drift from them.

Every section of :class:`~kerasflow.tasks.config.TrainConfig` (tasks/config/__init__.py and
tasks/config/runtime.py) becomes a table of its keys: type, default and description.
``kerasflow recipes --reference`` prints it; docs/recipe-reference.md is that output,
and a test checks the committed file against the models.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

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
    """(dotted path, model) of ``model``'s nested sections, depth first; dict values as ``<key>``."""
    found: list[tuple[str, type[BaseModel]]] = [] if not path else [(path, model)]
    for name, field in model.model_fields.items():
        for suffix, inner in _nested_models(field.annotation):
            child = f"{path}.{name}{suffix}" if path else f"{name}{suffix}"
            if all(child != seen for seen, _ in found):
                found += sections(inner, child)
    return found


def section_model(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model a validation error's location (without its last part) points into."""
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
