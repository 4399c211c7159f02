"""Where a run's artifacts live under the storage root.

Layout (DESIGN.md)::

    <root>/datasets/<fingerprint>/     materialized datasets, immutable
    <root>/runs/<run-id>/              backup/, model.keras, tensorboard/, metrics.json
    <root>/registry/                   the model registry

TensorFlow only ever reads and writes local paths. This slice supports a local root;
the registry alone already works on any fsspec URL.
"""

from __future__ import annotations

from pathlib import Path

from tasks.config import ConfigError


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def local_root(root: str) -> Path:
    """The local folder of a storage root, refusing URLs TensorFlow cannot write to here."""
    if not is_local(root):
        raise ConfigError(
            f"received storage.root={root!r}: datasets and training runs need a local root "
            "in this version (remote roots for them arrive with the data issue); use a local "
            "folder, or point only the registry elsewhere"
        )
    return Path(root.removeprefix("file://"))


def datasets_dir(root: str) -> Path:
    return local_root(root) / "datasets"


def run_dir(root: str, run_id: str) -> Path:
    return local_root(root) / "runs" / run_id


def registry_url(root: str) -> str:
    return f"{root.rstrip('/')}/registry"
