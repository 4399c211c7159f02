"""Keras's namespaces that a kerasflow process never uses load on first use, not at ``import keras``.

``import keras`` (which ``import tensorflow`` does too) executes the whole public API,
and three of its namespaces pull heavy optional packages the moment they are installed:
``keras.wrappers`` imports scikit-learn (and with it SciPy's statistics), ``keras.visualization``
imports ``matplotlib.pyplot``, and ``keras._tf_keras`` (the ``tf.keras`` alias) executes
the API a second time, the wrappers included. A kerasflow command uses none of them,
and they cost 2.0 s of CPU in every process: ``import tensorflow, keras,
tensorflow_datasets`` took 8.3-8.5 s of CPU here, 6.3-6.6 s with them deferred. The
suite starts about a hundred such processes, and a team's scheduled run pays it on
every start.

:func:`defer_unused_keras_namespaces` puts a placeholder for each in ``sys.modules``
before Keras is imported. A placeholder carries the real module's spec and path, so
Keras's own ``from keras import wrappers`` binds it and importing a submodule
(``tf.keras`` resolves to ``keras._tf_keras.keras``) works as before; the first
attribute read executes the real module into it. Nothing changes when Keras is already
imported, or when a namespace is missing from the installed Keras.

Only processes kerasflow starts call it (the ``kerasflow`` command, training workers):
``import kerasflow`` in a team's own code leaves Keras's import alone.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types

# The namespaces deferred, and why a kerasflow process does not need them at start.
DEFERRED = (
    "keras._tf_keras",  # the tf.keras alias: kerasflow uses Keras 3 directly
    "keras.wrappers",  # scikit-learn estimators wrapping Keras models
    "keras.visualization",  # bounding-box and image-gallery plots (matplotlib.pyplot)
    "keras.src.visualization",  # the same, inside keras.src
)


class _DeferredModule(types.ModuleType):
    """A module whose code runs on the first read of an attribute it does not have yet."""

    def _load(self) -> None:
        if not self.__dict__.get("_kerasflow_loaded"):
            self.__dict__["_kerasflow_loaded"] = True
            self.__spec__.loader.exec_module(self)

    def __getattr__(self, name: str):
        if self.__dict__.get("_kerasflow_loaded"):
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        self._load()
        return getattr(self, name)

    def __dir__(self) -> list[str]:
        self._load()
        return sorted(self.__dict__)


def defer_unused_keras_namespaces() -> list[str]:
    """Install the placeholders (before Keras is imported); the names deferred."""
    if "keras" in sys.modules:
        return []
    keras_spec = importlib.util.find_spec("keras")  # finds the package without importing it
    if keras_spec is None or not keras_spec.submodule_search_locations:
        return []
    package_folder = next(iter(keras_spec.submodule_search_locations))
    deferred = []
    for name in DEFERRED:
        folder = os.path.join(package_folder, *name.split(".")[1:])
        init = os.path.join(folder, "__init__.py")
        if name in sys.modules or not os.path.isfile(init):
            continue
        spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[folder])
        module = _DeferredModule(name)
        module.__spec__, module.__loader__, module.__file__ = spec, spec.loader, init
        module.__path__, module.__package__ = [folder], name
        sys.modules[name] = module
        deferred.append(name)
    return deferred
