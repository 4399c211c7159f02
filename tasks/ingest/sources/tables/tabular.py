"""Tabular files on any fsspec URL: read in record batches, their columns, their numbers.

``data.url`` is one file, a folder, or a glob (``s3://bucket/events/date=*/part-*.parquet``)
of Parquet or CSV files, listed and fetched as every source's files are
(tasks/ingest/sources/files.py, whose names this module re-exports). A file is read record batch by record batch
(:func:`iter_frames`); what becomes of the rows, checked and labelled, is
tasks/ingest/sources/tables/table_reading.py. A damaged file is one clear error naming it.
"""

from __future__ import annotations

import csv
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from kerasflow.tasks import storage
from kerasflow.tasks.failures import DataValidationError

# Listing and fetching are shared with the other sources that read files (sources/files.py);
# the table readers reach them through this module too.
from kerasflow.tasks.ingest.sources.files import SUFFIXES as SUFFIXES
from kerasflow.tasks.ingest.sources.files import TableFile as TableFile
from kerasflow.tasks.ingest.sources.files import download_files as download_files
from kerasflow.tasks.ingest.sources.files import from_identity as from_identity
from kerasflow.tasks.ingest.sources.files import identity as identity
from kerasflow.tasks.ingest.sources.files import list_files as list_files
from kerasflow.tasks.ingest.sources.files import local_copies as local_copies
from kerasflow.tasks.ingest.sources.tables import file_schema

# Rows read at a time when a file is streamed: 65,536 rows of 30 float columns are 7.5 MiB
# as float32, so memory stays flat whatever the file's size, and each batch is large
# enough that per-batch costs (a predict call, a Parquet row group) stay small.
FRAME_ROWS = 65_536
# The most bytes one read batch may take in memory: rows of long text get fewer rows a batch
# (65,536 rows of 200,000-character values would be 13 GB before a check could see one).
BATCH_BYTES = 128 << 20
# Rows of a CSV file read first to measure a row's bytes in memory (few: they are read whatever their size).
SAMPLE_ROWS = 64


def _kind(url: str) -> str:
    return "Parquet" if url.endswith((".parquet", ".pq")) else "CSV"


def _unreadable(url: str, error: BaseException) -> DataValidationError:
    return DataValidationError(
        f"{url}: check 'readable' failed: cannot be read as {_kind(url)} ({type(error).__name__}: {error}); "
        "the file is damaged or not in that format: rewrite it, or move it out of data.url"
    )


def _read_errors() -> tuple[type[BaseException], ...]:
    import pyarrow as pa

    # A truncated .csv.gz ends in EOFError (not an OSError); a corrupt one in zlib.error; a header
    # the csv module cannot read (file_schema.csv_header) in csv.Error.
    return (ValueError, OSError, EOFError, zlib.error, csv.Error, pa.ArrowException)


def read_frame(url: str, path: Path):
    """One Parquet or CSV file as a DataFrame; a damaged file is one clear error naming it.

    Args:
        url: the file's URL; its suffix says Parquet or CSV (``.gz``: gzipped CSV).
        path: the file's local copy.

    Raises:
        DataValidationError: the file cannot be read in the format its suffix names.
    """
    import pandas as pd

    try:
        if _kind(url) == "Parquet":
            import pyarrow.parquet as pq

            # Memory-mapped, and handed to pandas without a second copy (numeric columns share
            # Arrow's buffers): pd.read_parquet peaked at 1.01 GiB on a 2M-row file of 30
            # floats (0.24 GiB of data), this at 0.70.
            table = pq.read_table(path, memory_map=True)
            file_schema.check_unique(url, table.column_names)
            return table.to_pandas(split_blocks=True, self_destruct=True)
        file_schema.check_unique(url, file_schema.csv_header(url, path))
        return pd.read_csv(path, compression="gzip" if url.endswith(".gz") else None)
    except _read_errors() as error:
        raise _unreadable(url, error) from None


def columns_at(url: str) -> list[str]:
    """The column names of the Parquet or CSV file at ``url`` (any fsspec URL), from its footer or header alone.

    Raises:
        DataValidationError: the file cannot be read in the format its suffix names.
    """
    fs, path = storage.filesystem(url)
    with storage.reaching(url), fs.open(path, "rb") as f:
        return columns_of(url, f)


def columns_of(url: str, path) -> list[str]:
    """The column names of one Parquet or CSV file (a local path or an open binary file), from its schema or header.

    Args:
        url: the file's URL; its suffix says Parquet or CSV, and it names the file in errors.
        path: the file's local path, or an open binary file.

    Raises:
        DataValidationError: the file cannot be read in the format its suffix names.
    """
    import pandas as pd

    try:
        if _kind(url) == "Parquet":
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        return list(pd.read_csv(path, compression="gzip" if url.endswith(".gz") else None, nrows=0).columns)
    except _read_errors() as error:
        raise _unreadable(url, error) from None


def parquet_schema(url: str, path):
    """The Arrow schema of a Parquet file, from its footer alone; None for a CSV file.

    Args:
        url: the file's URL; its suffix says Parquet or CSV, and it names the file in errors.
        path: the file's local path, or an open binary file.

    Raises:
        DataValidationError: the file cannot be read as Parquet.
    """
    if _kind(url) != "Parquet":
        return None
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).schema_arrow
    except _read_errors() as error:
        raise _unreadable(url, error) from None


# Rows read to infer a table's column types (numbers or text) from its first file.
INFER_ROWS = 10_000


def first_rows(url: str, *, rows: int = INFER_ROWS):
    """The first ``rows`` rows of the Parquet or CSV file at ``url`` (any fsspec URL), as a DataFrame.

    Args:
        url: the file's URL, any fsspec URL.
        rows: the most rows returned (those of the first record batch or CSV chunk).
    """
    import pandas as pd

    fs, path = storage.filesystem(url)
    with storage.reaching(url), fs.open(path, "rb") as f:
        for _, frame in iter_frames(url, f, rows=rows):
            return frame
    return pd.DataFrame({name: [] for name in columns_at(url)})


def iter_frames(url: str, path: Path, *, columns: list[str] | None = None, rows: int = FRAME_ROWS) -> Iterator:
    """One Parquet or CSV file as DataFrames of at most ``rows`` rows: (first row in the file, frame).

    Parquet is read record batch by record batch (only ``columns``), CSV chunk by chunk, so
    memory holds one batch, not the file; rows of long text get fewer rows a batch, so a
    batch stays within about ``BATCH_BYTES`` (Parquet: the row groups' sizes in the footer;
    CSV: the bytes of its first ``SAMPLE_ROWS`` rows in memory). A damaged file is one clear
    error naming it, and so is a column read whose name the header or schema gives twice
    (tasks/ingest/sources/tables/file_schema.py), before any row is read.
    Each frame's index is its rows' places in the batch, 0 up (see :func:`file_row`).

    Args:
        url: the file's URL; its suffix says Parquet or CSV, and it names the file in errors.
        path: the file's local path, or an open binary file.
        columns: the columns to read; None for every column.
        rows: the most rows per frame (fewer when rows are long).

    Raises:
        DataValidationError: the file cannot be read in the format its suffix names, or a column read
            is named twice.
    """
    import pandas as pd

    try:
        if _kind(url) == "Parquet":
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(path)
            file_schema.check_unique(url, parquet.schema_arrow.names, read=columns)
            rows = min(rows, _rows_within(BATCH_BYTES, _parquet_row_bytes(parquet, columns)))
            frames = (batch.to_pandas() for batch in parquet.iter_batches(batch_size=rows, columns=columns))
        else:
            compression = "gzip" if url.endswith(".gz") else None
            file_schema.check_unique(url, file_schema.csv_header(url, path), read=columns)
            sample = pd.read_csv(path, compression=compression, usecols=columns, nrows=SAMPLE_ROWS)
            if hasattr(path, "seek"):  # an open file: read again from its start
                path.seek(0)
            rows = min(rows, _rows_within(BATCH_BYTES, sample.memory_usage(deep=True).sum() / max(len(sample), 1)))
            frames = pd.read_csv(path, compression=compression, usecols=columns, chunksize=rows)
        first = 0
        for frame in frames:
            frame.index = pd.RangeIndex(len(frame))  # a CSV chunk's index goes on from the last chunk's
            yield first, frame
            first += len(frame)
    except _read_errors() as error:
        raise _unreadable(url, error) from None


def _rows_within(limit: int, row_bytes: float) -> int:
    """How many rows of ``row_bytes`` each fit in ``limit`` bytes; at least one."""
    return max(1, int(limit // max(row_bytes, 1.0)))


def _parquet_row_bytes(parquet, columns: list[str] | None) -> float:
    """The most bytes a row of ``columns`` takes in any row group, uncompressed, from the file's footer."""
    metadata = parquet.metadata
    wanted = None if columns is None else set(columns)
    most = 0.0
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        if not row_group.num_rows:
            continue
        size = sum(
            row_group.column(i).total_uncompressed_size
            for i in range(row_group.num_columns)
            if wanted is None or row_group.column(i).path_in_schema.split(".")[0] in wanted
        )
        most = max(most, size / row_group.num_rows)
    return most


def file_row(frame, position: int, first_row: int) -> int:
    """The row of the file that ``frame``'s row at ``position`` is, for an error to name.

    A frame's index is its rows' places in the batch read from the file, which starts at
    row ``first_row``; a time window keeps that index on the rows it keeps
    (tasks/ingest/sources/tables/window.py), so a row is named by its place in the file, not in the window.

    Args:
        frame: a frame :func:`iter_frames` yielded, or the rows a time window kept of it.
        position: the row's position in ``frame``, 0 up.
        first_row: the file's row number of the first row of the batch ``frame`` was read from.
    """
    return first_row + int(frame.index[position])


def numeric_features(
    url: str, frame, schema: list[str], *, first_row: int = 0, allow_missing: bool = False
) -> np.ndarray:
    """The ``schema`` columns as float32, refusing non-numeric, infinite and (unless ``allow_missing``) missing values.

    ``first_row``: the row of the file ``frame`` starts at (when a file is read in batches),
    so an error names the row of the file. ``allow_missing`` (``data.missing: fill``): a
    missing value is NaN, which the model fills with the training mean. Filled column by column into one array: the
    frame-wide coercion and masks this replaced took four copies of the columns beside the
    frame (a 2M-row file of 30 floats peaked at 1.94 GiB in ingest, issue 14).

    Args:
        url: the file's URL, for messages.
        frame: the rows read.
        schema: the feature columns, in feature order.
        first_row: the file's row number of the first row of the batch ``frame`` was read from.
        allow_missing: a missing value becomes NaN instead of failing (``data.missing: fill``).

    Returns:
        The features, shape ``(rows, len(schema))``.

    Raises:
        DataValidationError: a value is not a number, is infinite, or is missing without ``allow_missing``.
    """
    import pandas as pd

    features = np.empty((len(frame), len(schema)), dtype=np.float32)
    nonfinite = np.zeros(len(frame), dtype=bool)
    for j, column in enumerate(schema):
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values):  # text or mixed: coerced, and what fails is named
            coerced = pd.to_numeric(values, errors="coerce")
            bad = (coerced.isna() & values.notna()).to_numpy()
            if bad.any():
                row = int(bad.argmax())
                raise DataValidationError(
                    f"{url}: check 'numeric' failed: column {column!r} has {int(bad.sum())} "
                    f"non-numeric value(s), first at row {file_row(frame, row, first_row)} ({values.iloc[row]!r}); "
                    "clean the column or leave it out of data.feature_columns"
                )
            values = coerced
        features[:, j] = values.to_numpy(dtype=np.float32, na_value=np.nan)
        nonfinite |= np.isinf(features[:, j]) if allow_missing else ~np.isfinite(features[:, j])
    if nonfinite.any() and allow_missing:
        row = int(nonfinite.argmax())
        column = schema[int(np.isinf(features[row]).argmax())]
        raise DataValidationError(
            f"{url}: check 'finite features' failed: {int(nonfinite.sum())} row(s) have infinite features, first "
            f"at row {file_row(frame, row, first_row)} (column {column!r}); fix or drop those rows at the source "
            "(missing values are filled under data.missing: fill, infinite ones are not)"
        )
    if nonfinite.any():
        row = int(nonfinite.argmax())
        column = schema[int((~np.isfinite(features[row])).argmax())]
        raise DataValidationError(
            f"{url}: check 'finite features' failed: {int(nonfinite.sum())} row(s) have missing, NaN or "
            f"infinite features, first at row {file_row(frame, row, first_row)} (column {column!r}); impute or drop "
            "those rows at the source, or set data.missing: fill to fill missing ones with the training mean"
        )
    return features
