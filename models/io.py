"""Saving and loading models on local paths, safely.

A model file from the registry is untrusted input. Loading checks it against the sha256
its writer recorded, then bounds and inspects the archive before Keras reads a byte of it
(:mod:`archive_check`: member sizes, config depth, the objects it names, stored weights
against what the config builds), then loads it with ``safe_mode=True``. Every refusal is
a :class:`ModelFileError` naming the offending object or bound, once.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kerasflow.models.archive_check import (
    DEFAULT_LIMITS,
    ArchiveLimits,
    ModelFileError,
    UnsafeModelError,
    check_archive,
    root_cause,
)
from kerasflow.models.column_types import column_type, input_dtype, serving_names
from kerasflow.models.input_names import input_names
from kerasflow.models.number_block import model_feed, takes_block

__all__ = [
    "SERVING_INPUT",
    "ArchiveLimits",
    "ModelFileError",
    "ModelIntegrityError",
    "ModelLoadError",
    "UnsafeModelError",
    "export_saved_model",
    "import_trusted_packages",
    "load_model",
    "save_model",
    "sha256_file",
]


# The package of kerasflow's own registered layers (``kerasflow>FillMissing``).
OWN_PACKAGE = "kerasflow"
# The ``serve`` signature's argument of a model taking one tensor (images, arrays) its builder did not name.
SERVING_INPUT = "inputs"
# What Keras names an input nobody named: its symbolic tensor's name, numbered by what the process built before.
_UNNAMED_INPUT = re.compile(r"keras_tensor(_\d+)?")


class ModelIntegrityError(ModelFileError):
    """A model file does not match the checksum recorded when it was written."""


class ModelLoadError(ModelFileError):
    """A model file that passed every check but that Keras could not load; names Keras's cause."""


def sha256_file(path: str | os.PathLike, *, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so large models do not fill memory.

    Args:
        path: a local file.
        chunk_size: bytes read at a time.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def save_model(model: Any, path: str | os.PathLike) -> str:
    """Save ``model`` as a ``.keras`` file atomically; return its sha256.

    The file is written beside its destination and renamed, so a crash never leaves a
    truncated ``model.keras`` that a later step could mistake for a finished one.

    Args:
        model: the Keras model.
        path: the local ``.keras`` file to write; its folder is made when missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial.keras")
    model.save(partial)
    os.replace(partial, path)
    return sha256_file(path)


def export_saved_model(
    model: Any, directory: str | os.PathLike, *, column_types: Mapping[str, str] | None = None
) -> Path:
    """Export ``model`` as a TensorFlow SavedModel (endpoint ``serve``) for TF Serving.

    Written into a private folder and renamed into place, like ``save_model``.

    Args:
        model: the Keras model; a typed table's (a dict of column inputs) gets a signature naming each column,
            a model of one tensor input one naming it :data:`SERVING_INPUT` unless its builder named it.
        directory: the local folder to write; one that exists is replaced.
        column_types: a typed table's columns and types, in order; needed when the model takes its numbers as
            one block (models/number_block.py), whose signature still takes one argument per column.

    Returns:
        ``directory``, as a Path.

    Raises:
        ValueError: the model takes a numbers block and ``column_types`` is not given.
    """
    directory = Path(directory)
    partial = directory.with_name(f".{directory.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    if takes_block(model):
        _export_block_model(model, partial, column_types=column_types)
    else:
        signature = _serving_signature(model)
        model.export(os.fspath(partial), format="tf_saved_model", verbose=False, input_signature=signature)
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(partial, directory)
    return directory


def _serving_signature(model: Any) -> list[Any] | None:
    """The ``serve`` signature's inputs: a typed table's columns under names a signature allows, or one tensor."""
    try:
        inputs = model.input
    except AttributeError:  # a Sequential model: its Input, when it has one, is in ``inputs`` alone
        inputs = getattr(model, "inputs", None) or []
        if len(inputs) != 1:
            return None  # a Sequential model without an Input, never called: Keras derives the signature itself
        inputs = inputs[0]
    import tensorflow as tf

    if isinstance(inputs, list | tuple):
        return None  # several tensors (a team's builder): Keras derives the signature itself
    if not isinstance(inputs, dict):
        # Keras names an input nobody named after its symbolic tensor (keras_tensor_281), numbered by what the
        # process built before, so each retraining could rename the argument a client passes; a builder's own
        # name (the zoo's text model's ``text``) is kept.
        name = SERVING_INPUT if _UNNAMED_INPUT.fullmatch(inputs.name) else inputs.name
        return [tf.TensorSpec(shape=inputs.shape, dtype=inputs.dtype, name=name)]

    # Keyed by the inputs' names (a column's own, or the safe one models/input_names.py gives it).
    keys = list(inputs)
    names = serving_names(keys)
    return [
        {
            key: tf.TensorSpec(shape=inputs[key].shape, dtype=inputs[key].dtype, name=name)
            for key, name in zip(keys, names, strict=True)
        }
    ]


def _export_block_model(model: Any, directory: Path, *, column_types: Mapping[str, str] | None) -> None:
    """Export a model taking a table's numbers as one block with a ``serve`` signature of one argument per column.

    A client without kerasflow passes a table by its columns, as it did before the block: the
    signature stacks the number columns into the block inside the SavedModel (one ``tf.stack``).
    """
    if not column_types:
        raise ValueError("received a model taking a numbers block without column_types, expected the table's columns")
    import keras
    import tensorflow as tf

    names = input_names(column_types)
    arguments = serving_names([names[column] for column in column_types])
    inputs = model.input
    specs = {}
    for (column, type_name), argument in zip(column_types.items(), arguments, strict=True):
        dtype = input_dtype(column_type(type_name).storage)
        specs[column] = tf.TensorSpec(shape=(None,), dtype=dtype, name=argument)
        if names[column] in inputs:  # a column of its own: the model's input says its shape and dtype
            spec = inputs[names[column]]
            specs[column] = tf.TensorSpec(shape=spec.shape, dtype=spec.dtype, name=argument)

    def serve(columns):
        return model(model_feed(columns, types=column_types, block=True), training=False)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serve", fn=serve, input_signature=[specs])
    archive.write_out(os.fspath(directory), verbose=False)


def import_trusted_packages(trusted_packages: Iterable[str]) -> tuple[str, ...]:
    """Import the packages whose registered Keras classes a model may use, so they are registered.

    Args:
        trusted_packages: importable package names (``mylayers``).

    Returns:
        The names, as a tuple.

    Raises:
        ModelLoadError: a package cannot be imported.
    """
    names = tuple(trusted_packages)
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise ModelLoadError(
                f"trusted package {name!r} cannot be imported ({error}); install it where the model is loaded"
            ) from None
    return names


def load_model(
    path: str | os.PathLike,
    *,
    expected_sha256: str | None = None,
    trusted_packages: Iterable[str] = (),
    limits: ArchiveLimits = DEFAULT_LIMITS,
) -> Any:
    """Load a ``.keras`` file with ``safe_mode=True`` after verifying its checksum and contents.

    Args:
        path: a local ``.keras`` file.
        expected_sha256: the checksum recorded when the file was written; checked first.
        trusted_packages: packages whose classes registered with
            ``keras.saving.register_keras_serializable(package=...)`` the file may use.
        limits: the bounds the archive must keep.

    Raises:
        ModelFileError: the file was changed, breaks a bound, names code kerasflow does
            not load, or Keras could not load it; the message names which, once.
    """
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise ModelIntegrityError(
                f"model file {path} has sha256 {actual}, expected {expected_sha256} as "
                "recorded when it was registered; the file was changed or corrupted. "
                "Re-register the model from its training run instead of editing it."
            )
    # kerasflow's own layers (models/layers.py: a typed table's missing-value fill) are always trusted.
    import kerasflow.models.layers  # noqa: F401 - registers them with Keras

    trusted = (OWN_PACKAGE, *(p for p in import_trusted_packages(trusted_packages) if p != OWN_PACKAGE))
    check_archive(path, trusted_packages=trusted, limits=limits)
    import keras  # deferred: reading the registry must not pay TensorFlow's start-up

    try:
        # compile=False: kerasflow measures models from their predictions and never trains a
        # loaded one as it was compiled, so the compile config (loss, metrics, optimizer) is
        # neither needed nor deserialized; a team's own loss by import path stays in training.
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # noqa: BLE001 - the file passed every check; say what Keras found
        raise ModelLoadError(f"model file {path} could not be loaded by Keras: {root_cause(error)}") from None
