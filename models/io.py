"""Saving and loading models on local paths, safely.

Loading always uses ``safe_mode=True`` so a ``.keras`` file from elsewhere cannot run
code, and a model file is checked against the sha256 its writer recorded before Keras
reads a byte of it. Safe mode alone is not enough: Keras 3.15 refuses Lambda layers and
TFSMLayer under it, but loads a config whose activation names ``os.system`` or
``builtins.eval``. So the archive's config is read first, and any class or function
from outside Keras is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any


class ModelIntegrityError(RuntimeError):
    """A model file does not match the checksum recorded when it was written."""


class UnsafeModelError(ValueError):
    """A model file whose config names code from outside Keras."""


def _foreign_objects(node: Any, found: list[str]) -> None:
    if isinstance(node, dict):
        module = node.get("module")
        if module is not None and not (module == "keras" or str(module).startswith("keras.")):
            found.append(f"{module}.{node.get('registered_name') or node.get('config') or node.get('class_name')}")
        for value in node.values():
            _foreign_objects(value, found)
    elif isinstance(node, list):
        for value in node:
            _foreign_objects(value, found)


def check_config(path: str | os.PathLike) -> None:
    """Refuse a ``.keras`` archive whose config names a class or function outside Keras."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as error:
        raise UnsafeModelError(
            f"model file {path} is not a Keras 3 archive ({error}); save it with model.save()"
        ) from None
    found: list[str] = []
    _foreign_objects(config, found)
    if found:
        raise UnsafeModelError(
            f"model file {path} names code from outside Keras: {', '.join(sorted(set(found)))}; kerasflow "
            "loads only Keras's own layers and functions, so this file could run that code. Rebuild the model "
            "from Keras layers (or the zoo) and register that."
        )


def sha256_file(path: str | os.PathLike, *, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so large models do not fill memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def save_model(model: Any, path: str | os.PathLike) -> str:
    """Save ``model`` as a ``.keras`` file atomically; return its sha256.

    The file is written beside its destination and renamed, so a crash never leaves a
    truncated ``model.keras`` that a later step could mistake for a finished one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial.keras")
    model.save(partial)
    os.replace(partial, path)
    return sha256_file(path)


def export_saved_model(model: Any, directory: str | os.PathLike) -> Path:
    """Export ``model`` as a TensorFlow SavedModel (endpoint ``serve``) for TF Serving.

    Written into a private folder and renamed into place, like ``save_model``.
    """
    directory = Path(directory)
    partial = directory.with_name(f".{directory.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.export(os.fspath(partial), format="tf_saved_model", verbose=False)
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(partial, directory)
    return directory


def load_model(path: str | os.PathLike, *, expected_sha256: str | None = None) -> Any:
    """Load a ``.keras`` file with ``safe_mode=True``, verifying its checksum first."""
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise ModelIntegrityError(
                f"model file {path} has sha256 {actual}, expected {expected_sha256} as "
                "recorded when it was registered; the file was changed or corrupted. "
                "Re-register the model from its training run instead of editing it."
            )
    check_config(path)
    import keras  # deferred: reading the registry must not pay TensorFlow's start-up

    return keras.saving.load_model(path, safe_mode=True)
