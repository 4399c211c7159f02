"""Builders: the registry of functions that make a model, and the checks of their contract.

A builder is any callable ``build(*, input_spec, **params) -> keras.Model`` (see
:mod:`input_spec`). It is named in a recipe in one of two ways:

- ``model.family: digits_cnn``: a name in this registry (models/plugins.py). The zoo's
  builders register themselves (``@register_builder("digits_cnn")``) when the zoo is
  first asked for one; a team's code can add its own, and an installed package can
  through the ``kerasflow.builders`` entry point group;
- ``model.builder: "mypackage.models:build"``: any importable function, which is what a
  deployment, a worker or another process can always find.

The model it returns may be uncompiled (kerasflow compiles it from the recipe's training
section) or compiled (kept as it is). Everything that can be checked before training is
checked here, each with one "received ..., expected ..." message.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import re
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

from kerasflow.models.errors import ConfigError
from kerasflow.models.families import FAMILIES
from kerasflow.models.input_spec import InputSpec
from kerasflow.models.plugins import PluginRegistry

Builder = Callable[..., Any]
REFERENCE = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*")


class BuilderError(ConfigError):
    """A builder that cannot be found, called or trusted to fit the task; a config error."""


# The zoo's builders register when models/zoo.py is imported, the first time one is asked for.
BUILDER_REGISTRY: PluginRegistry[Builder] = PluginRegistry(
    setting="model.family",
    group="kerasflow.builders",
    built_in={family: "kerasflow.models.zoo" for family in FAMILIES},
    error=BuilderError,
    accepts=callable,
)
BUILDERS: dict[str, Builder] = BUILDER_REGISTRY.items


def register_builder(name: str) -> Callable[[Builder], Builder]:
    """Register ``function`` under ``name`` so a recipe can say ``model.family: <name>``.

    Args:
        name: the name a recipe's ``model.family`` gives.

    Returns:
        A decorator that registers the function and returns it unchanged; it raises BuilderError when
        another function is registered under ``name``.
    """

    def register(function: Builder) -> Builder:
        existing = BUILDER_REGISTRY.items.get(name)
        if existing is not None and existing is not function:
            raise BuilderError(f"received a second builder for {name!r}, expected one builder per name")
        BUILDER_REGISTRY.register(name, function)
        return function

    return register


def family_names() -> list[str]:
    """Every name ``model.family`` may take, without importing a builder (so without Keras)."""
    return BUILDER_REGISTRY.names()


def resolve(reference: str) -> Builder:
    """The builder a recipe names: a registered name or ``package.module:function``.

    Args:
        reference: a ``model.family`` name, or a ``package.module:function`` reference (``model.builder``).

    Raises:
        BuilderError: no builder has that name, or the reference cannot be imported or is not callable.
    """
    if ":" not in reference:
        found = BUILDER_REGISTRY.find(reference)
        if found is None:
            raise BuilderError(
                f"received model family {reference!r}, expected one of {family_names()} "
                "or model.builder: 'package.module:function'"
            )
        return found
    function = import_reference(reference, what="model.builder", expected="'package.module:function'")
    if not callable(function):
        raise BuilderError(f"received model.builder={reference!r}, a {type(function).__name__}, expected a function")
    return function


# The operator's bound on what a recipe may import (model.builder, training.loss, metrics and
# callbacks): a comma-separated list of top-level packages. A recipe is code: whoever can
# start a run (--set, the UI's Custom run form) could otherwise name any module on the worker.
RECIPE_PACKAGES = "KERASFLOW_RECIPE_PACKAGES"


def allowed_recipe_packages() -> frozenset[str] | None:
    """The top-level packages a recipe may import from (``$KERASFLOW_RECIPE_PACKAGES``); None when unbounded."""
    raw = os.environ.get(RECIPE_PACKAGES)
    if raw is None or not raw.strip():
        return None
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


def import_reference(reference: str, *, what: str, expected: str = "'package.module:name'") -> Any:
    """``package.module:name`` -> the object, or a BuilderError naming what is missing.

    The one importer of the names a recipe gives (builders here; losses, metrics and
    callbacks in kerasflow/tasks/train/recipe_objects.py).

    Args:
        reference: ``package.module:name``.
        what: the recipe key that gave it, for the error message (``model.builder``).
        expected: the form the message says was expected.

    Raises:
        BuilderError: the reference is malformed, its module cannot be imported, or the module lacks the name.
    """
    if not REFERENCE.fullmatch(reference):
        raise BuilderError(f"received {what}={reference!r}, expected {expected}")
    module_name, name = reference.split(":")
    allowed = allowed_recipe_packages()
    if allowed is not None and module_name.split(".")[0] not in allowed:
        # Refused before the import: importing a module runs its code, with this process's credentials.
        raise BuilderError(
            f"received {what}={reference!r}, but recipes here may import only from {sorted(allowed)} "
            f"({RECIPE_PACKAGES}, set by whoever runs kerasflow); use a name from those packages, or ask the "
            f"operator to add {module_name.split('.')[0]!r}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise BuilderError(
            f"received {what}={reference!r}, but module {module_name!r} cannot be imported ({error}); "
            "put the folder that holds it on PYTHONPATH, or install its package where kerasflow runs"
        ) from None
    if not hasattr(module, name):
        raise BuilderError(f"received {what}={reference!r}, but {module_name} has no {name!r}")
    return getattr(module, name)


def check_params(reference: str, builder: Builder, params: Mapping[str, Any]) -> None:
    """Refuse ``params`` the builder does not take, listing the names it does.

    Args:
        reference: the builder's name or reference, for the error message.
        builder: the builder function.
        params: the recipe's ``model.params``.

    Raises:
        BuilderError: the builder takes neither ``input_spec`` nor ``**params``, or does not take one of ``params``.
    """
    try:
        signature = inspect.signature(builder)
    except (TypeError, ValueError):
        return  # a builtin or C callable: nothing to compare against
    parameters = signature.parameters
    if "input_spec" not in parameters and not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        raise BuilderError(
            f"received builder {reference!r} without an input_spec parameter, "
            "expected build(*, input_spec, **params) -> keras.Model"
        )
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = sorted(name for name, p in parameters.items() if name != "input_spec" and p.kind is not p.VAR_POSITIONAL)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise BuilderError(
            f"received model.params {unknown} that builder {reference!r} does not take, expected any of {accepted}"
        )


def check_model(reference: str, model: Any, spec: InputSpec) -> None:
    """Refuse a built object that is not a Keras model, or whose output does not fit the task.

    Args:
        reference: the builder's name or reference, for the error message.
        model: what the builder returned.
        spec: the input spec the builder was called with; its ``output_widths`` are the widths allowed.

    Raises:
        BuilderError: ``model`` is not a ``keras.Model``, or its output shape is not ``(None, width)`` with an
            allowed width.
    """
    import keras

    if not isinstance(model, keras.Model):
        raise BuilderError(
            f"received a {type(model).__module__}.{type(model).__name__} from builder {reference!r}, "
            "expected a keras.Model"
        )
    try:
        shape = tuple(model.output_shape)
    except (AttributeError, ValueError, TypeError):
        return  # a subclassed model not built yet: its first batch will tell
    width = shape[-1] if shape else None
    allowed = spec.output_widths
    if len(shape) != 2 or width not in allowed:
        classes = f" over {spec.num_classes} classes" if spec.num_classes else ""
        raise BuilderError(
            f"received a model from builder {reference!r} whose output has shape {shape}, expected "
            f"(None, {' or '.join(str(w) for w in allowed)}) for the {spec.task} task{classes}"
        )


def lineage(reference: str, builder: Builder) -> dict[str, str | None]:
    """What the registry records of the builder: its reference, package version and code identity.

    Args:
        reference: the builder's name or reference, as the recipe gave it.
        builder: the builder function.

    Returns:
        ``reference``; ``package``, the top-level package of the builder's module; ``package_version``, its
        installed version or None; ``code_sha256``, the SHA-256 of the module's source or None when the
        source cannot be read.
    """
    module = inspect.getmodule(builder)
    package = (module.__name__ if module else "").split(".")[0]
    try:
        version = metadata.version(package) if package else None
    except metadata.PackageNotFoundError:
        version = None
    try:
        source = inspect.getsource(module) if module else ""
    except (OSError, TypeError):
        source = ""
    return {
        "reference": reference,
        "package": package or None,
        "package_version": version,
        "code_sha256": hashlib.sha256(source.encode()).hexdigest() if source else None,
    }
