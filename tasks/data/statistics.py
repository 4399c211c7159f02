"""Statistics of a dataset, per split and column, computed in one pass and merged across files.

A column's statistics are a number column's (tasks/data/numeric_statistics.py: moments
and a histogram over fixed buckets, so two datasets add up and compare without either
being read again) or a categorical column's (tasks/data/categorical_statistics.py: each
value's count). Here they are gathered per split and per dataset, read from and written
to their JSON form, summarized, and computed from a split's columns. The label is a
categorical column of class names, or a numeric one for a regression target.

Plain numpy; nothing here reads storage (tasks/data/materialize.py stores them beside
the dataset, ``statistics.json``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kerasflow.tasks.data.categorical_statistics import MAX_VALUES as MAX_VALUES
from kerasflow.tasks.data.categorical_statistics import CategoricalStats
from kerasflow.tasks.data.numeric_statistics import NumericStats
from kerasflow.tasks.data.numeric_statistics import bucket_of as bucket_of
from kerasflow.tasks.data.numeric_statistics import bucket_value as bucket_value
from kerasflow.tasks.data.text_statistics import TextStats

# A text column's (TextStats) is a number column's of its tokens per text, with its tokens' document frequencies.
ColumnStats = NumericStats | CategoricalStats


def _column_from_json(raw: Mapping[str, Any]) -> ColumnStats:
    kinds: dict[str, type[ColumnStats]] = {"numeric": NumericStats, "text": TextStats}
    return kinds.get(raw["kind"], CategoricalStats).from_json(raw)


@dataclass
class SplitStatistics:
    """One split's statistics: its rows, each column's and the label's.

    Args:
        rows: rows of the split.
        columns: column name -> its statistics.
        label: the label's: categorical over class names, or numeric for a regression target; None when not
            counted.
    """

    rows: int = 0
    columns: dict[str, ColumnStats] = field(default_factory=dict)
    label: ColumnStats | None = None

    def merge(self, other: SplitStatistics) -> None:
        """Add ``other``'s rows, columns and label to these; a column new here is copied."""
        self.rows += other.rows
        for name, stats in other.columns.items():
            if name in self.columns:
                self.columns[name].merge(stats)  # type: ignore[arg-type]
            else:
                self.columns[name] = _copy(stats)
        if other.label is not None:
            if self.label is None:
                self.label = _copy(other.label)
            else:
                self.label.merge(other.label)  # type: ignore[arg-type]

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "columns": {name: stats.to_json() for name, stats in self.columns.items()},
            "label": self.label.to_json() if self.label is not None else None,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SplitStatistics:
        """The statistics of a :meth:`to_json` form.

        Args:
            raw: the mapping :meth:`to_json` returns, or the same parsed from JSON.
        """
        return cls(
            rows=int(raw["rows"]),
            columns={name: _column_from_json(stats) for name, stats in raw.get("columns", {}).items()},
            label=_column_from_json(raw["label"]) if raw.get("label") else None,
        )


def _copy(stats: ColumnStats) -> ColumnStats:
    return _column_from_json(stats.to_json())


@dataclass
class DatasetStatistics:
    """A dataset's statistics, split by split.

    Args:
        splits: split name -> its statistics.
    """

    splits: dict[str, SplitStatistics] = field(default_factory=dict)

    def merge(self, other: DatasetStatistics) -> None:
        """Add ``other``'s splits to these, split by split."""
        for split, stats in other.splits.items():
            self.splits.setdefault(split, SplitStatistics()).merge(stats)

    def to_json(self) -> dict[str, Any]:
        return {"splits": {split: stats.to_json() for split, stats in self.splits.items()}}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> DatasetStatistics:
        """The statistics of a :meth:`to_json` form.

        Args:
            raw: the mapping :meth:`to_json` returns, or the same parsed from JSON.
        """
        return cls(splits={split: SplitStatistics.from_json(s) for split, s in raw.get("splits", {}).items()})


# Values of a categorical column a summary lists (the UI, the registry's lineage).
TOP_K = 10


def summarize(stats: ColumnStats, *, top: int = TOP_K) -> dict[str, Any]:
    """A column's statistics in short: no buckets, the ``top`` most frequent values only.

    Args:
        stats: one column's statistics.
        top: values a categorical column lists.
    """
    if isinstance(stats, TextStats):
        present = stats.count > 0
        return {
            "kind": "text",
            "count": stats.count,
            "empty": stats.empty,
            "tokens_per_text": {
                "mean": stats.mean if present else None,
                "std": stats.std if present else None,
                "min": stats.min if present else None,
                "median": stats.quantiles([0.5])[0] if present else None,
                "p95": stats.quantiles([0.95])[0] if present else None,
                "max": stats.max if present else None,
            },
            "top": [[token, count] for token, count in stats.top(top)],
        }
    if isinstance(stats, NumericStats):
        present = stats.count > 0
        return {
            "kind": "numeric",
            "count": stats.count,
            "missing": stats.missing,
            "mean": stats.mean if present else None,
            "std": stats.std if present else None,
            "min": stats.min if present else None,
            "max": stats.max if present else None,
        }
    return {
        "kind": "categorical",
        "count": stats.count,
        "missing": stats.missing,
        "unique": stats.unique,
        "top": [[value, count] for value, count in stats.top(top)],
    }


def summary(statistics: DatasetStatistics) -> dict[str, Any]:
    """Every split's rows, columns and label in short (:func:`summarize`)."""
    return {
        split: {
            "rows": stats.rows,
            "columns": {name: summarize(column) for name, column in stats.columns.items()},
            "label": summarize(stats.label) if stats.label is not None else None,
        }
        for split, stats in statistics.splits.items()
    }


def merged(parts: Iterable[DatasetStatistics]) -> DatasetStatistics:
    """The statistics of ``parts`` added up (the files or parts of one dataset)."""
    total = DatasetStatistics()
    for part in parts:
        total.merge(part)
    return total


# Rows summarized at a time: bounded transient copies whatever the split's size.
CHUNK_ROWS = 262_144


def split_statistics(
    columns: Mapping[str, np.ndarray],
    *,
    categorical: Iterable[str] = (),
    text: Iterable[str] = (),
    labels: np.ndarray | None = None,
    class_names: list[str] | None = None,
    missing_tokens: Mapping[str, Any] | None = None,
    rows: np.ndarray | None = None,
) -> SplitStatistics:
    """The statistics of one split from its columns (numbers as floats with NaN for missing).

    ``rows``: the split's row indices into the columns and labels (None: every row); read
    a chunk at a time, so no copy of a split's column is made.

    ``categorical``: the columns counted as values; ``text``: those counted as texts (their tokens
    per text and each token's texts: tasks/data/text_statistics.py); ``labels``: class ids (named by
    ``class_names``) or a regression target's numbers; ``missing_tokens``: the value that
    stands for a missing category, per column.

    Args:
        columns: column name -> its values, one per row.
        categorical: the columns counted as values; the others as numbers.
        text: the columns counted as texts (tokens per text, and each token's texts).
        labels: one label per row: class ids, or a regression target's numbers.
        class_names: names of the class ids; None or empty: the labels are numbers.
        missing_tokens: column -> the value that stands for a missing category.
        rows: the split's row indices into ``columns`` and ``labels``; None: every row.
    """
    categorical, text = set(categorical), set(text)
    tokens = dict(missing_tokens or {})
    stats = SplitStatistics()
    count = None
    for name, values in columns.items():
        count = len(values) if rows is None else len(rows)
        column: ColumnStats = (
            CategoricalStats() if name in categorical else TextStats() if name in text else NumericStats()
        )
        for start in range(0, count, CHUNK_ROWS):
            chunk = values[start : start + CHUNK_ROWS] if rows is None else values[rows[start : start + CHUNK_ROWS]]
            if isinstance(column, CategoricalStats):
                column.add(chunk, missing_token=tokens.get(name))
            else:
                column.add(chunk)
        stats.columns[name] = column
    if labels is not None:
        labels = labels if rows is None else labels[rows]
        count = len(labels)
        if class_names:
            label = CategoricalStats()
            ids, counts = np.unique(np.asarray(labels), return_counts=True)
            for class_id, rows_of_class in zip(ids.tolist(), counts.tolist(), strict=True):
                name = class_names[class_id] if 0 <= class_id < len(class_names) else str(class_id)
                label.values[name] += rows_of_class
                label.count += rows_of_class
            stats.label = label
        else:
            target = NumericStats()
            target.add(np.asarray(labels, dtype=np.float64))
            stats.label = target
    stats.rows = int(count or 0)
    return stats
