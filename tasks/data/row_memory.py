"""What the input pipeline may hold in memory: a row's decoded size, and whether a split is cached.

Stored sizes say little of it: tf.data's in-memory cache holds a fixed cost per tensor
of every cached element beside its data, so a table is cached as the blocks it is
stored in, and the rule compares the decoded size, overhead included, with the RAM.
"""

from __future__ import annotations

import os

import numpy as np

from kerasflow.models.column_types import column_type
from kerasflow.tasks.refs import DatasetRef

# Cache in memory when the decoded examples take less than this share of the RAM.
CACHE_MEMORY_SHARE = 0.25
# What tf.data's in-memory cache holds per tensor of an element beyond its data: 212 B
# measured on TensorFlow 2.21 (552 B a row for a table row of 30 float32 and an int64
# label, whose data is 128 B). Stored sizes say nothing of it: a table's rows take 121 B
# on disk and 4.6 times that once cached (issue 14).
CACHED_TENSOR_OVERHEAD = 224
# What one cached text value of a typed table is taken to hold (a tf.string's header and a short category).
TEXT_BYTES = 40


def should_cache(ref: DatasetRef, policy: str, *, epochs: int | None = None) -> bool:
    """Whether to cache decoded examples in memory: ``memory``, ``none``, or ``auto``.

    ``auto``: when the data is read more than once (``epochs``; None: unknown) and fits in
    RAM. One pass fills a cache that is never read, and holds the split in memory for
    nothing: 142 B a row of 30 floats, 2.8 GB at 20M rows (issue 14).

    Args:
        ref: the stored dataset.
        policy: ``data.cache``: ``auto``, ``memory`` or ``none``.
        epochs: passes over the data; None: unknown, so cached when it fits.
    """
    if policy != "auto":
        return policy == "memory"
    if epochs is not None and epochs <= 1:
        return False
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return False
    return cached_bytes(ref) < CACHE_MEMORY_SHARE * ram


def cached_bytes(ref: DatasetRef) -> int:
    """What caching every split's decoded examples takes in memory: data plus tf.data's per-tensor cost.

    Examples are cached as stored (blocks of ``rows_per_example`` rows for a table), so
    the per-tensor cost is shared by a block's rows. Never less than the stored size
    (text, whose decoded length the ref does not record).

    Args:
        ref: the stored dataset; the rows of all its splits are counted.
    """
    rows = sum(ref.splits.values())
    feature = feature_bytes(ref)
    # Cached tensors: a typed table's one per column (text at its stored size, the floor
    # below), else the features; then the label and one code per slice column.
    tensors = (len(ref.column_types or {}) if ref.typed else 1) + 1 + len(ref.slices)
    per_row = feature + 8 * (1 + len(ref.slices)) + CACHED_TENSOR_OVERHEAD * tensors / max(ref.rows_per_example, 1)
    return max(ref.num_bytes, int(rows * per_row))


def feature_bytes(ref: DatasetRef) -> int:
    """The decoded features of one row, in bytes (text of a typed table at ``TEXT_BYTES``; other text: 0).

    Args:
        ref: the stored dataset, whose feature shape and dtype, or column types, are read.
    """
    if ref.typed:
        sizes = {"float": 4, "integer": 8, "string": TEXT_BYTES}
        return sum(sizes[column_type(t).storage] for t in (ref.column_types or {}).values())
    try:
        return int(np.prod(ref.feature_shape, dtype=np.int64)) * np.dtype(ref.feature_dtype).itemsize
    except TypeError:  # a string feature (text): its length is not recorded
        return 0
