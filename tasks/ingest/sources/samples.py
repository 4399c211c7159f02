"""The bundled samples: tables scikit-learn ships with its wheel, so a quickstart downloads nothing.

``digits`` (8x8 images of handwritten digits, the quickstart) is read straight from the
file scikit-learn bundles, ``sklearn/datasets/data/digits.csv.gz``, the file its
``load_digits`` reads: importing scikit-learn costs 2.1 s of CPU here against 0.014 s
for reading the file, and the sample's checksum is taken on every run (the fingerprint),
not only when it is materialized. Should a scikit-learn release move that file, its own
loader is used. The other tables come from scikit-learn's loaders.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from kerasflow.tasks.config import ConfigError, DataConfig
from kerasflow.tasks.data.source_data import SourceData
from kerasflow.tasks.ingest.sources import arrays, register_source

# The tables scikit-learn bundles (no download), by whether their target is a class or a number.
SAMPLE_TABLES: dict[str, str] = {"breast_cancer": "classes", "diabetes": "numbers"}


def sample_arrays(data: DataConfig) -> tuple[np.ndarray, np.ndarray, list[str], list[str] | None]:
    """(features, labels, class names, feature names) of the sample ``data.name``.

    Raises:
        ConfigError: ``data.name`` is not a bundled sample, or its target is a number and ``data.labels``
            is not ``numbers``.
    """
    if data.name == "digits":
        x, target = _digits()
        x = x.astype("float32")[..., None]  # (n, 8, 8, 1), values 0..16
        target_names: list = list(range(10))
        feature_names = None
    elif data.name in SAMPLE_TABLES:
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{data.name}")()
        x, target = bunch.data.astype("float32"), bunch.target
        # Only a table of classes names them (diabetes's target is a number).
        target_names = list(bunch.target_names) if SAMPLE_TABLES[data.name] == "classes" else []
        feature_names = [str(c) for c in bunch.feature_names]
    else:
        raise ConfigError(
            f"received data.name={data.name!r} for source 'sample', expected one of {['digits', *SAMPLE_TABLES]}"
        )
    if data.labels == "numbers":
        return x, target.astype("float32"), [], feature_names
    if SAMPLE_TABLES.get(data.name) == "numbers":
        raise ConfigError(
            f"received data.name={data.name!r} for a classifier, but its target is a number; "
            "set model.task: regression (the bundled recipe `diabetes` does)"
        )
    return x, target.astype("int64"), [str(c) for c in target_names], feature_names


def _digits() -> tuple[np.ndarray, np.ndarray]:
    """(images (n, 8, 8) float64, targets int64), as ``sklearn.datasets.load_digits`` gives them."""
    bundled = _bundled_file("digits.csv.gz")
    if bundled is None:
        from sklearn import datasets

        bunch = datasets.load_digits()
        return bunch.images, bunch.target
    rows = np.loadtxt(bundled, delimiter=",")  # 64 pixels then the digit, one image a row
    return rows[:, :-1].reshape(-1, 8, 8), rows[:, -1].astype("int64")


def _bundled_file(name: str) -> Path | None:
    """The path of a data file scikit-learn bundles, found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return None  # scikit-learn's own loader then says what is missing
    path = Path(spec.origin).parent / "datasets" / "data" / name
    return path if path.is_file() else None


class SampleSource:
    """``data.source: sample``: a table or images scikit-learn ships, named by its checksum."""

    def identify(self, data: DataConfig) -> dict[str, Any]:
        """What identifies the sample ``data.name``: its name, its content's SHA-256, and how it is cut."""
        x, y, _, _ = sample_arrays(data)
        checksum = arrays.content_sha256(x, y)
        return {"source": "sample", "name": data.name, "content_sha256": checksum, **arrays.cut_identity(data)}

    def load(
        self, data: DataConfig, identity: dict[str, Any], *, downloaded: dict[str, Path] | None = None
    ) -> SourceData:
        """The sample, split by row hashes: a table of numbers typed ``float_normalized``, or images.

        Args:
            data: the recipe's ``data`` section.
            identity: what :meth:`identify` returned.
            downloaded: not used: the samples ship with scikit-learn.
        """
        x, y, class_names, feature_names = sample_arrays(data)
        # A sample table (diabetes, breast cancer) is a typed table of numbers; digits is images.
        types = {name: "float_normalized" for name in feature_names} if feature_names else None
        return arrays.from_arrays(
            arrays.floats(x),
            y,
            data=data,
            name=data.name,
            class_names=class_names,
            identity=identity,
            column_types=types,
        )


register_source("sample", SampleSource())
