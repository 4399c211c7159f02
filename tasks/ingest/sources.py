"""Sources of examples: bundled samples, TFDS datasets and tabular files.

Each source yields a :class:`SourceData`: the train/validation/test splits as tf.data
datasets of feature dicts, their TFDS feature spec, and the identity of the content from
which the fingerprint is computed.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tasks.config import ConfigError, DataConfig
from tasks.failures import DataValidationError

# Bump when the materialized layout changes, so old materializations are not reused.
FORMAT_VERSION = 1
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SourceData:
    name: str
    features: Any  # tfds.features.FeaturesDict
    splits: dict[str, Any]  # split -> tf.data.Dataset of feature dicts
    feature_key: str
    label_key: str
    class_names: list[str]
    identity: dict[str, Any]
    feature_names: list[str] | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        payload = json.dumps({"format": FORMAT_VERSION, **self.identity}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def load_source(data: DataConfig) -> SourceData:
    """Open the source the config names."""
    if data.source == "sample":
        return _sample(data)
    if data.source == "files":
        return _files(data)
    return _tfds(data)


def _dataset_name(text: str) -> str:
    """A TFDS-legal dataset name (snake_case identifier)."""
    name = re.sub(r"[^a-z0-9_]", "_", text.lower()).strip("_") or "dataset"
    return name if name[0].isalpha() else f"d_{name}"


def _split_indices(n: int, data: DataConfig) -> dict[str, np.ndarray]:
    """A deterministic cut of ``n`` rows into train/validation/test by ``data.seed``."""
    order = np.random.default_rng(data.seed).permutation(n)
    n_test = round(n * data.fractions.test)
    n_val = round(n * data.fractions.validation)
    parts = {"test": order[:n_test], "validation": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}
    if data.limit:
        parts = {k: v[: data.limit] for k, v in parts.items()}
    return {k: np.sort(v) for k, v in parts.items()}


def _from_arrays(
    x: np.ndarray,
    y: np.ndarray,
    *,
    data: DataConfig,
    name: str,
    class_names: list[str],
    identity: dict[str, Any],
    feature_names: list[str] | None = None,
) -> SourceData:
    import tensorflow as tf
    import tensorflow_datasets as tfds

    features = tfds.features.FeaturesDict(
        {
            "features": tfds.features.Tensor(shape=x.shape[1:], dtype=np.float32),
            "label": tfds.features.ClassLabel(names=class_names),
        }
    )
    cut = _split_indices(len(x), data)
    splits = {k: tf.data.Dataset.from_tensor_slices({"features": x[i], "label": y[i]}) for k, i in cut.items()}
    content = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()
    identity = {
        **identity,
        "content_sha256": content,
        "seed": data.seed,
        "fractions": data.fractions.model_dump(),
        "limit": data.limit,
    }
    return SourceData(
        name=_dataset_name(name),
        features=features,
        splits=splits,
        feature_key="features",
        label_key="label",
        class_names=class_names,
        identity=identity,
        feature_names=feature_names,
        counts={k: len(i) for k, i in cut.items()},
    )


def _sample(data: DataConfig) -> SourceData:
    from sklearn import datasets

    if data.name == "digits":
        bunch = datasets.load_digits()
        x = bunch.images.astype("float32")[..., None]  # (n, 8, 8, 1), values 0..16
        class_names = [str(c) for c in bunch.target_names]
        feature_names = None
    elif data.name == "breast_cancer":
        bunch = datasets.load_breast_cancer()
        x = bunch.data.astype("float32")
        class_names = [str(c) for c in bunch.target_names]
        feature_names = [str(c) for c in bunch.feature_names]
    else:
        raise ConfigError(f"received data.name={data.name!r} for source 'sample', expected 'digits' or 'breast_cancer'")
    return _from_arrays(
        x,
        bunch.target.astype("int64"),
        data=data,
        name=data.name,
        class_names=class_names,
        identity={"source": "sample", "name": data.name},
        feature_names=feature_names,
    )


def _files(data: DataConfig) -> SourceData:
    """A CSV or Parquet file with named feature columns and a label column."""
    import fsspec
    import pandas as pd

    url = data.url or ""
    try:
        with fsspec.open(url, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError(f"data.url {url!r} does not exist; point it at a CSV or Parquet file") from None
    try:
        if url.endswith((".parquet", ".pq")):
            frame = pd.read_parquet(io.BytesIO(raw))
        elif url.endswith((".csv", ".csv.gz")):
            frame = pd.read_csv(io.BytesIO(raw), compression="infer" if url.endswith(".gz") else None)
        else:
            raise ConfigError(f"received data.url {url!r}, expected a .csv or .parquet file")
    except (ValueError, OSError) as error:
        if isinstance(error, ConfigError):
            raise
        raise DataValidationError(
            f"{url}: cannot be read as {'Parquet' if 'parquet' in url else 'CSV'} ({error}); "
            "check that the file is complete and in that format"
        ) from None
    label = data.label_column
    columns = data.feature_columns or [c for c in frame.columns if c != label]
    missing = [c for c in [*columns, label] if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{url}: check 'columns' failed: missing column(s) {missing}; the file has "
            f"{list(frame.columns)}. Fix data.feature_columns / data.label_column or the file."
        )
    numeric = frame[columns].apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna() & frame[columns].notna()
    if bad.to_numpy().any():
        column = bad.any().idxmax()
        row = int(bad[column].to_numpy().argmax())
        raise DataValidationError(
            f"{url}: check 'numeric' failed: column {column!r} has {int(bad[column].sum())} "
            f"non-numeric value(s), first at row {row} ({frame[column].iloc[row]!r}); "
            "clean the column or leave it out of data.feature_columns"
        )
    labels = frame[label]
    if labels.isna().any():
        missing_label = labels.isna().to_numpy()
        raise DataValidationError(
            f"{url}: check 'label present' failed: {int(missing_label.sum())} row(s) have no label "
            f"in column {label!r}, first at row {int(missing_label.argmax())}; drop or label those rows"
        )
    if pd.api.types.is_numeric_dtype(labels):
        y = labels.to_numpy().astype("int64")
        if len(y) and y.min() < 0:
            raise DataValidationError(
                f"{url}: check 'label range' failed: {int((y < 0).sum())} row(s) have negative "
                f"labels, first at row {int((y < 0).argmax())}; labels must be class ids 0..N-1"
            )
        class_names = [str(i) for i in range(max(2, int(y.max()) + 1 if len(y) else 2))]
    else:
        class_names = sorted(str(v) for v in labels.unique())
        y = labels.astype(str).map({n: i for i, n in enumerate(class_names)}).to_numpy().astype("int64")
    return _from_arrays(
        numeric.to_numpy(dtype="float32"),
        y,
        data=data,
        name=url.rsplit("/", 1)[-1].split(".")[0],
        class_names=class_names,
        identity={"source": "files", "url": url, "columns": columns, "label": label},
        feature_names=columns,
    )


def _tfds(data: DataConfig) -> SourceData:
    """A TFDS dataset, prepared under ``data.data_dir`` (downloaded there if allowed)."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(data.name, data_dir=data.data_dir)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise ConfigError(f"received data.name={data.name!r}: not a TFDS dataset ({error})") from None
    builder.download_and_prepare()
    source_features = builder.info.features
    feature_key, label_key = data.feature_key, data.label_key
    for key in (feature_key, label_key):
        if key not in source_features:
            raise ConfigError(
                f"received data.{'feature_key' if key == feature_key else 'label_key'}={key!r}, "
                f"expected one of the features of {data.name}: {sorted(source_features.keys())}"
            )
    feature = source_features[feature_key]
    label_feature = source_features[label_key]
    if isinstance(feature, tfds.features.Text):
        stored_feature = tfds.features.Text()
    else:
        # Raw tensors decode far faster than PNG-encoded images in the training pipeline.
        stored_feature = tfds.features.Tensor(shape=feature.shape, dtype=feature.np_dtype)
    features = tfds.features.FeaturesDict(
        {feature_key: stored_feature, label_key: tfds.features.ClassLabel(names=label_feature.names)}
    )
    splits = {}
    for role in SPLITS:
        spec = data.tfds_splits.get(role)
        if spec is None:
            continue
        ds = builder.as_dataset(split=spec).map(lambda ex: {feature_key: ex[feature_key], label_key: ex[label_key]})
        splits[role] = ds.take(data.limit) if data.limit else ds
    identity = {
        "source": "tfds",
        "name": data.name,
        "version": str(builder.version),
        "config": builder.builder_config.name if builder.builder_config else None,
        "splits": dict(sorted(data.tfds_splits.items())),
        "limit": data.limit,
    }
    return SourceData(
        name=_dataset_name(data.name.split("/")[0]),
        features=features,
        splits=splits,
        feature_key=feature_key,
        label_key=label_key,
        class_names=list(label_feature.names),
        identity=identity,
    )
