"""A stored split's examples as tf.data reads them: shards, parts, labels, a typed table's columns, images.

The split's TFRecord shards, of every part in order (one part per file of a table), are
read in the stored order or by a parallel, deterministic interleave, and each record is
decoded into its features and label: a part's own label ids become the dataset's, a
typed table's storage groups become one tensor per column, an encoded image is decoded
and resized. The slice columns are read from the same shards. The pipelines built on
these (one pass in stored order, training's) are tasks/data/pipeline.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from kerasflow.models.input_names import NUMBERS_INPUT
from kerasflow.tasks.data import tfds_quiet
from kerasflow.tasks.data.materialize import local_builder_dir
from kerasflow.tasks.data.source_data import GROUP_KEYS, SLICE_PREFIX, groups
from kerasflow.tasks.refs import DatasetRef


def image_decoder(ref: DatasetRef) -> Callable[[Any, Any], Any]:
    """(encoded image, label) -> (float32 pixels of ``ref.image_size``, 0 to 255, label).

    As ``keras.utils.image_dataset_from_directory`` reads a file: decoded (a GIF's first
    frame) to the configured channels and resized bilinearly, without keeping the aspect.
    """
    height, width = ref.image_size or (0, 0)
    channels = int(ref.feature_shape[-1])

    def decode(encoded, label):
        return decoded_image(encoded, height=height, width=width, channels=channels), label

    return decode


def decoded_image(encoded: Any, *, height: int, width: int, channels: int) -> Any:
    """One encoded image as float32 pixels of ``height`` x ``width`` x ``channels``, 0 to 255.

    What training reads and what scoring a folder of images feeds the model: decoded (a
    GIF's first frame) to ``channels`` and resized bilinearly, without keeping the aspect.

    Args:
        encoded: the file's bytes, a string tensor.
        height: the height the model takes.
        width: the width the model takes.
        channels: 3 (RGB) or 1 (grayscale).
    """
    import tensorflow as tf

    image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
    image = tf.image.resize(image, (height, width), method="bilinear")
    return tf.ensure_shape(image, (height, width, channels))


def stored_examples(
    ref: DatasetRef,
    split: str,
    *,
    ordered: bool,
    by_column: bool = True,
    shard_seed: int | None = None,
    numbers_block: bool = False,
):
    """(features, label) of each stored example: a row, or a block of rows for a table.

    The split's TFRecord shards, of every part in order (one part per file of a table),
    are read one after another when ``ordered`` (the stored order), else by a parallel,
    deterministic interleave; with ``shard_seed``, in an order shuffled anew each epoch.
    A part's own label ids become the dataset's here (``DatasetPart.class_ids``).
    ``numbers_block``: a typed table's numbers, with ``by_column``, as the one block a model
    takes (``NUMBERS_INPUT``), not one tensor per column.
    """
    import tensorflow as tf

    fk, lk = ref.feature_key, ref.label_key
    parts = _parts_of(ref, split)
    shards = [
        (os.fspath(i.filename), int(i.skip), int(i.take), number)
        for number, (_, builder) in enumerate(parts)
        for i in builder.info.splits[split].file_instructions
    ]
    files = tf.data.Dataset.from_tensor_slices(
        tuple(tf.constant([shard[k] for shard in shards], dtype=tf.string if k == 0 else tf.int64) for k in range(4))
    )
    if shard_seed is not None:  # the shards in a new order each epoch, the same for a seed
        files = files.shuffle(max(1, len(shards)), seed=shard_seed, reshuffle_each_iteration=True)

    def read(path, skip, take, number):
        return tf.data.TFRecordDataset(path).skip(skip).take(take).map(lambda record: (record, number))

    if ordered:
        records = files.flat_map(read)
    else:
        cycle = max(1, min(len(shards), os.cpu_count() or 1))
        records = files.interleave(read, cycle_length=cycle, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    # Every part of a dataset stores the same features; a split no part holds reads as empty.
    decode = (parts or _parts_of(ref, None))[0][1].info.features.deserialize_example
    relabel = _relabel_by_part([part.class_ids for part, _ in parts], num_classes=ref.num_classes)
    if not ref.typed:
        features_of = lambda example: example[fk]  # noqa: E731 - one expression
    else:
        features_of = _typed_columns(ref, numbers_block=numbers_block) if by_column else _stored_groups(ref)

    def pair(record, number):
        example = decode(record)
        return features_of(example), relabel(number, example[lk])

    return records.map(pair, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _stored_groups(ref: DatasetRef) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A stored example of a typed table -> its feature groups by storage key (features, integers, strings)."""

    keys = [GROUP_KEYS[storage] for storage, names in groups(ref.column_types or {}).items() if names]
    return lambda example: {key: example[key] for key in keys}


def columns_of_batches(ref: DatasetRef, ds, *, numbers_block: bool = False):
    """Batches of (feature groups, label) as read with ``by_column=False`` -> (one tensor per column, label).

    With ``numbers_block``, the numbers stay one tensor, the block a model takes (``NUMBERS_INPUT``).

    Rows are shuffled and batched as their few storage groups, and cut into columns once
    per batch: a row of 30 float columns as 31 tensors took 57 ms a batch of 1024 to
    shuffle and batch, as 2 (the floats and the label) 3.8 ms (issue 14).

    Args:
        ref: the dataset ``ds`` was read from.
        ds: batches read with ``by_column=False``; returned as they are unless the dataset is a typed table.
        numbers_block: the numbers as one block, not one tensor per column.
    """
    import tensorflow as tf

    if not ref.typed:
        return ds
    columns = _typed_columns(ref, numbers_block=numbers_block)
    return ds.map(lambda x, y: (columns(x), y), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _typed_columns(ref: DatasetRef, *, numbers_block: bool) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A stored example or a batch of a typed table (its columns in groups by storage) -> one tensor per column.

    With ``numbers_block`` the numbers stay the stored group, the block a model takes
    (``NUMBERS_INPUT``, models/number_block.py): a table of 3,000 number columns is one
    tensor per batch, not 3,000 cut apart for the model to stack again.
    """

    found = groups(ref.column_types or {})
    numbers = [(NUMBERS_INPUT, GROUP_KEYS["float"])] if numbers_block and found["float"] else []
    places = [
        (name, GROUP_KEYS[storage], j)
        for storage, names in found.items()
        if not (numbers and storage == "float")
        for j, name in enumerate(names)
    ]
    order = {name: i for i, name in enumerate(ref.column_types or {})}
    places.sort(key=lambda place: order[place[0]])
    return lambda example: {
        **{name: example[key] for name, key in numbers},
        **{name: example[key][..., j] for name, key, j in places},
    }


def _parts_of(ref: DatasetRef, split: str | None) -> list[tuple[Any, Any]]:
    """(part, its TFDS builder) of each stored part holding rows of ``split`` in order; None: the first part."""
    import tensorflow_datasets as tfds

    tfds_quiet.install()  # TFDS's decoder warns about its own deprecated attribute on every split read
    stored = ref.stored_parts
    # TFDS stores no empty split, so a part without rows in ``split`` has nothing to read.
    holding = stored[:1] if split is None else [part for part in stored if part.splits.get(split, 0) > 0]
    return [
        (part, tfds.builder_from_directory(os.fspath(local_builder_dir(part, ref.storage_root)))) for part in holding
    ]


def _relabel_by_part(ids: list[list[int] | None], *, num_classes: int) -> Callable[[Any, Any], Any]:
    """(part number, a part's label ids) -> the dataset's label ids, for shards of several parts read together."""
    import tensorflow as tf

    if all(part is None for part in ids):
        return lambda number, label: label
    width = max(num_classes, *(len(part or ()) for part in ids))
    rows = [list(part or range(width)) + [0] * (width - len(part or range(width))) for part in ids]
    table = tf.constant(rows, dtype=tf.int64)
    return lambda number, label: tf.gather(table[number], label)


def load_slices(ref: DatasetRef, split: str) -> dict[str, np.ndarray]:
    """The slice columns of ``split``, row by row in stored order: column -> value index into ``ref.slices``.

    Args:
        ref: the stored dataset.
        split: the split's name.

    Returns:
        Slice column -> int64 codes, one per row; empty when the dataset has no slice columns.
    """
    import tensorflow_datasets as tfds

    if not ref.slices:
        return {}
    keys = [SLICE_PREFIX + column for column in ref.slices]
    codes: dict[str, list[np.ndarray]] = {column: [] for column in ref.slices}
    for part, builder in _parts_of(ref, split):
        ds = builder.as_dataset(split=split, shuffle_files=False, read_config=tfds.ReadConfig(try_autocache=False))
        ds = ds.map(lambda ex: {key: ex[key] for key in keys})
        ds = ds.rebatch(65536) if ref.rows_per_example > 1 else ds.batch(65536)  # see load_batches
        for batch in ds.as_numpy_iterator():
            for column in ref.slices:
                values = batch[SLICE_PREFIX + column]
                ids = part.slice_ids.get(column)
                codes[column].append(np.asarray(ids, dtype=np.int64)[values] if ids is not None else values)
    return {column: np.concatenate(found) if found else np.zeros(0, dtype=np.int64) for column, found in codes.items()}
