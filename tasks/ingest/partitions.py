"""Incremental materialization: a table of several files is stored one file (partition) at a time.

Each file is materialized once, as a dataset of its own keyed by its own identity (URL,
size, ETag or mtime, and the settings that shape its rows), and the table's dataset is
the list of those parts (``DatasetRef.parts``) under the table's own fingerprint. A new
daily file costs that file's work; the others are found by their fingerprints and
reused. Memory follows a part of a file (tasks/ingest/file_parts.py), not the table.

The parts read together are the table read whole, row for row:
- each row's split is decided by its own hash, so a file's rows fall in the same splits
  alone as within the table (tasks/data/splits.py);
- the feature columns are the first file's (or ``data.feature_columns``), imposed on the
  others, as reading the table whole does;
- class names are the table's: ``data.classes``, else the integers ``0..max`` found, else
  the sorted text values. A part stores its own ids; ``DatasetPart.class_ids`` maps them.
  Slice values likewise (``DatasetPart.slice_ids``).

A part's identity names the table's columns, read from the first file's schema when not
configured, so a file's dataset is the same whichever file comes first: a window moving
on by a day stores the one new day. A single file stored whole (its columns inferred) is
reused as the first part when its columns are the table's: going from one file to two
stores the second.

Under a time-column window (tasks/ingest/sources/tables/window.py) each file keeps the rows of the
window's days as it is read; a file whose footer puts every row inside the window is
keyed without the window's days, so it is reused as the window moves, and a file with no
row in the window stores nothing.

Not partitioned: prepared TFDS folders, and ``data.limit`` (it keeps the lowest hashes of
the whole table, which no single file knows).
"""

from __future__ import annotations

import contextlib
import itertools
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kerasflow.tasks import storage
from kerasflow.tasks.config import ColumnConfig, DataConfig
from kerasflow.tasks.config.runtime import IngestRunConfig
from kerasflow.tasks.data import materialize as materialization
from kerasflow.tasks.data.combined import combine
from kerasflow.tasks.ingest import file_parts, file_runs
from kerasflow.tasks.ingest.read_ahead import read_ahead
from kerasflow.tasks.ingest.sources import fingerprint
from kerasflow.tasks.ingest.sources.tables import table_reading, tabular, typed_columns, window
from kerasflow.tasks.progress import ProgressArtifact
from kerasflow.tasks.refs import DatasetRef
from kerasflow.tasks.storage import holds

# Progress reaches the log and the progress artifact at most this often.
PROGRESS_SECONDS = 5.0


def applies(data: DataConfig, identity: dict[str, Any]) -> bool:
    """Whether the configured source is a table of several files, stored per file.

    Args:
        data: the recipe's ``data`` section.
        identity: the source's identity (:func:`kerasflow.tasks.ingest.sources.identify`).
    """
    return data.source == "files" and "tfds_dir" not in identity and data.limit is None and len(identity["files"]) > 1


def part_identity(
    identity: dict[str, Any], file: list[Any], types: dict[str, str] | None, *, whole: bool = False
) -> dict[str, Any]:
    """The identity of one file of the table, read with the feature columns and types ``types``.

    ``whole``: every row of the file lies in the table's time window (tasks/ingest/sources/tables/window.py),
    so the file reads the same under any window holding it, and its identity names the
    window's column, not its days: a window moving on by a day reuses it.

    Args:
        identity: the table's identity.
        file: the file's row of ``identity["files"]`` (its URL first).
        types: feature column -> type; None for the file read alone, with its own columns.
        whole: every row of the file lies in the table's time window.
    """
    own = {**identity, "files": [file]}
    if whole:
        own["time_window"] = {"column": identity["time_window"]["column"], "rows": "all"}
    if types is None:  # the file read alone, its columns and types its own
        return {**own, "columns": None}
    return {**own, "columns": list(types), "types": dict(types)}


class _Progress:
    """One log line per file materialized, and a progress artifact, at most every few seconds."""

    def __init__(self, logger: Any, *, total: int, seconds: float = PROGRESS_SECONDS):
        self.logger, self.total, self.seconds = logger, total, seconds
        self.reused = self.done = 0
        self._last = time.monotonic()
        self._artifact = ProgressArtifact("ingest-progress", f"materializing {total} file(s)")

    def part(self, file: str, *, rows: int, seconds: float | None) -> None:
        self.done += 1
        if seconds is None:
            self.reused += 1
        else:
            self.logger.info(
                "file %d/%d %s: materialized %d row(s) in %.1f s", self.done, self.total, file, rows, seconds
            )
        now = time.monotonic()
        if now - self._last >= self.seconds or self.done == self.total:
            self._last = now
            from prefect.context import TaskRunContext

            if TaskRunContext.get() is not None:  # called outside a task run: the log says enough
                self._artifact.show(100.0 * self.done / self.total)


def materialize_partitions(
    data: DataConfig,
    identity: dict[str, Any],
    root: str,
    *,
    logger: Any,
    materialize: Callable[..., DatasetRef] = materialization.materialize,
    runtime: IngestRunConfig | None = None,
) -> DatasetRef:
    """Store each file of the table the config names unless stored already, and publish the table as their list.

    The table's columns come first (``data.feature_columns``, else the first file's schema:
    a footer or header read), since every file's identity names them. Inside a flow run the
    files not stored yet are task runs under the task runner ``runtime`` names
    (tasks/ingest/file_runs.py), each downloading its own file. Otherwise they are
    downloaded together, by one concurrent get as a whole table is
    (tasks/ingest/tabular.download_files), and stored one by one, the next one read while
    the last is stored (tasks/ingest/read_ahead.py).

    Args:
        data: the recipe's ``data`` section.
        identity: the table's identity, naming several files.
        root: the storage root, any fsspec URL.
        logger: where progress is logged.
        materialize: stores one part's rows as a dataset and returns its ref (when files are stored in turn).
        runtime: the recipe's ``runtime.ingest`` section; None to store the files in turn in this thread.

    Raises:
        DataValidationError: no file holds a row to store (none in the time window).
    """
    files = identity["files"]
    types = table_types(data, files[0][0])
    progress = _Progress(logger, total=len(files))
    time_window = data.window if data.window is not None and data.window.column else None
    whole = window.files_whole_in_window(tabular.from_identity(files), time_window) if time_window else set()
    own_identities = [part_identity(identity, file, types, whole=file[0] in whole) for file in files]
    single = fingerprint(part_identity(identity, files[0], None))
    holds.hold(root, [*(fingerprint(own) for own in own_identities), single])  # before their ref.json are read
    refs = _find_all(root, [fingerprint(own) for own in own_identities])
    if refs[0] is None and data.feature_columns is None and data.columns is None and files[0][0] not in whole:
        refs[0] = _single_file_dataset(single, types, root)
    for file, ref in zip(files, refs, strict=True):
        if ref is not None:
            progress.part(file[0], rows=sum(ref.splits.values()), seconds=None)
    missing = [number for number, ref in enumerate(refs) if ref is None]
    columns = _column_configs(data, types)
    # Day partitions were chosen by their paths; a time window's rows are chosen as each file is read.
    part_data = data.model_copy(update={"window": time_window, "feature_columns": None, "columns": columns})

    def stored(number: int, ref: DatasetRef | None, seconds: float) -> None:
        refs[number] = ref
        progress.part(files[number][0], rows=sum(ref.splits.values()) if ref else 0, seconds=seconds)

    with file_runs.task_runner(runtime) if runtime and missing else contextlib.nullcontext() as runner:
        if runner is not None:
            file_runs.run_files(
                runner,
                [own_identities[number] for number in missing],
                data=part_data,
                root=root,
                files_at_once=file_runs.in_flight(runner, runtime),  # type: ignore[arg-type]
                on_stored=lambda index, ref, seconds: stored(missing[index], ref, seconds),
            )
        else:
            _store_in_turn(
                [(number, files[number], own_identities[number]) for number in missing],
                part_data,
                root,
                materialize=materialize,
                logger=logger,
                stored=stored,
            )
    logger.info("%d file(s): %d materialized, %d reused", len(files), len(files) - progress.reused, progress.reused)
    kept = [ref for ref in refs if ref is not None]  # None: no row of the file to store (none in a time window)
    if not kept:
        raise table_reading.no_rows(data)
    return materialization.publish(combine(kept, fingerprint=fingerprint(identity), root=root, classes=data.classes))


def _store_in_turn(
    missing: list[tuple[int, list[Any], dict[str, Any]]],
    data: DataConfig,
    root: str,
    *,
    materialize: Callable[..., DatasetRef],
    logger: Any,
    stored: Callable[[int, DatasetRef | None, float], None],
) -> None:
    """Store the (number, file, identity) ``missing`` one by one in this thread, each read while the last is stored."""
    files = [file for _, file, _ in missing]
    with (
        _downloaded(files) as downloaded,
        contextlib.closing(read_ahead(_read_files(files, data, downloaded))) as read,
    ):
        # The reader runs through ``files`` in order, so its files come as the loop needs them.
        parts_by_file = itertools.groupby(read, key=lambda item: item[0])
        for number, _, own in missing:
            started = time.monotonic()
            _, parts = next(parts_by_file)
            ref = file_parts.materialize_file(
                data, own, root, materialize=materialize, logger=logger, parts=(p for _, p in parts)
            )
            stored(number, ref, time.monotonic() - started)


def _read_files(
    files: list[list[Any]], data: DataConfig, downloaded: dict[str, Path] | None
) -> Iterator[tuple[str, table_reading.Part]]:
    """(file URL, part) of every part of ``files`` in turn: what the reader thread runs ahead on."""
    for file in tabular.from_identity(files):
        for part in file_parts.read_file(file, data, downloaded=downloaded):
            yield file.url, part


def table_types(data: DataConfig, url: str) -> dict[str, str]:
    """The feature columns and types the table read whole would have: the first file's.

    Read as tasks/ingest/sources/tables/typed_columns.py reads them.

    Without ``data.columns``, types are inferred from the file's first rows (one batch read).

    Args:
        data: the recipe's ``data`` section.
        url: the URL of the table's first file.

    Returns:
        Feature column -> column type name, in feature order.

    Raises:
        DataValidationError: the first file cannot be read, repeats a column name, or holds a column of
            numbers written with commas that would be inferred as text.
    """
    if data.columns is not None:
        return {name: spec.type for name, spec in data.columns.items()}  # type: ignore[union-attr]
    return typed_columns.resolve_types(data, tabular.first_rows(url), url=url)


def _column_configs(data: DataConfig, types: dict[str, str]) -> dict[str, ColumnConfig]:
    if data.columns is not None:
        return dict(data.columns)  # type: ignore[arg-type]
    return {name: ColumnConfig(type=type_name) for name, type_name in types.items()}


def _single_file_dataset(single: str, types: dict[str, str], root: str) -> DatasetRef | None:
    """The file stored whole earlier (dataset ``single``), as the table of that one file, if its columns match."""
    ref = materialization.find_materialized(root, single)
    return ref if ref is not None and ref.column_types == types else None


def _find_all(root: str, fingerprints: list[str]) -> list[DatasetRef | None]:
    """The published ref of each fingerprint, or None; a GET each, several at a time (a remote root's latency)."""
    if not fingerprints:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(fingerprints))) as pool:
        return list(pool.map(lambda fp: materialization.find_materialized(root, fp), fingerprints))


@contextlib.contextmanager
def _downloaded(files: list[list[Any]]) -> Iterator[dict[str, Path] | None]:
    """Local copies of the remote ``files`` (identity rows), fetched by one concurrent get, removed after."""
    remote = [file for file in files if not storage.is_local(file[0])]
    if not remote:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="kerasflow-files-") as tmp:
        table_files = tabular.from_identity(remote)
        paths = tabular.download_files(table_files, Path(tmp))
        yield {file.url: path for file, path in zip(table_files, paths, strict=True)}
