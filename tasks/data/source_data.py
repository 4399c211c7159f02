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
# A typed table's storage groups in the order they are stored, and the key each is stored under.
GROUP_KEYS = {"float": "features", "integer": "integers", "string": "strings"}


def groups(types: Mapping[str, str]) -> dict[str, list[str]]:
    """Columns by storage (float, integer, string), each in feature order."""
    found: dict[str, list[str]] = {storage: [] for storage in GROUP_KEYS}
    for name, type_name in types.items():
        found[column_type(type_name).storage].append(name)
    return found


@dataclass(frozen=True)
class SourceData:
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
    payload = json.dumps({"format": FORMAT_VERSION, **identity}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def dataset_name(text: str) -> str:
    """A TFDS-legal dataset name (snake_case identifier)."""
    name = re.sub(r"[^a-z0-9_]", "_", text.lower()).strip("_") or "dataset"
    return name if name[0].isalpha() else f"d_{name}"
