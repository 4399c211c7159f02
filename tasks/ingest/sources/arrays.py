"""Rows held as arrays (a bundled sample, a table): split by their own hashes, stored in blocks.

What the sources whose rows are arrays share: each row's split comes from its own hash
(tasks/data/splits.py), the rows are stored as TFDS examples of :data:`BLOCK_ROWS` rows
(:class:`Blocks`, cut as TFDS's writer asks), and each split's statistics are taken as
the rows are split. Image folders store their encoded images in blocks too.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.data import splits as split_rule
from kerasflow.tasks.data.source_data import SLICE_PREFIX, SourceData, dataset_name
from kerasflow.tasks.data.statistics import DatasetStatistics
from kerasflow.tasks.data.typed_arrays import TypedArrays, statistics_of

__all__ = [
    "BLOCK_ROWS",
    "Blocks",
    "array_statistics",
    "content_sha256",
    "cut_identity",
    "floats",
    "from_arrays",
    "label_identity",
    "split_indices",
]

# Rows stored per TFDS example for array sources (samples, files). TFDS serializes one
# example at a time in Python (~200 us each): 200k table rows took 41 s one per example
# and 0.24 s in blocks of 1024. Readers unbatch, so every consumer still sees rows.
BLOCK_ROWS = 1024


def content_sha256(x: np.ndarray, y: np.ndarray) -> str:
    """The SHA-256, in hex, of the bytes of ``x`` and then of ``y``: the content's checksum.

    Args:
        x: the examples.
        y: their labels.
    """
    return hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()


def split_identity(data: DataConfig) -> dict[str, Any]:
    """What decides how ``data``'s rows split (split key, seed, fractions): part of a dataset's identity."""
    return split_rule.describe(key=data.split_key, seed=data.seed, fractions=data.fractions.model_dump())


def cut_identity(data: DataConfig) -> dict[str, Any]:
    """What decides which rows a source's dataset holds and how they split: part of its identity."""
    return {"split": split_identity(data), "limit": data.limit, **label_identity(data)}


def label_identity(data: DataConfig) -> dict[str, str]:
    """Labels read as numbers are another dataset than the same column read as classes.

    Empty for classes, so the fingerprints of classifier datasets did not change when
    regression came.
    """
    return {"labels": data.labels} if data.labels != "classes" else {}


def split_indices(
    arrays: TypedArrays, y: np.ndarray, class_names: list[str], data: DataConfig, keys: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Rows per split, each row's split decided by its own hash (tasks/data/splits.py).

    Args:
        arrays: the rows' feature columns by storage.
        y: the rows' labels: class ids, or numbers.
        class_names: the classes, by id; part of a row's content hash.
        data: the recipe's ``data`` section (seed, fractions, limit).
        keys: each row's ``data.split_key`` value; its hash decides the split instead of the row's content.

    Returns:
        Split name -> the row numbers in it.
    """
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

    Args:
        arrays: the stored columns, each with one entry per row of the source.
        rows: the row numbers of the split, in the order they are written.
        rows_per_block: rows per TFDS example.
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


def from_arrays(
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

    Args:
        arrays: the feature columns by storage, one entry per row.
        y: the labels: class ids, or numbers when ``data.labels`` is ``numbers``.
        data: the recipe's ``data`` section (split, limit, labels).
        name: the dataset's name, made TFDS-safe.
        class_names: the classes, by id.
        identity: the source's identity, recorded with the dataset.
        column_types: a table's feature column -> type; None for an image sample.
        ignored_columns: the table's columns outside the recipe's schema.
        slices: slice column -> each row's value.
        split_keys: each row's ``data.split_key`` value; None to split by content.
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
    cut = split_indices(arrays, y, class_names, data, split_keys)
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
        statistics=array_statistics(arrays, y, cut, column_types=column_types, class_names=class_names),
    )


def array_statistics(
    arrays: TypedArrays,
    y: np.ndarray,
    cut: dict[str, np.ndarray],
    *,
    column_types: dict[str, str] | None,
    class_names: list[str],
) -> DatasetStatistics:
    """Each split's statistics: its rows, every column of a table, and its labels.

    Args:
        arrays: the feature columns by storage.
        y: the labels: class ids, or numbers.
        cut: split name -> the row numbers in it.
        column_types: a table's feature column -> type; None for an image sample (no column statistics).
        class_names: the classes, by id.
    """
    types = column_types or {}
    columns = arrays.columns(types) if column_types is not None else {}
    return DatasetStatistics(
        {
            split: statistics_of(columns, types, labels=y, class_names=class_names, rows=rows)
            for split, rows in cut.items()
        }
    )


def floats(x: np.ndarray) -> TypedArrays:
    """``x`` as :class:`TypedArrays` of floats alone (whole examples; no integer or text columns)."""
    empty = np.zeros((len(x), 0))
    return TypedArrays(floats=x, integers=empty.astype(np.int64), strings=empty.astype(object))
