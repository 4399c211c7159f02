"""A table's feature columns with their types, read into arrays by how each type is stored.

``data.columns`` names the feature columns and their types; without it every column but
the label (and the slice and split-key columns) is a feature, numbers ``float_normalized``
and text ``string_categorical`` (a text column whose values are nearly all numbers is a
number column with bad values, refused by name as before; one whose values are nearly all
numbers written with a ',' is refused, not kept as one category per number). A type's storage
(models/column_types.py) decides how its column is read:

- ``float``: float32, NaN where missing (allowed only under ``data.missing: fill``);
- ``integer``: int64, :data:`MISSING_INTEGER` where missing;
- ``string``: text, :data:`MISSING_TEXT` where missing; for free text (the ``text`` type) the empty
  text, and a column of numbers is refused.

Ingestion and scoring read through the same functions, so a row is fed to the model the
same way in both.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from kerasflow.models.column_types import MISSING_INTEGER, MISSING_TEXT, column_type, is_free_text
from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.data.source_data import groups
from kerasflow.tasks.data.typed_arrays import TypedArrays
from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.ingest.sources.tables.tabular import file_row, numeric_features

# A text column is taken for a number column with bad values when this share of its values are numbers.
NUMERIC_SHARE = 0.9
# A number written with a ',': a decimal comma (3,5; 1.234,5; 1 234,5) or thousands separators
# (1,234; 1,234.5). Groups of three digits only, so "1,2,3" (codes) or "a, b" stay text.
COMMA_NUMBER = r"[+-]?(?:\d+|\d{1,3}(?:[. \u00a0\u202f]\d{3})+),\d+|[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?"


# The longest text category kept: a label, a code, a name or an address fits. Its vocabulary
# of at most MAX_VALUES (10,000) values then stays under 40 MiB inside the model's config,
# below what the model-file check accepts (64 MiB); values of 200,000 characters exhausted
# memory at ingest, and 12,000 of 8 KB made a model kerasflow itself refused after training.
MAX_CATEGORY_CHARS = 4096


def infer_types(frame, names: list[str]) -> dict[str, str]:
    """Each column's default type: numbers ``float_normalized``, text ``string_categorical``.

    Args:
        frame: rows of the table (its first rows).
        names: the columns to type, each in ``frame``.

    Returns:
        Column -> type: numbers, booleans and text columns whose values are at least ``NUMERIC_SHARE``
        numbers are ``float_normalized``; the rest ``string_categorical``.
    """
    import pandas as pd

    types = {}
    for name in names:
        values = frame[name]
        numeric = pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
        if not numeric:
            present = values.dropna()
            parsed = pd.to_numeric(present, errors="coerce").notna().mean() if len(present) else 1.0
            numeric = bool(parsed >= NUMERIC_SHARE)
        types[name] = "float_normalized" if numeric else "string_categorical"
    return types


def feature_names(data: DataConfig, columns: list[str]) -> list[str]:
    """The feature columns of a file with ``columns``: data.columns', data.feature_columns, or all but the kept ones.

    Args:
        data: the recipe's ``data`` section.
        columns: the file's columns, in order.
    """
    if data.columns is not None:
        return list(data.columns)
    if data.feature_columns is not None:
        return list(data.feature_columns)
    kept = {data.label_column, *data.kept_columns}
    return [c for c in columns if c not in kept]


def resolve_types(data: DataConfig, frame, *, url: str) -> dict[str, str]:
    """The table's feature columns and their types, in order, from the config and (for defaults) ``frame``.

    A declared type is taken as is; an inferred one is checked (:func:`check_comma_numbers`).

    Args:
        data: the recipe's ``data`` section.
        frame: rows of the table (its first rows, from the file's first row), whose columns and values
            give the defaults.
        url: the file ``frame`` was read from, for messages.

    Returns:
        Feature column -> type, in feature order; a configured column the frame lacks is ``float_normalized``.

    Raises:
        DataValidationError: a column inferred as text holds numbers written with a ','.
    """
    if data.columns is not None:
        return {name: spec.type for name, spec in data.columns.items()}  # type: ignore[union-attr]
    names = feature_names(data, list(frame.columns))
    inferred = infer_types(frame, [n for n in names if n in frame.columns])
    check_comma_numbers(url, frame, inferred)
    return inferred | {
        n: "float_normalized"
        for n in names
        if n not in frame.columns  # missing: refused by the column check
    }


def check_comma_numbers(url: str, frame, types: Mapping[str, str], *, first_row: int = 0) -> None:
    """Refuse a column inferred as text whose values are nearly all numbers once a ',' is read as a number's.

    Numbers written with a decimal comma or thousands separators do not parse, so the column
    would become a text category with one value per number. Only the first rows are looked
    at (those types are inferred from), once per file.

    Args:
        url: the file's URL, for the message.
        frame: the rows the types were inferred from.
        types: column -> inferred type; only ``string_categorical`` columns are looked at.
        first_row: the file's row number of ``frame``'s first row.

    Raises:
        DataValidationError: at least :data:`NUMERIC_SHARE` of a text column's present values are numbers,
            some of them written with a ','.
    """
    import pandas as pd

    for column, type_name in types.items():
        if type_name != "string_categorical":
            continue
        values = frame[column]
        present = values.notna().to_numpy()
        text = values[present].astype(str).str.strip()
        commas = text.str.fullmatch(COMMA_NUMBER).to_numpy(dtype=bool, na_value=False)
        if not commas.any():
            continue
        numbers = commas | pd.to_numeric(text, errors="coerce").notna().to_numpy()
        if numbers.mean() < NUMERIC_SHARE:
            continue
        position = int(np.flatnonzero(present)[int(commas.argmax())])
        raise DataValidationError(
            f"{url}: check 'decimal mark' failed: column {column!r} would be read as text (string_categorical, "
            f"one category per value), but {int(commas.sum())} of its {len(text)} values in the first rows are "
            "numbers written with a ',' (a decimal mark or thousands separator), first at row "
            f"{file_row(frame, position, first_row)} ({values.iloc[position]!r}); write numbers with a '.' "
            "decimal mark and no thousands separator, or declare the column's type in data.columns "
            "(string_categorical if it really is text)"
        )


def read_columns(url: str, frame, types: Mapping[str, str], *, missing: str, first_row: int = 0) -> TypedArrays:
    """``frame``'s feature columns as arrays by storage; bad values refused with the file and row named.

    Args:
        url: the file's URL, for messages.
        frame: the rows read.
        types: feature column -> type, in feature order.
        missing: the recipe's ``data.missing``: ``fill`` lets a number be missing (NaN).
        first_row: the file's row number of the first row of the batch ``frame`` was read from.

    Raises:
        DataValidationError: a number column holds a value that is not a number, infinite, or (without
            ``fill``) missing, an integer column a value that is not a whole number, or a text column numbers.
    """
    by_group = groups(types)
    free_text = [c for c in by_group["string"] if is_free_text(column_type(types[c]))]
    check_free_text(url, frame, free_text, types=types)
    return TypedArrays(
        floats=numeric_features(url, frame, by_group["float"], first_row=first_row, allow_missing=missing == "fill"),
        integers=integer_values(url, frame, by_group["integer"], first_row=first_row),
        strings=text_values(frame, by_group["string"], free_text=free_text),
    )


def check_free_text(url: str, frame, columns: list[str], *, types: Mapping[str, str]) -> None:
    """Refuse a free-text column (``text``) the file holds as numbers: its tokens would be digits.

    Args:
        url: the file's URL, for the message.
        frame: the rows read.
        columns: the free-text columns.
        types: feature column -> type, for the message.

    Raises:
        DataValidationError: a column's values are numbers or booleans (a column of missing values only is text).
    """
    import pandas as pd

    for column in columns:
        values = frame[column]
        numeric = pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
        if numeric and values.notna().any():
            raise DataValidationError(
                f"{url}: check 'text' failed: column {column!r} is declared {types[column]} (free text, split into "
                f"words) but received numbers ({values.dtype}), expected text; declare it float_normalized (a "
                "number) or integer_categorical (a code) in data.columns"
            )


def check_category_lengths(
    url: str, frame, strings: np.ndarray, columns: list[str], *, types: Mapping[str, str], first_row: int = 0
) -> None:
    """Refuse a text category longer than :data:`MAX_CATEGORY_CHARS`, naming the column, row and fix.

    Args:
        url: the file's URL, for the message.
        frame: the rows read, for the file's row numbers.
        strings: the text columns' values, shape ``(rows, len(columns))``.
        columns: the text columns, in order.
        types: feature column -> type, for the message.
        first_row: the file's row number of the first row of ``strings``.

    Raises:
        DataValidationError: a value is longer than :data:`MAX_CATEGORY_CHARS` characters.
    """
    if not strings.size:
        return
    lengths = np.fromiter(map(len, strings.ravel()), dtype=np.int64, count=strings.size).reshape(strings.shape)
    for j, column in enumerate(columns):
        if is_free_text(column_type(types[column])):  # split into words: its vocabulary is tokens, not whole values
            continue
        long = np.flatnonzero(lengths[:, j] > MAX_CATEGORY_CHARS)
        if len(long):
            row = file_row(frame, int(long[0]), first_row)
            raise DataValidationError(
                f"{url}: check 'category length' failed: column {column!r} ({types[column]}) has {len(long)} "
                f"value(s) longer than {MAX_CATEGORY_CHARS} characters, first at row {row} "
                f"({int(lengths[long[0], j])} characters); a category is a short label or code, kept whole in the "
                "model's vocabulary and the statistics: shorten or map the values, declare it text (free text, split "
                "into words) or leave the column out of the table (data.columns)"
            )


def integer_values(url: str, frame, columns: list[str], *, first_row: int = 0) -> np.ndarray:
    """Integer category columns as int64; a missing value is :data:`MISSING_INTEGER`, a non-integer refused.

    Args:
        url: the file's URL, for messages.
        frame: the rows read.
        columns: the integer columns, in order.
        first_row: the file's row number of the first row of the batch ``frame`` was read from.

    Returns:
        Shape ``(rows, len(columns))``.

    Raises:
        DataValidationError: a present value is not a whole number.
    """
    import pandas as pd

    out = np.empty((len(frame), len(columns)), dtype=np.int64)
    for j, column in enumerate(columns):
        values = frame[column]
        present = values.notna().to_numpy()
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = present & ~(np.isfinite(numbers) & (np.floor(numbers) == numbers))
        if bad.any():
            row = int(bad.argmax())
            value = values.iloc[row]
            raise DataValidationError(
                f"{url}: check 'integer' failed: column {column!r} (integer_categorical/integer_hashed) has "
                f"{int(bad.sum())} value(s) that are not integers, first at row {file_row(frame, row, first_row)} "
                f"({value.item() if hasattr(value, 'item') else value!r}); give it a string type in data.columns, "
                "or clean the column"
            )
        if pd.api.types.is_integer_dtype(values):  # exact: int64 beyond 2**53 must not go through float64
            out[:, j] = values.to_numpy(dtype=np.int64, na_value=MISSING_INTEGER)
        else:
            out[:, j] = np.where(present, np.nan_to_num(numbers), 0).astype(np.int64)
            out[~present, j] = MISSING_INTEGER
    return out


def text_values(frame, columns: list[str], *, free_text: list[str] | tuple[str, ...] = ()) -> np.ndarray:
    """Text columns as str; a missing category is :data:`MISSING_TEXT` (a category of its own), a missing text "".

    Args:
        frame: the rows read.
        columns: the text columns, in order.
        free_text: those of ``columns`` that are free text (the ``text`` type): a missing one is the empty text.

    Returns:
        Shape ``(rows, len(columns))``, of Python strings.
    """
    out = np.empty((len(frame), len(columns)), dtype=object)
    for j, column in enumerate(columns):
        values = frame[column]
        text = values.astype(str).to_numpy(dtype=object)
        text[values.isna().to_numpy()] = "" if column in free_text else MISSING_TEXT
        out[:, j] = text
    return out
