"""A table's rows as read from its files: checked record batch by record batch, then stacked or cut into parts.

Every file is read in record batches (Parquet) or chunks (CSV) of ``tabular.FRAME_ROWS``
rows and each batch is checked and turned into arrays as it arrives, so a file never
sits in memory as a DataFrame. :func:`read_table` stacks the files of a table;
:func:`read_parts` cuts one file into parts of about ``PART_ROWS`` rows, so a file of any
size is stored with memory bounded by a part (tasks/ingest/file_parts.py). Every problem
names the file, the check, the count, the first bad row (within that file) and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.data.source_data import groups
from kerasflow.tasks.data.typed_arrays import TypedArrays
from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.ingest.sources.tables import file_schema, tabular, typed_columns, window
from kerasflow.tasks.ingest.sources.tables import labels as label_rule
from kerasflow.tasks.ingest.sources.tables.tabular import TableFile

# Rows of one file stored as one part. 2^20 rows of 30 float columns are 126 MB as float32:
# a part's arrays, its hashes and what TFDS holds while writing it stay well under 1 GiB,
# and a part is large enough that its fixed cost (a TFDS dataset, a published ref) is small.
PART_ROWS = 1_048_576


@dataclass(frozen=True)
class Table:
    """A table's rows, read and checked: the feature columns by storage, the labels, the slices.

    Args:
        arrays: the feature columns by storage: floats, integers, text.
        labels: one label per row: int64 class ids, or float32 targets when ``data.labels`` is ``numbers``.
        columns: the feature columns, in feature order.
        column_types: feature column -> type (models/column_types.py), in feature order.
        class_names: the classes, by id; empty for a regression.
        ignored_columns: the columns outside the recipe's schema, not read.
        slices: slice column -> each row's value, as text.
        split_keys: each row's ``data.split_key`` value, when the recipe names one.
    """
    arrays: TypedArrays  # the feature columns by storage: floats, integers, text
    labels: np.ndarray  # (rows,) int64 class ids, or float32 targets when data.labels is "numbers"
    columns: list[str]
    column_types: dict[str, str]  # feature column -> type (models/column_types.py), in feature order
    class_names: list[str]
    ignored_columns: list[str]
    slices: dict[str, np.ndarray]  # slice column -> value of each row, as text
    split_keys: np.ndarray | None = None  # data.split_key's value of each row, when the recipe names one


@dataclass(frozen=True)
class Part:
    """Consecutive rows of one file, read and checked, as a table of their own.

    Args:
        table: the part's rows.
        first_row: the file's row number of the part's first row.
        rows: the rows of the file the part covers (a time window may keep fewer).
        last: no row of the file follows.
    """

    table: Table
    first_row: int  # the file's row number of the part's first row
    rows: int  # rows of the file the part covers (a time window may keep fewer)
    last: bool  # no row of the file follows


@dataclass(frozen=True)
class _Batch:
    """One record batch of a file, checked; labels still as the file has them."""

    url: str
    first_row: int
    rows: int  # rows read (before a time window keeps some)
    arrays: TypedArrays
    labels: np.ndarray
    slices: dict[str, np.ndarray]
    keys: np.ndarray | None
    ignored: set[str]
    # Under a time window: the places in the batch of the rows it kept (None: every row).
    kept_rows: np.ndarray | None = None


def read_table(files: list[TableFile], data: DataConfig, *, downloaded: dict[str, Path] | None = None) -> Table:
    """Download ``files`` (concurrently when remote), read and check them, and stack them.

    The first file's columns and their types are the table's. ``downloaded``: local copies
    fetched beforehand, by URL.

    Args:
        files: the table's files, in order.
        data: the recipe's ``data`` section (columns, labels, window...).
        downloaded: file URL -> a local copy fetched beforehand; used when it has every file.

    Raises:
        DataValidationError: a file's rows fail a check, or no row lies in the time window.
    """
    with tabular.local_copies(files, downloaded) as local:
        batches: list[_Batch] = []
        types: dict[str, str] | None = None
        for file, path in zip(files, local, strict=True):
            for batch, read_with in _batches(file.url, path, data, types):
                batches.append(batch)
                types = read_with  # the first file's, imposed on the others
    if data.window is not None and data.window.column and not sum(len(b.labels) for b in batches):
        raise no_rows(data)
    return _stacked(batches, data, types or {})


def no_rows(data: DataConfig) -> DataValidationError:
    """The error for a table with no row to store: none in its files, or none in the time window."""
    if data.window is not None and data.window.column:
        start, end = window.bounds(data.window)
        return DataValidationError(
            f"{data.url}: check 'window' failed: no row has a {data.window.column!r} time from {start} to {end} "
            f"(data.window.days={data.window.days}); widen data.window.days or set data.window.until"
        )
    return DataValidationError(
        f"{data.url}: check 'rows' failed: the table's files hold no row; point data.url at files with rows"
    )


def read_parts(file: TableFile, path: Path, data: DataConfig, *, rows: int | None = None) -> Iterator[Part]:
    """The file at ``path`` as parts of ``rows`` rows (``PART_ROWS``) or a little more: whole record batches.

    The feature columns and their types are the recipe's, else the file's first batch's. A
    part is checked and labelled on its own (its class ids its own), and the next batch is
    read before a part is handed on, so a part knows whether it is the last.

    Args:
        file: the file.
        path: the file's local copy.
        data: the recipe's ``data`` section (columns, labels, window...).
        rows: rows per part, at least; None for ``PART_ROWS``.

    Raises:
        DataValidationError: the file's rows fail a check.
    """
    rows = rows or PART_ROWS
    pending: list[_Batch] = []
    read = iter(_batches(file.url, path, data, None))
    following = next(read, None)
    while following is not None:
        batch, types = following
        pending.append(batch)
        following = next(read, None)
        covered = sum(b.rows for b in pending)
        if covered >= rows or following is None:
            first_row = pending[0].first_row
            yield Part(_stacked(pending, data, types), first_row, covered, last=following is None)
            pending = []


def _batches(
    url: str, path: Path, data: DataConfig, types: dict[str, str] | None
) -> Iterator[tuple[_Batch, dict[str, str]]]:
    """The file's record batches, checked, each with the types it was read with (the first batch's, unless given)."""
    schema = tabular.parquet_schema(url, path)
    if schema is not None:  # a nested column is refused from the footer, before a row is read
        read = [*typed_columns.feature_names(data, schema.names), data.label_column, *data.kept_columns]
        file_schema.check_flat(url, schema, read)
    read_any = False
    for first_row, frame in tabular.iter_frames(url, path, rows=tabular.FRAME_ROWS):
        read_any = True
        if types is None:  # before a time window keeps some rows: the file's columns, not the window's
            types = typed_columns.resolve_types(data, frame.head(tabular.INFER_ROWS), url=url)
        yield _checked(url, first_row, frame, data, types), types
    if not read_any:  # an empty file yields no batch, and its columns are still checked
        frame = tabular.read_frame(url, path)
        types = types or typed_columns.resolve_types(data, frame, url=url)
        yield _checked(url, 0, frame, data, types), types


def _checked(url: str, first_row: int, frame, data: DataConfig, types: dict[str, str]) -> _Batch:
    rows = len(frame)
    kept_rows = None
    if data.window is not None and data.window.column:
        frame = window.rows_in_window(url, frame, data.window, first_row=first_row)
        kept_rows = frame.index.to_numpy() if len(frame) < rows else None
    ignored = _check_columns(url, frame, [*types, *data.kept_columns], data)
    arrays = typed_columns.read_columns(url, frame, types, missing=data.missing, first_row=first_row)
    text = groups(types)["string"]
    typed_columns.check_category_lengths(url, frame, arrays.strings, text, types=types, first_row=first_row)
    labels = frame[data.label_column]
    if labels.isna().any():
        missing = labels.isna().to_numpy()
        raise DataValidationError(
            f"{url}: check 'label present' failed: {int(missing.sum())} row(s) have no label in column "
            f"{data.label_column!r}, first at row {tabular.file_row(frame, int(missing.argmax()), first_row)}; drop "
            "or label those rows"
        )
    return _Batch(
        url=url,
        first_row=first_row,
        rows=rows,
        arrays=arrays,
        labels=labels.to_numpy(),
        slices={c: frame[c].fillna("(missing)").astype(str).to_numpy() for c in data.slice_columns},
        keys=_split_key_values(url, frame, data.split_key, first_row=first_row) if data.split_key else None,
        ignored=ignored,
        kept_rows=kept_rows,
    )


def _stacked(batches: list[_Batch], data: DataConfig, types: dict[str, str]) -> Table:
    """The batches as one table: labelled together (class names from all of them), each row locatable in its file.

    Consumes ``batches`` (the list is emptied once they are stacked), so the batches and
    the stacked table are not both held while the labels are read.
    """
    arrays = batches[0].arrays if len(batches) == 1 else _stack([b.arrays for b in batches])
    raw_labels = np.concatenate([b.labels for b in batches]) if len(batches) > 1 else batches[0].labels
    locate = _locator(batches)
    slices = {c: np.concatenate([b.slices[c] for b in batches]) for c in data.slice_columns}
    keys = np.concatenate([b.keys for b in batches]) if data.split_key else None  # type: ignore[misc]
    ignored = sorted(set().union(*(b.ignored for b in batches)))
    batches.clear()  # the caller's list too: one copy of the rows from here, not two
    if data.labels == "numbers":
        labels, class_names = label_rule.label_numbers(raw_labels, locate=locate, column=data.label_column), []
    else:
        labels, class_names = label_rule.label_class_ids(raw_labels, classes=data.classes, locate=locate)
    return Table(arrays, labels, list(types), dict(types), class_names, ignored, slices, keys)


def _locator(batches: list[_Batch]) -> Callable[[int], tuple[int, str]]:
    """Row of the stacked batches -> (row within its file, file URL), through a time window's kept rows."""
    kept = np.cumsum([len(b.labels) for b in batches])
    starts = [(b.first_row, b.url, b.kept_rows) for b in batches]

    def locate(row: int) -> tuple[int, str]:
        number = int(np.searchsorted(kept, row, side="right"))
        before = int(kept[number - 1]) if number else 0
        first_row, url, kept_rows = starts[number]
        place = row - before
        return first_row + (int(kept_rows[place]) if kept_rows is not None else place), url

    return locate


def _stack(parts: list[TypedArrays]) -> TypedArrays:
    return TypedArrays(
        floats=np.concatenate([p.floats for p in parts]),
        integers=np.concatenate([p.integers for p in parts]),
        strings=np.concatenate([p.strings for p in parts]),
    )


def _split_key_values(url: str, frame, column: str, *, first_row: int) -> np.ndarray:
    """The split key of every row, as text; a row without one has no split."""
    values = frame[column]
    if values.isna().any():
        missing = values.isna().to_numpy()
        row = tabular.file_row(frame, int(missing.argmax()), first_row)
        raise DataValidationError(
            f"{url}: check 'split key present' failed: {int(missing.sum())} row(s) have no value in "
            f"data.split_key column {column!r}, first at row {row}; fill the key at the source or drop those rows"
        )
    return values.astype(str).to_numpy()


def _check_columns(url: str, frame, schema: list[str], data: DataConfig) -> set[str]:
    missing = [c for c in [*schema, data.label_column] if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{url}: check 'columns' failed: missing column(s) {missing}; the file has "
            f"{list(frame.columns)}. Fix data.columns (or data.feature_columns) / data.label_column or the file."
        )
    extra = {c for c in frame.columns if c not in schema and c != data.label_column}
    if extra and data.extra_columns == "error":
        raise DataValidationError(
            f"{url}: check 'columns' failed: extra column(s) {sorted(extra)} outside the recipe's schema "
            f"{schema}; add them to data.columns (or data.feature_columns), or set data.extra_columns=ignore"
        )
    return extra
