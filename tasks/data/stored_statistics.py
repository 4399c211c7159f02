"""Statistics of a dataset read back from its stored TFDS files, for sources that do not count as they read.

Tables, samples and image folders compute their statistics from the arrays they hold
(tasks/ingest/sources/__init__.py, images.py). A TFDS source is a stream of examples TFDS writes
itself, so its statistics come from one pass over what was stored: the labels (class
counts, or the target's histogram), each image's size, each text's length in characters.
The pass is batched in tf.data, so memory stays flat whatever the split's size.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kerasflow.tasks.data.source_data import SIZE_COLUMN
from kerasflow.tasks.data.statistics import DatasetStatistics, SplitStatistics, split_statistics

TEXT_LENGTH_COLUMN = "text_length"
# Examples summarized at a time.
BATCH = 8192


def stored_statistics(builder: Any, *, feature_key: str, label_key: str, class_names: list[str]) -> DatasetStatistics:
    """Every stored split's statistics (``builder``: the TFDS builder that wrote them).

    Args:
        builder: the TFDS builder that wrote the dataset.
        feature_key: the features' key in an example; a text's length or an image's size is counted.
        label_key: the label's key in an example.
        class_names: the labels in class-id order; empty: the labels are numbers (a regression target).
    """
    return DatasetStatistics(
        {
            split: _split(builder, split, feature_key=feature_key, label_key=label_key, class_names=class_names)
            for split in builder.info.splits
        }
    )


def _split(builder: Any, split: str, *, feature_key: str, label_key: str, class_names: list[str]) -> SplitStatistics:
    import tensorflow as tf
    import tensorflow_datasets as tfds

    feature = builder.info.features[feature_key]
    text = isinstance(feature, tfds.features.Text)
    image = not text and len(feature.shape or ()) >= 2  # (height, width[, channels]): a picture

    def measure(example):
        value = example[feature_key]
        if text:
            size = tf.strings.length(value, unit="UTF8_CHAR")
        elif image:
            size = tf.shape(value)[:2]
        else:
            size = tf.constant(0)
        return example[label_key], size

    ds = builder.as_dataset(split=split, shuffle_files=False).map(measure, num_parallel_calls=tf.data.AUTOTUNE)
    total = SplitStatistics()
    for labels, sizes in ds.batch(BATCH).prefetch(1).as_numpy_iterator():
        columns: dict[str, np.ndarray] = {}
        if text:
            columns[TEXT_LENGTH_COLUMN] = sizes.astype(np.float64)
        elif image:  # counted like an image folder's: "<width>x<height>"
            columns[SIZE_COLUMN] = np.array([f"{w}x{h}" for h, w in sizes.tolist()], dtype=object)
        total.merge(
            split_statistics(
                columns,
                categorical=[SIZE_COLUMN] if image else [],
                labels=labels if class_names else labels.astype(np.float64),
                class_names=class_names or None,
            )
        )
    return total
