"""Materialized datasets as tests look at them: what was written, and the rows a split holds."""

from __future__ import annotations

import numpy as np

from kerasflow.tasks.data import materialize as materialization
from kerasflow.tasks.data.pipeline import load_batches


class CountingMaterialize:
    """``materialize`` that records the fingerprint of every dataset it is asked to write."""

    def __init__(self):
        self.fingerprints = []

    def __call__(self, source, root):
        self.fingerprints.append(source.fingerprint)
        return materialization.materialize(source, root)


def rows_of(ref, split, *, ordered):
    """The split's features (a table's columns side by side, in feature order) and labels."""
    features, labels = [], []
    for x, y in load_batches(ref, split, batch_size=100, ordered=ordered).as_numpy_iterator():
        features.append(np.column_stack([x[name] for name in ref.feature_names]) if isinstance(x, dict) else x)
        labels.append(y)
    return np.concatenate(features), np.concatenate(labels)


def as_sorted_rows(features, labels):
    rows = np.column_stack([features, labels.astype(np.float64)])
    return rows[np.lexsort(rows.T[::-1])]
