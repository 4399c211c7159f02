"""Which objects a model file's config may name: Keras's modeling objects, looked up.

A ``.keras`` config names the classes and functions Keras will build. Keras 3.15's safe
mode refuses Python lambdas, but resolves any name it can find (``os.system`` as an
activation, ``keras.src.saving`` functions, a function reached through
``keras.applications``) and any class registered with Keras's serialization registry by
any package the process imported. So each object of the config is resolved here the way
Keras would resolve it, without importing anything, and accepted only when the object
found is one of:

- a Keras layer, initializer, regularizer, constraint, loss, metric, optimizer, learning
  rate schedule or dtype policy defined by Keras itself (never ``Lambda``, ``TFSMLayer``
  or the wrappers of other frameworks' code);
- an activation, loss or metric *function* of Keras;
- a class of that kind registered with ``keras.saving.register_keras_serializable`` under
  a package the caller trusts (``package>Name``). A registered *function* is refused even
  from a trusted package: a function in a config is called with tensors the model never
  checks, and a team's layer can carry any function it needs as code.

Everything else is refused by name, with the path of the node in the config.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

from kerasflow.models import private_apis

# Nodes Keras decodes itself, and what each may carry.
_DATA_NODES = {"__keras_tensor__", "__tensor__", "__numpy__", "__bytes__", "__ellipsis__", "__slice__"}
_CODE_NODES = {"__lambda__": "a Python lambda", "__typespec__": "a TensorFlow TypeSpec class"}
# Arrays in a config hold numbers or text; a dtype like "V6000000000" is a 6 GB allocation.
SAFE_DTYPES = frozenset(
    ["bool", "string", "str"]
    + [f"{kind}{bits}" for kind in ("int", "uint") for bits in (8, 16, 32, 64)]
    + ["float16", "bfloat16", "float32", "float64", "complex64", "complex128"]
)
# Layers that run code or read files the config names: refused even though Keras defines them.
_REFUSED_LAYERS = ("Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer")
_KINDS = "layer, initializer, regularizer, constraint, loss, metric or optimizer"
# Config keys of Keras's lookup layers that, given a string, name a file Keras opens.
_PATH_KEYS = ("vocabulary", "idf_weights")


@cache
def _keras_parts() -> tuple[tuple[type, ...], tuple[type, ...], frozenset[int], tuple[str, ...]]:
    """(allowed base classes, refused classes, ids of allowed functions, builtin modules)."""
    import keras

    bases = (
        keras.layers.Layer,
        keras.initializers.Initializer,
        keras.regularizers.Regularizer,
        keras.constraints.Constraint,
        keras.losses.Loss,
        keras.metrics.Metric,
        keras.optimizers.Optimizer,
        keras.optimizers.schedules.LearningRateSchedule,
        keras.DTypePolicy,
    )
    refused = tuple(getattr(keras.layers, name) for name in _REFUSED_LAYERS if hasattr(keras.layers, name))
    functions = frozenset(
        id(obj) for obj in private_apis.keras_builtin_functions() if callable(obj) and not isinstance(obj, type)
    )
    return bases, refused, functions, private_apis.builtin_keras_modules()


def _registered() -> dict[str, Any]:
    """Keras's global registry of serializable objects: the dict itself, as Keras consults it when loading."""
    import keras

    return keras.saving.get_custom_objects()


def _trusted(registered_name: str, trusted_packages: Iterable[str]) -> bool:
    package, sep, _ = registered_name.partition(">")
    return bool(sep) and package in set(trusted_packages)


def _resolve_class(node: dict[str, Any]) -> tuple[Any, str | None]:
    """(the class Keras would build for ``node``, its registered name if it came from the registry)."""
    class_name, module = node["class_name"], node.get("module")
    registered_name = node.get("registered_name") or class_name
    registry = _registered()
    if isinstance(registered_name, str) and registered_name in registry:
        return registry[registered_name], registered_name
    if not isinstance(module, str) or not isinstance(class_name, str):
        return None, None
    if module == "keras" or module.startswith("keras."):
        found = private_apis.public_symbol(f"{module}.{class_name}")
        if found is not None:
            return found, None
    if module.startswith("keras.src."):
        # Keras imports the module by name here; only one that is already loaded is looked in.
        loaded = sys.modules.get(module)
        return (vars(loaded).get(class_name) if loaded is not None else None), None
    return None, None


def _resolve_function(node: dict[str, Any]) -> tuple[Any, str | None]:
    name, module = node.get("config"), node.get("module")
    if not isinstance(name, str):
        return None, None
    registry = _registered()
    for key in (name, node.get("registered_name")):
        if isinstance(key, str) and key in registry:
            return registry[key], key
    if not isinstance(module, str):
        return None, None
    if module == "builtins":
        for builtin in _keras_parts()[3]:
            found = private_apis.public_symbol(f"keras.{builtin}.{name}")
            if found is not None:
                return found, None
        return None, None
    if module == "keras" or module.startswith("keras."):
        return private_apis.public_symbol(f"{module}.{name}"), None
    return None, None


def _describe(node: dict[str, Any]) -> str:
    name = node.get("config") if node.get("class_name") == "function" else node.get("class_name")
    return f"{node.get('module')!s}.{name!s}" + (
        f" (registered as {node['registered_name']!r})" if node.get("registered_name") not in (None, name) else ""
    )


def refusal(node: dict[str, Any], *, trusted_packages: Iterable[str] = ()) -> str | None:
    """Why the object ``node`` (a dict with ``class_name``) may not be loaded, or None when it may.

    Args:
        node: one object of a model config as Keras serializes it: ``class_name``, and ``config``, ``module``
            and ``registered_name`` where it has them.
        trusted_packages: packages whose classes registered with ``keras.saving.register_keras_serializable``
            may load.
    """
    class_name = node.get("class_name")
    if not isinstance(class_name, str):
        return f"an object whose class_name is {class_name!r}"
    if class_name in _CODE_NODES:
        return _CODE_NODES[class_name]
    if class_name in _DATA_NODES:
        inner = node.get("config") if isinstance(node.get("config"), dict) else {}
        dtype = inner.get("dtype")
        if (
            class_name in ("__tensor__", "__numpy__", "__keras_tensor__")
            and dtype not in SAFE_DTYPES
            and not (class_name == "__keras_tensor__" and dtype is None)
        ):
            return f"a {class_name} of dtype {dtype!r} (expected one of {sorted(SAFE_DTYPES)})"
        return None
    bases, refused, functions, _ = _keras_parts()
    if class_name == "function":
        obj, registered_name = _resolve_function(node)
        if registered_name is not None:
            return f"the registered function {registered_name!r} (only registered classes of trusted packages load)"
        if obj is None or id(obj) not in functions:
            return f"the function {_describe(node)}, which is not a Keras activation, loss or metric"
        return None
    obj, registered_name = _resolve_class(node)
    if not isinstance(obj, type):
        named = node.get("registered_name")
        if isinstance(named, str) and ">" in named:
            package = named.partition(">")[0]
            return (
                f"the registered class {named!r} from a package the recipe does not trust "
                f"(trusted: {sorted(set(trusted_packages)) or 'none'}; list {package!r} in model.trusted_packages, "
                f"or pass --trust {package} to kerasflow predict)"
            )
        return f"{_describe(node)}, which is not a Keras class"
    if registered_name is not None:
        if not _trusted(registered_name, trusted_packages):
            return (
                f"the registered class {registered_name!r} from a package the recipe does not trust "
                f"(trusted: {sorted(set(trusted_packages)) or 'none'}; list {registered_name.partition('>')[0]!r} "
                "in model.trusted_packages, or pass --trust to kerasflow predict)"
            )
    elif not obj.__module__.startswith("keras.src."):
        return f"{_describe(node)}, which is not defined by Keras"
    if issubclass(obj, refused):
        return f"a {obj.__name__} layer, which runs code or reads files the model file names"
    if not issubclass(obj, bases):
        return f"{_describe(node)}, which is not a Keras {_KINDS}"
    return None


def trusted_modules(config: Any, *, trusted_packages: Iterable[str]) -> list[str]:
    """Modules of trusted packages that define the registered classes ``config`` names.

    A package registers its layers when the module defining them is imported, which its
    ``__init__`` may not do; these modules are imported before the check, so a trusted
    package's layer is found wherever it lives. Only modules inside a trusted package
    qualify, so a file cannot make kerasflow import anything else.

    Args:
        config: a model's config (``config.json`` parsed), searched at every depth.
        trusted_packages: the package names the caller trusts.

    Returns:
        The module names, sorted, each made of Python identifiers.
    """
    trusted = set(trusted_packages)
    found: set[str] = set()
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            named, module = node.get("registered_name"), node.get("module")
            if isinstance(named, str) and isinstance(module, str) and ">" in named:
                package = named.partition(">")[0]
                inside = module == package or module.startswith(package + ".")
                if package in trusted and inside and all(part.isidentifier() for part in module.split(".")):
                    found.add(module)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return sorted(found)


def refusals(config: Any, *, trusted_packages: Iterable[str] = (), max_depth: int = 200) -> Iterator[str]:
    """Every object of ``config`` that may not be loaded, as ``"<where>: <why>"``.

    Plain strings are checked too: Keras resolves a string such as an activation name in
    its registry of serializable objects before anything else.

    Args:
        config: a model's config (``config.json`` parsed), or a part of it.
        trusted_packages: packages whose registered classes may load.
        max_depth: the deepest nesting of dicts and lists walked; a node deeper is reported and the walk stops.

    Yields:
        One refusal per object, ``<where>`` being the node's path from ``config`` (``config.layers[0].config``).
    """
    trusted = tuple(trusted_packages)
    registry = _registered()

    def short(where: str) -> str:
        return where if len(where) <= 120 else f"{where[:40]}…{where[-60:]}"

    stack: list[tuple[Any, str, int]] = [(config, "config", 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth > max_depth:
            yield f"{short(where)}: nested deeper than {max_depth} levels"
            return
        if isinstance(node, dict):
            if "class_name" in node:
                why = refusal(node, trusted_packages=trusted)
                if why is not None:
                    yield f"{short(where)}: {why}"
                    continue
            for key in _PATH_KEYS:
                if isinstance(node.get(key), str):
                    yield f"{short(where)}.{key}: a file or URL {node[key][:80]!r} that Keras would read"
            stack.extend((value, f"{where}.{key}", depth + 1) for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, f"{where}[{i}]", depth + 1) for i, value in enumerate(node))
        elif (
            isinstance(node, str)
            and node in registry
            and not (isinstance(registry[node], type) and _trusted(node, trusted))
        ):
            yield f"{short(where)}: the registered object {node!r} from a package the recipe does not trust"
