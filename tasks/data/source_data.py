"""What every source yields to materialization: :class:`SourceData`, named by its fingerprint.

The fingerprint is a hash of the source's identity (tasks/ingest/sources.identify) and of
the materialized layout's version.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kerasflow.models.column_types import column_type

# Bump when the materialized layout changes, so old materializations are not reused.
FORMAT_VERSION = 4
SPLITS = ("train", "validation", "test")
# A slice column's codes are stored under this prefix beside the features.
SLICE_PREFIX = "slice__"
# An image folder's statistics describe each image's size under this column.
SIZE_COLUMN = "image_size"
# An image folder's statistics: each image's mean intensity per channel (0 to 255), so drift
# sees images grow darker or change colour, not only change size.
PIXEL_COLUMNS = {"rgb": ("mean_red", "mean_green", "mean_blue"), "grayscale": ("mean_gray",)}
# A typed table's storage groups in the order they are stored, and the key each is stored under.
GROUP_KEYS = {"float": "features", "integer": "integers", "string": "strings"}


def groups(types: Mapping[str, str]) -> dict[str, list[str]]:
    """Columns by storage (float, integer, string), each in feature order.

    Args:
        types: column name -> column type name, in feature order.

    Returns:
        ``float``, ``integer`` and ``string`` -> the names of the columns stored in that group; every group
        is there, empty or not.
    """
    found: dict[str, list[str]] = {storage: [] for storage in GROUP_KEYS}
    for name, type_name in types.items():
        found[column_type(type_name).storage].append(name)
    return found


@dataclass(frozen=True)
class SourceData:
    """What a source read, ready to store: its features, its splits' examples and its identity.

    Args:
        name: the TFDS dataset name (:func:`dataset_name`).
        features: the ``tfds.features.FeaturesDict`` of one stored example.
        splits: split name -> a ``tf.data.Dataset`` of feature dicts, or blocks of arrays.
        feature_key: the features' key in a stored example.
        label_key: the label's key in a stored example.
        class_names: the labels in class-id order; empty for numbers.
        identity: what names the source's content; hashed into the fingerprint.
        feature_names: a table's feature columns, in order.
        counts: rows per split, when known before storing.
        rows_per_example: rows per stored example (a table stores blocks of rows).
        slices: slice column -> its values, in code order.
        ignored_columns: columns of the files outside the schema.
        labels: ``data.labels``: ``classes`` (class ids) or ``numbers`` (a regression target).
        column_types: a table's feature columns and their types, in order.
        statistics: the ``DatasetStatistics`` the source computed as it read; None: counted from what is
            stored when each example is one row.
        image_size: for images stored encoded, the (height, width) they are resized to when read.
        channels: for images stored encoded, the channels they are decoded to.
    """

    name: str
    features: Any  # tfds.features.FeaturesDict
    splits: dict[str, Any]  # split -> tf.data.Dataset of feature dicts, or Blocks of arrays
    feature_key: str
    label_key: str
    class_names: list[str]
    identity: dict[str, Any]
    feature_names: list[str] | None = None
    counts: dict[str, int] = field(default_factory=dict)  # rows per split, when known up front
    rows_per_example: int = 1
    slices: dict[str, list[str]] = field(default_factory=dict)  # slice column -> its values (code order)
    ignored_columns: list[str] = field(default_factory=list)
    labels: str = "classes"  # data.labels: class ids, or numbers (a regression target)
    column_types: dict[str, str] | None = None  # a table's feature columns and their types, in order
    statistics: Any = None  # tasks/statistics.DatasetStatistics, when the source computes them as it reads
    image_size: tuple[int, int] | None = None  # images stored encoded: (height, width) they are resized to
    channels: int = 3  # images stored encoded: channels they are decoded to

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.identity)


def fingerprint(identity: dict[str, Any]) -> str:
    """The fingerprint of a source's ``identity`` and of :data:`FORMAT_VERSION`: 16 hex characters.

    Args:
        identity: what names the source's content (tasks/ingest/sources.identify); values JSON cannot hold
            are hashed as their ``str()``.
    """
    payload = json.dumps({"format": FORMAT_VERSION, **identity}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def dataset_name(text: str) -> str:
    """A TFDS-legal dataset name (snake_case identifier).

    Args:
        text: any text, such as the source's name.
    """
    name = re.sub(r"[^a-z0-9_]", "_", text.lower()).strip("_") or "dataset"
    return name if name[0].isalpha() else f"d_{name}"
