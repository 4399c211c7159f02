"""A number column's statistics: exact counts and moments, and a histogram over fixed buckets.

Rows present and missing, mean and standard deviation (merged with Chan's formula), min,
max, and a histogram with fixed bucket edges: buckets of ``2**(1/32)`` (2.2 %) relative
width on each side of zero, the same for every dataset, so the statistics of two files,
two days or two trainings add up and compare bucket for bucket without either having seen
the other. Quantiles (a ``Discretization``'s cut points), plots and drift come from those
buckets, to 1.1 % of a value. A column whose spread is under a few percent of its
magnitude (raw epoch timestamps) falls into few buckets, and its quantiles and drift are
that coarse.
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
        shares = list(shares)
        keys = sorted(self.buckets)
        if not self.count or not keys:
            return [0.0] * len(shares)
        cumulative = np.cumsum([self.buckets[k] for k in keys])
        # One search for all shares: a table of 3,000 columns asks 101 quantiles of each (issue 30).
        positions = np.searchsorted(cumulative, np.asarray(shares, dtype=np.float64) * cumulative[-1]).tolist()
        found = []
        for share, position in zip(shares, positions, strict=True):
            if share <= 0:
                found.append(self.min)
            elif share >= 1:
                found.append(self.max)
            else:
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
