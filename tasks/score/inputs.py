"""What scoring reads: the version named, and a table's files or a stored split, batch by batch.

A table is read in the columns (and types) recorded at registration, every file's columns
checked before any row is read, then ``rows`` at a time, so memory holds one batch
whatever the table's size; a stored split is read in its stored order, with its labels.
Either becomes a :class:`ScoringInput`, which the output side scores and writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from kerasflow.models.registry import ModelRegistry, RegistryError, parse_model_ref
from kerasflow.tasks import storage
from kerasflow.tasks.config import DataConfig, WindowConfig
from kerasflow.tasks.data.pipeline import load_batches
from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.ingest.sources.tables import tabular, typed_columns, window
from kerasflow.tasks.refs import DatasetRef
from kerasflow.tasks.score.signature import check_columns, signature_of


def table_batches(
    files: list,
    paths: list[Path],
    *,
    columns: list[str],
    key_column: str | None,
    rows: int,
    column_types: dict[str, str] | None = None,
    missing: str = "error",
    time_window: WindowConfig | None = None,
) -> Iterator[tuple[np.ndarray | dict[str, np.ndarray], Any, str]]:
    """(features, keys, file URL) of ``files`` batch by batch, feature and key columns only; labels not needed.

    ``column_types``: a typed table's columns and types as recorded at registration; each
    column is then read as ingestion read it (tasks/ingest/sources/tables/typed_columns.py), its values
    checked against its type, and fed by name. ``missing``: the model's ``data.missing``.
    ``time_window``: a window over a timestamp column; only its rows are scored.

    Args:
        files: the table's files (``TableFile``), in order.
        paths: the local copy of each of ``files``.
        columns: the feature columns to read.
        key_column: a column read beside the features and returned as the keys; None for none.
        rows: rows read at a time.
        column_types: feature column -> type, as recorded at registration; None for a table of numbers.
        missing: the model's ``data.missing`` (``error`` or ``fill``).
        time_window: a window over a timestamp column; None to score every row.

    Raises:
        DataValidationError: a file lacks a column, or a value does not fit its column's type.
    """

    kept = [c for c in (key_column, time_window.column if time_window else None) if c and c not in columns]
    wanted = [*columns, *dict.fromkeys(kept)]
    # Every file's columns first, from its schema or header: a file that lacks one fails the
    # scoring before any row is scored, not after the files before it.
    for file, path in zip(files, paths, strict=True):
        check_columns(tabular.columns_of(file.url, path), wanted, source=file.url)
    for file, path in zip(files, paths, strict=True):
        for first_row, frame in tabular.iter_frames(file.url, path, columns=wanted, rows=rows):
            if time_window is not None:
                frame = window.rows_in_window(file.url, frame, time_window, first_row=first_row)
                if frame.empty:
                    continue
            features = frame_features(
                frame, columns=columns, column_types=column_types, missing=missing, source=file.url, first_row=first_row
            )
            yield features, (frame[key_column].to_numpy() if key_column else None), file.url


def frame_features(
    frame: Any,
    *,
    columns: list[str],
    column_types: dict[str, str] | None,
    missing: str,
    source: str,
    first_row: int = 0,
) -> np.ndarray | dict[str, np.ndarray]:
    """The model's inputs for a table's rows, read as ingestion read its training rows.

    Args:
        frame: the rows (a pandas DataFrame holding at least ``columns``).
        columns: the feature columns, in feature order.
        column_types: feature column -> type, as recorded at registration; None for a table of numbers.
        missing: the model's ``data.missing`` (``error`` or ``fill``).
        source: the file or frame the rows come from, for messages.
        first_row: the row number of the first of ``frame``'s rows in ``source``, for messages.

    Returns:
        A typed table's columns by name, or an array of numbers, one row per row of ``frame``.

    Raises:
        DataValidationError: a value does not fit its column's type.
    """
    if column_types is not None:
        arrays = typed_columns.read_columns(source, frame, column_types, missing=missing, first_row=first_row)
        return arrays.columns(column_types)
    return tabular.numeric_features(source, frame, columns, first_row=first_row)


def feature_columns(signature: dict[str, Any], *, model_ref: str, configured: list[str] | None = None) -> list[str]:
    """The columns a table is scored on: those recorded at registration, else ``configured``.

    Args:
        signature: the version's input signature (:func:`signature_of`).
        model_ref: the model as the user named it, for the message.
        configured: the data section's ``feature_columns``, for versions that record none.

    Raises:
        DataValidationError: neither names any column (a model of images or arrays).
    """
    columns = signature["columns"] or configured
    if not columns:
        raise DataValidationError(f"{model_ref}: its metadata names no feature columns to read from a table")
    return list(columns)


def split_batches(ref: DatasetRef, split: str, *, rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(features, labels) of a stored dataset's ``split``, ``rows`` at a time, in stored order.

    Args:
        ref: the stored dataset.
        split: the split's name.
        rows: rows per batch.
    """
    yield from load_batches(ref, split, batch_size=rows).as_numpy_iterator()


class ScoringInput(NamedTuple):
    """What is scored: where it comes from, how many rows (when known), one example's shape, its batches.

    Each batch is ``(features, keys or None, labels or None, the file or split it came from)``.

    Attributes:
        source: where the rows come from (the table's URL, or the split and dataset), for messages.
        total: the rows to score, when known (a split); None for a table.
        feature_shape: one example's shape.
        batches: the batches, read as they are iterated.
        from_table: the rows are a team's files, not a split of a stored dataset.
    """

    source: str
    total: int | None
    feature_shape: tuple[int, ...]
    batches: Iterator[tuple[Any, np.ndarray | None, np.ndarray | None, str]]
    from_table: bool  # a team's files, not a split of a stored dataset


def resolve_version(model_ref: str, *, root: str) -> tuple[ModelRegistry, str, dict[str, Any]]:
    """(the registry, the model's name, the version's metadata) that ``NAME[@ALIAS|@VERSION]`` names.

    Args:
        model_ref: ``NAME``, ``NAME@ALIAS`` or ``NAME@VERSION``.
        root: the storage root whose registry holds it.

    Raises:
        DataValidationError: no such model, alias or version (a retry cannot help).
    """
    name, selector = parse_model_ref(model_ref)
    registry = ModelRegistry(storage.registry_url(root))
    try:
        return registry, name, registry.resolve(name, selector)
    except (RegistryError, ValueError) as error:
        raise DataValidationError(f"cannot score with {model_ref!r}: {error}") from None


def split_input(dataset: DatasetRef, split: str, *, rows: int) -> ScoringInput:
    """A split of a stored dataset, ``rows`` at a time, with its labels.

    Args:
        dataset: the stored dataset.
        split: its split to score (``test``, ``validation``, ``train``).
        rows: rows per batch.
    """
    source = f"split '{split}' of dataset {dataset.fingerprint}"
    return ScoringInput(
        source=source,
        total=dataset.splits.get(split),
        feature_shape=tuple(dataset.feature_shape),
        batches=((x, None, y, source) for x, y in split_batches(dataset, split, rows=rows)),
        from_table=False,
    )


def table_input(
    files: list[Any],
    data: DataConfig,
    metadata: dict[str, Any],
    *,
    model_ref: str,
    key_column: str | None,
    rows: int,
    folder: Path,
) -> ScoringInput:
    """A table's files (CSV or Parquet), in the recorded columns, ``rows`` at a time.

    Args:
        files: the table's files, as listed from ``data.url``.
        data: the data section naming the table (its URL, window and, for versions without a
            recorded signature, its feature columns).
        metadata: the version's metadata: its columns, their types and how missing values are read.
        model_ref: the model as the user named it, for messages.
        key_column: a column copied beside the scores, or None.
        rows: rows per batch.
        folder: where remote files are downloaded for the duration of the scoring.

    Raises:
        DataValidationError: the version records no feature columns to read.
    """

    signature = signature_of(metadata)
    source = data.url or ""
    columns = feature_columns(signature, model_ref=model_ref, configured=data.feature_columns)
    time_window = data.window if data.window is not None and data.window.column else None
    if time_window is not None:
        files = window.files_for_time_window(files, time_window, url=source)
    elif data.window is not None:
        files = window.in_window(files, data.window, url=source)
    paths = tabular.download_files(files, folder)
    batches = (
        (x, keys, None, url)
        for x, keys, url in table_batches(
            files,
            paths,
            columns=columns,
            key_column=key_column,
            rows=rows,
            column_types=signature["column_types"],
            missing=signature["missing"],
            time_window=time_window,
        )
    )
    return ScoringInput(source=source, total=None, feature_shape=(len(columns),), batches=batches, from_table=True)
