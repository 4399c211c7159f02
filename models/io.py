"""Saving and loading models on local paths, safely.

Loading always uses ``safe_mode=True`` so a ``.keras`` file from elsewhere cannot run
code (Lambda layers, arbitrary functions), and a model file is checked against the
sha256 its writer recorded before Keras reads a byte of it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any


class ModelIntegrityError(RuntimeError):
    """A model file does not match the checksum recorded when it was written."""


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
    import keras  # deferred: reading the registry must not pay TensorFlow's start-up

    return keras.saving.load_model(path, safe_mode=True)
