"""Statistics of a dataset, per split and column, computed in one pass and merged across files.

For every numeric column: rows present and missing, mean and standard deviation (merged
with Chan's formula), min, max, and a histogram with fixed bucket edges: buckets of
``2**(1/32)`` (2.2 %) relative width on each side of zero, the same for every dataset, so
the statistics of two files, two days or two trainings add up and compare bucket for
bucket without either having seen the other. Quantiles (a ``Discretization``'s cut
points), plots and drift come from those buckets, to 1.1 % of a value. A column whose
spread is under a few percent of its magnitude (raw epoch timestamps) falls into few
buckets, and its quantiles and drift are that coarse.

For every categorical column: rows present and missing, and the count of each value
(the :data:`MAX_VALUES` most frequent; the rest are counted together as ``other``); the
vocabulary of a ``StringLookup`` and the top-k of the UI come from them. The label is
a categorical column of class names, or a numeric one for a regression target.

Plain numpy; nothing here reads storage (tasks/data/materialize.py stores them beside
the dataset, ``statistics.json``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

# Buckets per doubling of |value| (each 2.2 % wide), and the smallest |value| not counted as zero (2**-40).
STEPS = 32
_LOWEST_POWER = 40
_BUCKET_OFFSET = STEPS * (1024 + _LOWEST_POWER) + 2
# Categorical values counted one by one; past this many, the least frequent are counted as "other".
MAX_VALUES = 10_000


def bucket_of(values: np.ndarray) -> np.ndarray:
    """Each finite value's fixed bucket: 0 near zero, +/-k for |value| in [2**((k-1)/STEPS-40), 2**(k/STEPS-40)).

    Args:
        values: finite numbers, any shape.

    Returns:
        int64 bucket indices, in the shape of ``values``.
    """
    magnitude = np.abs(values.astype(np.float64, copy=False))
    small = magnitude < 2.0**-_LOWEST_POWER
    index = np.floor(np.log2(np.where(small, 1.0, magnitude)) * STEPS).astype(np.int64) + STEPS * _LOWEST_POWER + 1
    index = np.where(small, 0, index)
    return np.where(values < 0, -index, index)


def bucket_value(index: int) -> float:
    """A bucket's middle (geometric), the value every row in it stands for.

    Args:
        index: a bucket index of :func:`bucket_of`.
    """
    if index == 0:
        return 0.0
    power = (abs(index) - 1 - STEPS * _LOWEST_POWER + 0.5) / STEPS
    return math.copysign(2.0**power, index)


@dataclass
class NumericStats:
    """A number column's statistics, counted by :meth:`add` and added up by :meth:`merge`.

    Args:
        kind: the tag of the JSON form.
        count: values present (not NaN), infinities included.
        missing: values missing (NaN).
        mean: the mean of the finite values.
        m2: the sum of squared deviations from the mean.
        min: the smallest value present; ``inf`` while there is none.
        max: the largest value present; ``-inf`` while there is none.
        buckets: bucket index (:func:`bucket_of`) -> finite values in it.
    """

    kind: Literal["numeric"] = "numeric"
    count: int = 0
    missing: int = 0
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean
    min: float = math.inf
    max: float = -math.inf
    buckets: Counter = field(default_factory=Counter)

    def add(self, values: np.ndarray) -> None:
        """Count ``values``: NaN as missing, the rest in the moments, bounds and buckets.

        Args:
            values: numbers, any shape.
        """
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        present = values[~np.isnan(values)]
        self.missing += len(values) - len(present)
        if not len(present):
            return
        finite = present[np.isfinite(present)]
        mean = float(finite.mean()) if len(finite) else 0.0
        other = NumericStats(
            count=len(present),
            mean=mean,
            m2=float(((finite - mean) ** 2).sum()),
            min=float(present.min()),
            max=float(present.max()),
        )
        # Bucket indices lie within +/-(STEPS * (1024 + _LOWEST_POWER) + 1) (float64's range): a bincount, no sort.
        counts = np.bincount(bucket_of(finite) + _BUCKET_OFFSET)
        keys = np.flatnonzero(counts)
        other.buckets = Counter(dict(zip((keys - _BUCKET_OFFSET).tolist(), counts[keys].tolist(), strict=True)))
        self._merge_values(other)

    def merge(self, other: NumericStats) -> None:
        """Add ``other``'s counts to these."""
        self.missing += other.missing
        self._merge_values(other)

    def _merge_values(self, other: NumericStats) -> None:
        if not other.count:
            return
        total = self.count + other.count
        delta = other.mean - self.mean
        self.m2 += other.m2 + delta * delta * self.count * other.count / total
        self.mean += delta * other.count / total
        self.count = total
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        self.buckets.update(other.buckets)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.count) if self.count else 0.0

    def quantiles(self, shares: Iterable[float]) -> list[float]:
        """The values below which ``shares`` of the rows present lie (0 is the min, 1 the max)."""
        keys = sorted(self.buckets)
        cumulative = np.cumsum([self.buckets[k] for k in keys])
        found = []
        for share in shares:
            if not self.count or not keys:
                found.append(0.0)
            elif share <= 0:
                found.append(self.min)
            elif share >= 1:
                found.append(self.max)
            else:
                position = int(np.searchsorted(cumulative, share * cumulative[-1]))
                found.append(min(self.max, max(self.min, bucket_value(keys[min(position, len(keys) - 1)]))))
        return found

    def histogram(self, edges: list[float]) -> np.ndarray:
        """Rows per bin between consecutive ``edges`` (the outer bins open-ended), each bucket at its middle.

        Args:
            edges: the bin edges, ascending.

        Returns:
            ``len(edges) + 1`` counts.
        """
        counts = np.zeros(len(edges) + 1, dtype=np.float64)
        for key, count in self.buckets.items():
            counts[np.searchsorted(edges, bucket_value(key), side="right")] += count
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "numeric",
            "count": self.count,
            "missing": self.missing,
            "mean": self.mean,
            "std": self.std,
            "m2": self.m2,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
            "buckets": {str(k): v for k, v in sorted(self.buckets.items())},
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> NumericStats:
        """The statistics of a :meth:`to_json` form.

        Args:
            raw: the mapping :meth:`to_json` returns, or the same parsed from JSON.
        """
        return cls(
            count=int(raw["count"]),
            missing=int(raw["missing"]),
            mean=float(raw["mean"]),
            m2=float(raw["m2"]),
            min=float(raw["min"]) if raw.get("min") is not None else math.inf,
            max=float(raw["max"]) if raw.get("max") is not None else -math.inf,
            buckets=Counter({int(k): int(v) for k, v in raw.get("buckets", {}).items()}),
        )


@dataclass
class CategoricalStats:
    """A categorical column's statistics: rows present and missing, and each value's count.

    Args:
        kind: the tag of the JSON form.
        count: rows with a value, those counted as ``other`` included.
        missing: rows whose value is missing (None, NaN, or the column's missing token).
        values: value, as text -> its rows; at most :data:`MAX_VALUES` values.
        other: rows of the values past the :data:`MAX_VALUES` most frequent.
    """

    kind: Literal["categorical"] = "categorical"
    count: int = 0  # rows with a value (those counted as ``other`` included)
    missing: int = 0
    values: Counter = field(default_factory=Counter)
    other: int = 0  # rows of values past the MAX_VALUES most frequent

    def add(self, values: np.ndarray, *, missing_token: Any = None) -> None:
        """Count ``values``, by value.

        Args:
            values: the values, any shape.
            missing_token: the value that stands for a missing category; counted as missing, as None and NaN are.
        """
        import pandas as pd

        counts = pd.Series(np.asarray(values).reshape(-1)).value_counts(dropna=False)
        for value, count in counts.items():
            if value is None or (isinstance(value, float) and math.isnan(value)) or value == missing_token:
                self.missing += int(count)
            else:
                self.values[str(value)] += int(count)
                self.count += int(count)
        self._cap()

    def merge(self, other: CategoricalStats) -> None:
        """Add ``other``'s counts to these."""
        self.count += other.count
        self.missing += other.missing
        self.other += other.other
        self.values.update(other.values)
        self._cap()

    def _cap(self) -> None:
        if len(self.values) > MAX_VALUES:
            kept = dict(self.top(MAX_VALUES))
            self.other += sum(self.values.values()) - sum(kept.values())
            self.values = Counter(kept)

    def top(self, k: int | None = None) -> list[tuple[str, int]]:
        """The ``k`` most frequent values with their counts (ties by value, so the order is stable)."""
        ranked = sorted(self.values.items(), key=lambda item: (-item[1], item[0]))
        return ranked[:k] if k is not None else ranked

    @property
    def unique(self) -> int:
        return len(self.values)

    def shares(self) -> dict[str, float]:
        """Each counted value's share of the rows present (those counted as ``other`` included)."""
        return {value: n / self.count for value, n in self.values.items()} if self.count else {}

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "categorical",
            "count": self.count,
            "missing": self.missing,
            "unique": self.unique,
            "other": self.other,
            "values": dict(self.top()),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> CategoricalStats:
        """The statistics of a :meth:`to_json` form.

        Args:
            raw: the mapping :meth:`to_json` returns, or the same parsed from JSON.
        """
        return cls(
            count=int(raw["count"]),
            missing=int(raw["missing"]),
            values=Counter({str(k): int(v) for k, v in raw.get("values", {}).items()}),
            other=int(raw.get("other", 0)),
        )


ColumnStats = NumericStats | CategoricalStats


def _column_from_json(raw: Mapping[str, Any]) -> ColumnStats:
    return NumericStats.from_json(raw) if raw["kind"] == "numeric" else CategoricalStats.from_json(raw)


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
    labels: np.ndarray | None = None,
    class_names: list[str] | None = None,
    missing_tokens: Mapping[str, Any] | None = None,
    rows: np.ndarray | None = None,
) -> SplitStatistics:
    """The statistics of one split from its columns (numbers as floats with NaN for missing).

    ``rows``: the split's row indices into the columns and labels (None: every row); read
    a chunk at a time, so no copy of a split's column is made.

    ``categorical``: the columns counted as values; ``labels``: class ids (named by
    ``class_names``) or a regression target's numbers; ``missing_tokens``: the value that
    stands for a missing category, per column.

    Args:
        columns: column name -> its values, one per row.
        categorical: the columns counted as values; the others as numbers.
        labels: one label per row: class ids, or a regression target's numbers.
        class_names: names of the class ids; None or empty: the labels are numbers.
        missing_tokens: column -> the value that stands for a missing category.
        rows: the split's row indices into ``columns`` and ``labels``; None: every row.
    """
    categorical = set(categorical)
    tokens = dict(missing_tokens or {})
    stats = SplitStatistics()
    count = None
    for name, values in columns.items():
        count = len(values) if rows is None else len(rows)
        column: ColumnStats = CategoricalStats() if name in categorical else NumericStats()
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
