"""A typed table's columns held as arrays, one per storage group, and their statistics.

Rows of a table (and of a bundled sample table) are held as three arrays by storage:
floats, integers and text (``GROUP_KEYS`` in source_data.py says the key each is stored
under). Sources build them (tables: tasks/ingest/sources/tables/typed_columns.py);
materialization stores them and statistics describe them here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from kerasflow.models.column_types import MISSING_INTEGER, MISSING_TEXT, column_type, is_free_text
from kerasflow.tasks.data.source_data import groups
from kerasflow.tasks.data.statistics import SplitStatistics, split_statistics

__all__ = ["TypedArrays", "missing_tokens", "statistics_of"]


@dataclass(frozen=True)
class TypedArrays:
    """A typed table's rows as three arrays, one per storage group, columns in feature order.

    Args:
        floats: ``(rows, float columns)`` float32.
        integers: ``(rows, integer columns)`` int64.
        strings: ``(rows, string columns)`` of ``str`` objects.
    """

    floats: np.ndarray  # (rows, float columns) float32
    integers: np.ndarray  # (rows, integer columns) int64
    strings: np.ndarray  # (rows, string columns) object (str)

    def stored(self) -> dict[str, np.ndarray]:
        """The non-empty groups by their stored key."""
        arrays = {"features": self.floats, "integers": self.integers, "strings": self.strings}
        return {key: values for key, values in arrays.items() if values.shape[1]}

    def columns(self, types: Mapping[str, str]) -> dict[str, np.ndarray]:
        """One array per column, by name (what the model is fed).

        Args:
            types: column name -> type name, every column in feature order: what says each column's group and
                place in it.
        """
        by_group = groups(types)
        arrays = {"float": self.floats, "integer": self.integers, "string": self.strings}
        return {name: arrays[storage][:, j] for storage, names in by_group.items() for j, name in enumerate(names)}


def missing_tokens(types: Mapping[str, str]) -> dict[str, Any]:
    """The value that stands for a missing category, per categorical column (for statistics).

    Args:
        types: column name -> type name.
    """
    tokens = {"integer": MISSING_INTEGER, "string": MISSING_TEXT}
    return {name: tokens[column_type(t).storage] for name, t in types.items() if column_type(t).storage in tokens}


def statistics_of(
    columns: Mapping[str, np.ndarray],
    types: Mapping[str, str],
    *,
    labels: np.ndarray | None = None,
    class_names: list[str] | None = None,
    rows: np.ndarray | None = None,
) -> SplitStatistics:
    """The statistics of a typed table's ``columns`` (and ``labels``), categories counted as values, texts by tokens.

    Args:
        columns: column name -> its values, one per row (:meth:`TypedArrays.columns`).
        types: column name -> type name.
        labels: one label per row: class ids, or a regression target's numbers.
        class_names: names of the class ids; None: the labels are numbers.
        rows: the row indices to count; None: every row.
    """
    return split_statistics(
        columns,
        categorical=[name for name, t in types.items() if column_type(t).categorical],
        text=[name for name, t in types.items() if is_free_text(column_type(t))],
        labels=labels,
        class_names=class_names,
        missing_tokens=missing_tokens(types),
        rows=rows,
    )
