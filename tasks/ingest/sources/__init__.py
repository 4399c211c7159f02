"""Sources of examples: bundled samples, TFDS datasets and tabular files.

Opening a source is two steps, so that unchanged data costs a listing and no download:
:func:`identify` names the content cheaply (TFDS name, version, config and splits; the
files' keys, sizes and ETags; the bundled sample's checksum) and gives the fingerprint;
:func:`load_source` reads it into a :class:`SourceData` (the splits as tf.data datasets
of feature dicts and their TFDS feature spec), only when that fingerprint is new. TFDS
sources are read in tasks/ingest/sources/tfds_source.py, the record in tasks/data/source_data.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from kerasflow.tasks import storage
from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.data import splits as split_rule
from kerasflow.tasks.data.source_data import SLICE_PREFIX, SPLITS, SourceData, dataset_name, fingerprint
from kerasflow.tasks.data.statistics import DatasetStatistics
from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.ingest.sources import images, samples, tfds_source
from kerasflow.tasks.ingest.sources.tables import table_reading, tabular, typed_columns, window
from kerasflow.tasks.ingest.sources.tables.table_reading import Table
from kerasflow.tasks.ingest.sources.tables.typed_columns import TypedArrays

__all__ = [
    "SLICE_PREFIX",
    "SPLITS",
    "SourceData",
    "fingerprint",
    "identify",
    "is_tfds_dir",
    "load_source",
    "table_source",
]

# Rows stored per TFDS example for array sources (samples, files). TFDS serializes one
# example at a time in Python (~200 us each): 200k table rows took 41 s one per example
# and 0.24 s in blocks of 1024. Readers unbatch, so every consumer still sees rows.
BLOCK_ROWS = 1024


def identify(data: DataConfig) -> dict[str, Any]:
    """What identifies the content the config names, without reading it all."""
    cut = {"split": _split_identity(data), "limit": data.limit, **_label_identity(data)}
    if data.source == "sample":
        x, y, _, _ = samples.sample_arrays(data)
        return {"source": "sample", "name": data.name, "content_sha256": _content_sha256(x, y), **cut}
    if data.source == "images":
        files, classes = images.list_images(data.url or "")
        return {
            "source": "images",
            "files": tabular.identity(files),
            "classes": classes,
            "image_size": list(data.image_size),
            "color_mode": data.color_mode,
            **cut,
        }
    if data.source == "files" and is_tfds_dir(data.url or ""):
        if data.window is not None:
            raise DataValidationError(
                f"{data.url}: check 'window' failed: data.window selects day partitions of tables, and this is "
                "a prepared TFDS dataset; drop data.window, or point data.url at the tables"
            )
        return {
            "source": "files",
            "tfds_dir": data.url,
            "files": tabular.identity(tabular.list_files(data.url or "", suffixes=None)),
            "splits": dict(sorted(data.tfds_splits.items())),
            "keys": [data.feature_key, data.label_key],
            "limit": data.limit,
            **_label_identity(data),
        }
    if data.source == "files":
        files = tabular.list_files(data.url or "")
        time_window = None
        if data.window is not None and data.window.column:  # the files that may hold the window's rows
            files = window.files_for_time_window(files, data.window, url=data.url or "")
            start, end = window.bounds(data.window)
            time_window = {"column": data.window.column, "from": start.isoformat(), "to": end.isoformat()}
        elif data.window is not None:  # the fingerprint covers the window's files only
            files = window.in_window(files, data.window, url=data.url or "")
        return {
            "source": "files",
            "files": tabular.identity(files),
            "columns": data.feature_columns,
            "types": {name: spec.type for name, spec in data.columns.items()} if data.columns else None,  # type: ignore[union-attr]
            "missing": data.missing,
            "label": data.label_column,
            "slice_columns": data.slice_columns,
            "classes": data.classes,
            **({"time_window": time_window} if time_window else {}),  # absent: fingerprints as before
            **cut,
        }
    builder = tfds_source.tfds_builder(data)
    return {
        "source": "tfds",
        "name": data.name,
        "version": str(builder.version),
        "config": builder.builder_config.name if builder.builder_config else None,
        "splits": dict(sorted(data.tfds_splits.items())),
        "limit": data.limit,
        **_label_identity(data),
    }


def _label_identity(data: DataConfig) -> dict[str, str]:
    """Labels read as numbers are another dataset than the same column read as classes.

    Empty for classes, so the fingerprints of classifier datasets did not change when
    regression came.
    """
    return {"labels": data.labels} if data.labels != "classes" else {}


def load_source(
    data: DataConfig, identity: dict[str, Any] | None = None, *, downloaded: dict[str, Path] | None = None
) -> SourceData:
    """Read the source the config names; ``identity`` from :func:`identify` if known.

    ``downloaded``: local copies of a table's files fetched beforehand, by URL.
    """
    identity = identity or identify(data)
    if data.source == "sample":
        return _sample(data, identity)
    if data.source == "images":
        return images.load_images(data, identity)
    if data.source == "files" and "tfds_dir" in identity:
        return tfds_source.load_prepared_dir(data, identity)
    if data.source == "files":
        return _files(data, identity, downloaded=downloaded)
    return tfds_source.load_tfds(data, identity)


def is_tfds_dir(url: str) -> bool:
    """Whether ``url`` is a prepared TFDS dataset folder (``<name>/<version>`` with its info)."""
    if any(ch in url for ch in "*?["):
        return False
    fs, path = storage.filesystem(url)
    with storage.reaching(url):
        return fs.exists(f"{path.rstrip('/')}/dataset_info.json")


def _content_sha256(x: np.ndarray, y: np.ndarray) -> str:
    return hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()


def _split_identity(data: DataConfig) -> dict[str, Any]:
    return split_rule.describe(key=data.split_key, seed=data.seed, fractions=data.fractions.model_dump())


def _split_indices(
    arrays: TypedArrays, y: np.ndarray, class_names: list[str], data: DataConfig, keys: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Rows per split, each row's split decided by its own hash (tasks/data/splits.py)."""
    if keys is not None:
        hashes = split_rule.key_hashes(keys, seed=data.seed)
    else:
        hashes = split_rule.content_hashes(
            arrays.floats, y, class_names, seed=data.seed, integers=arrays.integers, strings=arrays.strings
        )
    fractions = data.fractions
    return split_rule.assign(hashes, validation=fractions.validation, test=fractions.test, limit=data.limit)


class Blocks:
    """The rows ``rows`` of ``arrays`` as TFDS's (key, example) pairs, ``BLOCK_ROWS`` rows an example.

    Each block is cut from the arrays as TFDS's writer asks for it, so no copy of a whole
    split is made: a split as one array indexed by its rows, then a TensorFlow constant of
    it (``from_tensor_slices``), were two copies of the table at once (issue 14). Keys are
    the block numbers; with shuffling disabled TFDS writes the blocks in that order.
    """

    def __init__(self, arrays: dict[str, np.ndarray], rows: np.ndarray, *, rows_per_block: int = BLOCK_ROWS):
        self.arrays, self.rows, self.rows_per_block = arrays, rows, rows_per_block

    def release(self) -> None:
        """Let go of the arrays once written: TFDS's ad hoc builder keeps the split's iterable alive."""
        self.arrays, self.rows = {}, self.rows[:0]

    def __iter__(self):
        for number, start in enumerate(range(0, len(self.rows), self.rows_per_block)):
            take = self.rows[start : start + self.rows_per_block]
            yield number, {key: values[take] for key, values in self.arrays.items()}


def _from_arrays(
    arrays: TypedArrays,
    y: np.ndarray,
    *,
    data: DataConfig,
    name: str,
    class_names: list[str],
    identity: dict[str, Any],
    column_types: dict[str, str] | None = None,
    ignored_columns: list[str] | None = None,
    slices: dict[str, np.ndarray] | None = None,
    split_keys: np.ndarray | None = None,
) -> SourceData:
    """A source of rows held as arrays (a sample, a table): split by row hashes, stored in blocks.

    ``column_types``: a table's feature columns and their types; its columns are stored by
    storage (floats, integers, text: :class:`TypedArrays`). Without it (an image sample)
    ``arrays.floats`` holds whole examples.
    """
    import tensorflow_datasets as tfds

    # Slice columns are stored as codes into their sorted values, beside the features.
    slice_values, slice_codes = {}, {}
    for column, values in (slices or {}).items():
        slice_values[column], codes = np.unique(values, return_inverse=True)
        slice_codes[SLICE_PREFIX + column] = codes.astype("int64")
    # Blocks are stored as raw bytes: TFDS's default encoding makes every number a protobuf
    # value of its own, 20-40 times slower to write a block of a table (issue 14). Text
    # has no raw encoding.
    raw = tfds.features.Encoding.BYTES
    stored = arrays.stored() if column_types is not None else {"features": arrays.floats}
    dtypes = {"features": np.float32, "integers": np.int64, "strings": np.str_}
    encodings = {"features": raw, "integers": raw, "strings": tfds.features.Encoding.NONE}
    features = tfds.features.FeaturesDict(
        {
            **{
                key: tfds.features.Tensor(shape=(None, *values.shape[1:]), dtype=dtypes[key], encoding=encodings[key])
                for key, values in stored.items()
            },
            # Class ids, or a regression target's numbers.
            "label": tfds.features.Tensor(
                shape=(None,), dtype=np.float32 if y.dtype.kind == "f" else np.int64, encoding=raw
            ),
            **{key: tfds.features.Tensor(shape=(None,), dtype=np.int64, encoding=raw) for key in slice_codes},
        }
    )
    cut = _split_indices(arrays, y, class_names, data, split_keys)
    splits = {k: Blocks({**stored, "label": y, **slice_codes}, rows) for k, rows in cut.items()}
    return SourceData(
        name=dataset_name(name),
        features=features,
        splits=splits,
        feature_key="features",
        label_key="label",
        class_names=class_names,
        identity=identity,
        feature_names=list(column_types) if column_types is not None else None,
        column_types=column_types,
        counts={k: len(i) for k, i in cut.items()},
        rows_per_example=BLOCK_ROWS,
        ignored_columns=list(ignored_columns or []),
        slices={column: [str(v) for v in values] for column, values in slice_values.items()},
        labels=data.labels,
        statistics=_statistics(arrays, y, cut, column_types=column_types, class_names=class_names),
    )


def _statistics(
    arrays: TypedArrays,
    y: np.ndarray,
    cut: dict[str, np.ndarray],
    *,
    column_types: dict[str, str] | None,
    class_names: list[str],
) -> DatasetStatistics:
    """Each split's statistics: its rows, every column of a table, and its labels."""
    types = column_types or {}
    columns = arrays.columns(types) if column_types is not None else {}
    return DatasetStatistics(
        {
            split: typed_columns.statistics_of(columns, types, labels=y, class_names=class_names, rows=rows)
            for split, rows in cut.items()
        }
    )


def _sample(data: DataConfig, identity: dict[str, Any]) -> SourceData:
    x, y, class_names, feature_names = samples.sample_arrays(data)
    # A sample table (diabetes, breast cancer) is a typed table of numbers; digits is images.
    types = {name: "float_normalized" for name in feature_names} if feature_names else None
    return _from_arrays(
        _floats(x), y, data=data, name=data.name, class_names=class_names, identity=identity, column_types=types
    )


def _floats(x: np.ndarray) -> TypedArrays:
    empty = np.zeros((len(x), 0))
    return TypedArrays(floats=x, integers=empty.astype(np.int64), strings=empty.astype(object))


def _files(data: DataConfig, identity: dict[str, Any], *, downloaded: dict[str, Path] | None = None) -> SourceData:
    """Parquet or CSV files (one, a folder, or a glob) with feature columns and a label column."""
    files = tabular.from_identity(identity["files"])
    return table_source(table_reading.read_table(files, data, downloaded=downloaded), data, identity)


def table_source(table: Table, data: DataConfig, identity: dict[str, Any]) -> SourceData:
    """Rows read from files (a table, or a part of one file), split and stored in blocks under ``identity``."""
    name = (data.url or "files").rstrip("/").rsplit("/", 1)[-1].split(".")[0].split("*")[0]
    return _from_arrays(
        table.arrays,
        table.labels,
        data=data,
        name=name or "files",
        class_names=table.class_names,
        identity=identity,
        column_types=table.column_types,
        ignored_columns=table.ignored_columns,
        slices=table.slices,
        split_keys=table.split_keys,
    )
