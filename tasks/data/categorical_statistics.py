"""A categorical column's statistics: rows present and missing, and the count of each value.

The :data:`MAX_VALUES` most frequent values are counted one by one, the rest together as
``other``; the vocabulary of a ``StringLookup`` and the top-k of the UI come from them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

# Categorical values counted one by one; past this many, the least frequent are counted as "other".
MAX_VALUES = 10_000


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
