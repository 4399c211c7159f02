"""Tabular files on any fsspec URL: list, fingerprint, download in bulk, read and check.

``data.url`` is one file, a folder, or a glob (``s3://bucket/events/date=*/part-*.parquet``)
of Parquet or CSV files. Listing is cheap and names the content: the sorted (key, size,
ETag or mtime) of every file, so one new partition is a new fingerprint and the files
are downloaded only when that fingerprint has not been materialized yet. Downloads are
one concurrent s3fs call. Every problem found while reading names the file, the check,
the count, the first bad row (within that file) and the fix.
"""

from __future__ import annotations

import os
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import numpy as np

from kerasflow.tasks import storage
from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.ingest import labels as label_rule
from kerasflow.tasks.ingest import typed_columns, window
from kerasflow.tasks.ingest.typed_columns import TypedArrays

SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz")


@dataclass(frozen=True)
class TableFile:
    url: str
    path: str  # path within its filesystem
    size: int
    version: str  # ETag on object stores, mtime on disks


@dataclass(frozen=True)
class Table:
    arrays: TypedArrays  # the feature columns by storage: floats, integers, text
    labels: np.ndarray  # (rows,) int64 class ids, or float32 targets when data.labels is "numbers"
    columns: list[str]
    column_types: dict[str, str]  # feature column -> type (models/column_types.py), in feature order
    class_names: list[str]
    ignored_columns: list[str]
    slices: dict[str, np.ndarray]  # slice column -> value of each row, as text
    split_keys: np.ndarray | None = None  # data.split_key's value of each row, when the recipe names one


def list_files(url: str, *, suffixes: tuple[str, ...] | None = SUFFIXES) -> list[TableFile]:
    """The data files ``url`` names, sorted; each with what identifies its content.

    ``suffixes``: in a folder, the files to list (None: every file) and the only ones accepted.
    """
    fs, pattern = storage.filesystem(url)
    try:
        with storage.reaching(url):
            if any(ch in pattern for ch in "*?["):
                infos = fs.glob(pattern, detail=True)
            elif fs.isdir(pattern):
                found = fs.find(pattern, detail=True)
                infos = {p: i for p, i in found.items() if not suffixes or p.endswith(suffixes)}
            else:
                infos = {pattern: fs.info(pattern)}
    except FileNotFoundError:
        infos = {}
    files = []
    for path, info in sorted(infos.items()):
        if info.get("type") == "directory":
            continue
        version = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or ""
        files.append(
            TableFile(
                url=path if storage.is_local(url) else fs.unstrip_protocol(path),
                path=path,
                size=int(info.get("size") or 0),
                version=str(version),
            )
        )
    if not files:
        raise DataValidationError(
            f"{url}: check 'files exist' failed: no file matches; point data.url at a CSV or Parquet "
            "file, a folder of them, or a glob such as s3://bucket/events/date=*/part-*.parquet"
        )
    unknown = [f.url for f in files if suffixes and not f.url.endswith(suffixes)]
    if unknown:
        raise DataValidationError(
            f"{unknown[0]}: check 'format' failed: {len(unknown)} file(s) are neither .parquet nor .csv; "
            "narrow data.url to the data files"
        )
    return files


def identity(files: list[TableFile]) -> list[list[Any]]:
    return [[f.url, f.size, f.version] for f in files]


def from_identity(rows: list[list[Any]]) -> list[TableFile]:
    """The files an identity names (its (url, size, version) rows), as :func:`list_files` gave them."""
    return [TableFile(url=url, path=fsspec.core.url_to_fs(url)[1], size=size, version=v) for url, size, v in rows]


def read_table(files: list[TableFile], data: DataConfig, *, downloaded: dict[str, Path] | None = None) -> Table:
    """Download ``files`` (concurrently when remote), read and check them, and stack them.

    ``downloaded``: local copies fetched beforehand, by URL (tasks/ingest/partitions.py
    fetches the new files of a table in one concurrent get, then reads them one by one).
    """
    with tempfile.TemporaryDirectory(prefix="kerasflow-files-") as tmp:
        if downloaded is not None and all(f.url in downloaded for f in files):
            local = [downloaded[f.url] for f in files]
        else:
            local = download_files(files, Path(tmp))
        parts, slice_parts, key_parts = [], [], []
        types: dict[str, str] | None = None
        ignored: set[str] = set()
        kept = data.kept_columns  # read, not features
        for file, path in zip(files, local, strict=True):
            frame = read_frame(file.url, path)
            if data.window is not None and data.window.column:
                frame = window.rows_in_window(file.url, frame, data.window)
            if types is None:  # the first file's columns and their types are the table's
                types = typed_columns.resolve_types(data, frame.head(INFER_ROWS))
            ignored |= _check_columns(file.url, frame, [*types, *kept], data)
            parts.append(_check_rows(file.url, frame, types, data))
            slice_parts.append({c: frame[c].fillna("(missing)").astype(str).to_numpy() for c in data.slice_columns})
            if data.split_key:
                key_parts.append(_split_key_values(file.url, frame, data.split_key))
            del frame  # one file's frame at a time, not the last one beside the stacked table
    if data.window is not None and data.window.column and not sum(len(p[1]) for p in parts):
        start, end = window.bounds(data.window)
        raise DataValidationError(
            f"{data.url}: check 'window' failed: no row has a {data.window.column!r} time from {start} to {end} "
            f"(data.window.days={data.window.days}); widen data.window.days or set data.window.until"
        )
    # One file (each file of a table stored per file, tasks/ingest/partitions.py) is not copied.
    arrays = parts[0][0] if len(parts) == 1 else _stack([p[0] for p in parts])
    raw_labels = parts[0][1] if len(parts) == 1 else np.concatenate([p[1] for p in parts])
    lengths = [len(p[1]) for p in parts]
    del parts  # the per-file copies go before the labels are read: one copy of the table, not two
    locate = lambda row: _locate(row, lengths, files)  # noqa: E731 - one line, used twice
    if data.labels == "numbers":
        labels, class_names = label_rule.label_numbers(raw_labels, locate=locate, column=data.label_column), []
    else:
        labels, class_names = label_rule.label_class_ids(raw_labels, classes=data.classes, locate=locate)
    slices = {c: np.concatenate([s[c] for s in slice_parts]) for c in data.slice_columns}
    keys = np.concatenate(key_parts) if key_parts else None
    types = types or {}
    return Table(arrays, labels, list(types), dict(types), class_names, sorted(ignored), slices, keys)


def _stack(parts: list[TypedArrays]) -> TypedArrays:
    return TypedArrays(
        floats=np.concatenate([p.floats for p in parts]),
        integers=np.concatenate([p.integers for p in parts]),
        strings=np.concatenate([p.strings for p in parts]),
    )


def _split_key_values(url: str, frame, column: str) -> np.ndarray:
    """The split key of every row, as text; a row without one has no split."""
    values = frame[column]
    if values.isna().any():
        missing = values.isna().to_numpy()
        raise DataValidationError(
            f"{url}: check 'split key present' failed: {int(missing.sum())} row(s) have no value in "
            f"data.split_key column {column!r}, first at row {int(missing.argmax())}; fill the key at the source "
            "or drop those rows"
        )
    return values.astype(str).to_numpy()


def download_files(files: list[TableFile], folder: Path) -> list[Path]:
    """Local paths of ``files``: remote ones fetched into ``folder`` by one concurrent get."""
    remote = [f for f in files if not storage.is_local(f.url)]
    if not remote:
        return [Path(f.path) for f in files]
    fs, _ = storage.filesystem(remote[0].url)
    targets = [folder / f"{i:06d}-{Path(f.path).name}" for i, f in enumerate(files)]
    with storage.reaching(files[0].url):
        fs.get([f.path for f in files], [os.fspath(t) for t in targets])
    return targets


# Rows read at a time when a file is streamed: 65,536 rows of 30 float columns are 7.5 MiB
# as float32, so memory stays flat whatever the file's size, and each batch is large
# enough that per-batch costs (a predict call, a Parquet row group) stay small.
FRAME_ROWS = 65_536


def _kind(url: str) -> str:
    return "Parquet" if url.endswith((".parquet", ".pq")) else "CSV"


def _unreadable(url: str, error: BaseException) -> DataValidationError:
    return DataValidationError(
        f"{url}: check 'readable' failed: cannot be read as {_kind(url)} ({type(error).__name__}: {error}); "
        "the file is damaged or not in that format: rewrite it, or move it out of data.url"
    )


def _read_errors() -> tuple[type[BaseException], ...]:
    import pyarrow as pa

    # A truncated .csv.gz ends in EOFError (not an OSError); a corrupt one in zlib.error.
    return (ValueError, OSError, EOFError, zlib.error, pa.ArrowException)


def read_frame(url: str, path: Path):
    """One Parquet or CSV file as a DataFrame; a damaged file is one clear error naming it."""
    import pandas as pd

    try:
        if _kind(url) == "Parquet":
            import pyarrow.parquet as pq

            # Memory-mapped, and handed to pandas without a second copy (numeric columns share
            # Arrow's buffers): pd.read_parquet peaked at 1.01 GiB on a 2M-row file of 30
            # floats (0.24 GiB of data), this at 0.70.
            table = pq.read_table(path, memory_map=True)
            return table.to_pandas(split_blocks=True, self_destruct=True)
        return pd.read_csv(path, compression="gzip" if url.endswith(".gz") else None)
    except _read_errors() as error:
        raise _unreadable(url, error) from None


def columns_at(url: str) -> list[str]:
    """The column names of the Parquet or CSV file at ``url`` (any fsspec URL), from its footer or header alone."""
    fs, path = storage.filesystem(url)
    with storage.reaching(url), fs.open(path, "rb") as f:
        return columns_of(url, f)


def columns_of(url: str, path) -> list[str]:
    """The column names of one Parquet or CSV file (a local path or an open binary file), from its schema or header."""
    import pandas as pd

    try:
        if _kind(url) == "Parquet":
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        return list(pd.read_csv(path, compression="gzip" if url.endswith(".gz") else None, nrows=0).columns)
    except _read_errors() as error:
        raise _unreadable(url, error) from None


# Rows read to infer a table's column types (numbers or text) from its first file.
INFER_ROWS = 10_000


def first_rows(url: str, *, rows: int = INFER_ROWS):
    """The first ``rows`` rows of the Parquet or CSV file at ``url`` (any fsspec URL), as a DataFrame."""
    import pandas as pd

    fs, path = storage.filesystem(url)
    with storage.reaching(url), fs.open(path, "rb") as f:
        for _, frame in iter_frames(url, f, rows=rows):
            return frame
    return pd.DataFrame({name: [] for name in columns_at(url)})


def iter_frames(url: str, path: Path, *, columns: list[str] | None = None, rows: int = FRAME_ROWS) -> Iterator:
    """One Parquet or CSV file as DataFrames of at most ``rows`` rows: (first row in the file, frame).

    Parquet is read record batch by record batch (only ``columns``), CSV chunk by chunk, so
    memory holds one batch, not the file. A damaged file is one clear error naming it.
    """
    import pandas as pd

    try:
        if _kind(url) == "Parquet":
            import pyarrow.parquet as pq

            frames = (
                batch.to_pandas() for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=columns)
            )
        else:
            frames = pd.read_csv(
                path, compression="gzip" if url.endswith(".gz") else None, usecols=columns, chunksize=rows
            )
        first = 0
        for frame in frames:
            yield first, frame
            first += len(frame)
    except _read_errors() as error:
        raise _unreadable(url, error) from None


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


def _check_rows(url: str, frame, types: dict[str, str], data: DataConfig) -> tuple[TypedArrays, Any]:
    features = typed_columns.read_columns(url, frame, types, missing=data.missing)
    labels = frame[data.label_column]
    if labels.isna().any():
        missing = labels.isna().to_numpy()
        raise DataValidationError(
            f"{url}: check 'label present' failed: {int(missing.sum())} row(s) have no label in column "
            f"{data.label_column!r}, first at row {int(missing.argmax())}; drop or label those rows"
        )
    return features, labels.to_numpy()


def numeric_features(
    url: str, frame, schema: list[str], *, first_row: int = 0, allow_missing: bool = False
) -> np.ndarray:
    """The ``schema`` columns as float32, refusing non-numeric, infinite and (unless ``allow_missing``) missing values.

    ``first_row``: the row of the file ``frame`` starts at (when a file is read in batches),
    so an error names the row of the file. ``allow_missing`` (``data.missing: fill``): a
    missing value is NaN, which the model fills with the training mean. Filled column by column into one array: the
    frame-wide coercion and masks this replaced took four copies of the columns beside the
    frame (a 2M-row file of 30 floats peaked at 1.94 GiB in ingest, issue 14).
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
                    f"non-numeric value(s), first at row {first_row + row} ({values.iloc[row]!r}); "
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
            f"at row {first_row + row} (column {column!r}); fix or drop those rows at the source (missing values "
            "are filled under data.missing: fill, infinite ones are not)"
        )
    if nonfinite.any():
        row = int(nonfinite.argmax())
        column = schema[int((~np.isfinite(features[row])).argmax())]
        raise DataValidationError(
            f"{url}: check 'finite features' failed: {int(nonfinite.sum())} row(s) have missing, NaN or "
            f"infinite features, first at row {first_row + row} (column {column!r}); impute or drop those rows "
            "at the source, or set data.missing: fill to fill missing ones with the training mean"
        )
    return features


def _locate(row: int, lengths: list[int], files: list[TableFile]) -> tuple[int, str]:
    """The file and the row within it of row ``row`` of the stacked table (``lengths``: rows per file)."""
    for length, file in zip(lengths, files, strict=True):
        if row < length:
            return row, file.url
        row -= length
    raise IndexError(row)
