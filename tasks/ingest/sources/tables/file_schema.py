"""A table file's columns as its header or Parquet schema states them, checked before any row is read.

Two things a DataFrame hides are refused here, once per file, naming the file and the fix:

- a column name given twice: pandas renames a CSV's second ``f0`` to ``f0.1`` (so the header is
  read with the csv module, as written), and a Parquet file's two ``f0`` columns are one
  ambiguous column to pandas;
- a Parquet column of lists, structs or maps read as a feature, label or kept column: it has no
  one value per row, and read into a frame it silently became a text category of Python lists.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
from collections import Counter
from collections.abc import Collection, Iterable

from kerasflow.tasks.failures import DataValidationError


def csv_header(url: str, path) -> list[str]:
    """The column names of a CSV file as its header row has them (pandas would rename repeated ones).

    The header is its first non-blank record, as pandas reads it; an open file is left at its start.

    Args:
        url: the file's URL; ``.gz`` means gzipped.
        path: the file's local path, or an open binary file.

    Raises:
        UnicodeDecodeError: the header is not UTF-8.
        csv.Error: the header is not a CSV record.
        OSError, EOFError: the file (or its gzip stream) is damaged.
    """
    with contextlib.ExitStack() as closing:
        given = hasattr(path, "read")
        opened = path if given else closing.enter_context(open(path, "rb"))
        if given:  # the caller's file: back at its start for the reader that follows
            closing.callback(path.seek, 0)
        raw = gzip.GzipFile(fileobj=opened, mode="rb") if url.endswith(".gz") else opened
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        try:
            return next((record for record in csv.reader(text) if record), [])
        finally:
            text.detach()  # closing the wrapper would close the file under it


def check_unique(url: str, names: Iterable[str], *, read: Collection[str] | None = None) -> None:
    """Refuse a file whose columns (those ``read``) include a name given more than once.

    A CSV column without a name is not counted: pandas names it by its place (``Unnamed: 3``).

    Args:
        url: the file's URL, for the message.
        names: the file's column names, as written.
        read: the columns that will be read; None for all.

    Raises:
        DataValidationError: a name read appears more than once.
    """
    counts = Counter(name for name in names if name != "" and (read is None or name in read))
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if repeated:
        raise DataValidationError(
            f"{url}: check 'unique columns' failed: column name(s) {repeated} appear more than once in the "
            "file's header or schema, so a name does not say which column it means; rename or drop the repeated "
            "columns so each name appears once"
        )


def nested(arrow_type) -> bool:
    """Whether an Arrow type holds more than one value per row: a list, struct, map or union, or a dictionary of one.

    Args:
        arrow_type: a ``pyarrow.DataType``.
    """
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return bool(pa.types.is_nested(arrow_type))


def check_flat(url: str, schema, columns: Collection[str]) -> None:
    """Refuse a Parquet file whose ``columns`` include one of a nested Arrow type, from its schema alone.

    Args:
        url: the file's URL, for the message.
        schema: the file's ``pyarrow.Schema``.
        columns: the columns read as features, label or kept columns; others are not read and may be nested.

    Raises:
        DataValidationError: a column of ``columns`` is a list, struct, map or union (or a dictionary of one).
    """
    found = [(field.name, field.type) for field in schema if field.name in columns and nested(field.type)]
    if found:
        named = ", ".join(f"column {name!r} has Arrow type {arrow_type}" for name, arrow_type in found)
        raise DataValidationError(
            f"{url}: check 'flat columns' failed: {named}: several values per row, where a column the table reads "
            "holds one; flatten it into scalar columns (one value per row each), or, for a feature, leave it out "
            "of the features (data.feature_columns, or data.columns)"
        )
