"""Rolling windows: train on the last N days of hive-style ``date=YYYY-MM-DD`` partitions, or of a time column.

A table that grows one partition a day (``s3://bucket/events/date=2026-11-03/part-0.parquet``)
is retrained on the days ``data.window`` names, not on all history. The window is chosen
from the listing alone, before anything is read, so the dataset's fingerprint covers only
the files inside it: a partition that leaves the window or an old one rewritten changes
nothing, a new day inside it makes a new dataset.

With ``data.window.column`` the days are those of a timestamp column instead, in files laid
out any way: each file's rows outside the window are dropped as it is read. A Parquet
file whose footer statistics put every row outside the window is left out of the
fingerprint unread (a CSV has no footer: it is always in), and the fingerprint names the
window's days, so the same files make a new dataset when the window moves. A Parquet file
whose footer puts every row inside the window is stored under an identity without the
window's days (tasks/ingest/partitions.py), so a moving window reuses it.

The window ends on ``data.window.until`` (inclusive). Left unset it is resolved once per
run (``resolve_until``) to the day before the run's scheduled start in UTC, the last
complete day: a nightly run at 02:00 does not train on two hours of today.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from kerasflow.tasks import storage
from kerasflow.tasks.failures import DataValidationError

if TYPE_CHECKING:
    from kerasflow.tasks.config import DataConfig, WindowConfig
    from kerasflow.tasks.ingest.sources.tables.tabular import TableFile


def partition_day(url: str, key: str) -> date | None:
    """The day of the ``<key>=YYYY-MM-DD`` folder in ``url``; None when it has none.

    Args:
        url: a file's URL.
        key: the partition key (``data.window.partition_key``, ``date`` by default).

    Raises:
        DataValidationError: the folder's value is not a ``YYYY-MM-DD`` date.
    """
    found = re.search(rf"(?:^|/){re.escape(key)}=([^/]+)/", url)
    if not found:
        return None
    try:
        return date.fromisoformat(found.group(1))
    except ValueError:
        raise DataValidationError(
            f"{url}: check 'window' failed: partition {key}={found.group(1)!r} is not a date; "
            f"name day partitions {key}=YYYY-MM-DD, or drop data.window"
        ) from None


def last_complete_day(now: datetime | None = None) -> date:
    """The day before ``now`` (default: this moment) in UTC."""
    return ((now or datetime.now(UTC)).astimezone(UTC) - timedelta(days=1)).date()


def resolve_until(data: DataConfig, scheduled: datetime | None) -> DataConfig:
    """``data`` with its window's end fixed: the day before ``scheduled`` (the run's scheduled start).

    Args:
        data: the recipe's ``data`` section; returned as it is without a window, or with ``until`` set.
        scheduled: the run's scheduled start; None for now.
    """
    if data.window is None or data.window.until is not None:
        return data
    window = data.window.model_copy(update={"until": last_complete_day(scheduled)})
    return data.model_copy(update={"window": window})


def bounds(window: WindowConfig) -> tuple[date, date]:
    """The window's first and last day, inclusive."""
    end = window.until or last_complete_day()
    return end - timedelta(days=window.days - 1), end


def time_range(window: WindowConfig) -> tuple[datetime, datetime]:
    """The window's days as UTC times: from its first midnight, up to (not including) the one after its last day."""
    start, end = bounds(window)
    return (
        datetime.combine(start, datetime.min.time(), tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=UTC),
    )


def in_window(files: list[TableFile], window: WindowConfig, *, url: str) -> list[TableFile]:
    """The files of the window's days, in order; one clear error for undated files or an empty window.

    Args:
        files: the table's files.
        window: the recipe's ``data.window``, over day partitions.
        url: the table's URL (``data.url``), for messages.

    Raises:
        DataValidationError: a file has no day partition in its path, or no file's day is in the window.
    """
    start, end = bounds(window)
    days = {f.url: partition_day(f.url, window.partition_key) for f in files}
    undated = [u for u, day in days.items() if day is None]
    if undated:
        raise DataValidationError(
            f"{undated[0]}: check 'window' failed: {len(undated)} file(s) have no "
            f"{window.partition_key}=YYYY-MM-DD folder in their path; data.window needs day partitions "
            f"such as s3://bucket/events/{window.partition_key}=2026-11-03/part-0.parquet, or drop data.window"
        )
    selected = [f for f in files if start <= days[f.url] <= end]
    if not selected:
        known = sorted(set(days.values()))
        raise DataValidationError(
            f"{url}: check 'window' failed: no partition from {start} to {end} (data.window.days="
            f"{window.days}, until {end}); the partitions run from {known[0]} to {known[-1]}: widen "
            "data.window.days or set data.window.until"
        )
    return selected


def rows_in_window(url: str, frame, window: WindowConfig, *, first_row: int = 0):
    """``frame``'s rows whose ``window.column`` time (UTC) falls on the window's days; bad times named by row.

    ``first_row``: the file's row number of the frame's first row (a file read in batches).

    Args:
        url: the file's URL, for messages.
        frame: the rows read.
        window: the recipe's ``data.window``, over the time column ``window.column``.
        first_row: the file's row number of the first row of ``frame``.

    Raises:
        DataValidationError: the column is missing, holds numbers, or has a value that is not a time.
    """
    import pandas as pd

    column = window.column or ""
    if column not in frame.columns:
        raise DataValidationError(
            f"{url}: check 'window' failed: no column {column!r} (data.window.column); the file has "
            f"{list(frame.columns)}"
        )
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_datetime64_any_dtype(values):
        raise DataValidationError(
            f"{url}: check 'window' failed: column {column!r} holds numbers ({values.dtype}), not times; "
            "store timestamps (Parquet) or ISO 8601 text such as 2026-11-03T14:05:00Z"
        )
    times = pd.to_datetime(values, utc=True, errors="coerce", format="mixed" if values.dtype == object else None)
    bad = times.isna().to_numpy()
    if bad.any():
        row = int(bad.argmax())
        raise DataValidationError(
            f"{url}: check 'window' failed: {int(bad.sum())} row(s) of column {column!r} have no readable time, "
            f"first at row {first_row + row} ({values.iloc[row]!r}); fill or drop them, or write ISO 8601 times"
        )
    low, high = time_range(window)
    inside = ((times >= low) & (times < high)).to_numpy()
    # The rows kept keep their index, their places in the batch: an error found in a kept row
    # names its row in the file (tasks/ingest/tabular.file_row).
    return frame if inside.all() else frame[inside]


def _footer_times(source, window: WindowConfig) -> list[tuple[datetime, datetime, bool]] | None:
    """Each row group's smallest and largest ``window.column`` time (UTC) and whether it has gaps, from the footer.

    None when the footer cannot tell: not Parquet, no such column, not a timestamp, no statistics.
    """
    import pyarrow.parquet as pq

    try:
        metadata = pq.ParquetFile(source).metadata
        index = metadata.schema.to_arrow_schema().get_field_index(window.column or "")
    except Exception:  # noqa: BLE001 - any doubt: the file is read
        return None
    if index < 0:
        return None
    groups = []
    for group in range(metadata.num_row_groups):
        stats = metadata.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max or not isinstance(stats.min, datetime):
            return None
        smallest, largest = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (stats.min, stats.max))
        groups.append((smallest, largest, not stats.has_null_count or stats.null_count > 0))
    return groups


def may_hold_window(source, window: WindowConfig) -> bool:
    """False when a Parquet file's footer statistics put every row of ``window.column`` outside the window.

    Unknown (no statistics, not a timestamp column, a CSV): True, so the file is read and
    its rows are filtered one by one. ``source``: a local path or an open file.

    Args:
        source: a local path or an open binary file.
        window: the recipe's ``data.window``, over the time column ``window.column``.
    """
    groups = _footer_times(source, window)
    if groups is None:
        return True
    low, high = time_range(window)
    return any(largest >= low and smallest < high for smallest, largest, _ in groups)


def whole_in_window(source, window: WindowConfig) -> bool:
    """True when a Parquet file's footer puts every row of ``window.column`` inside the window, none missing.

    Such a file reads the same under any window that holds it: its stored dataset need not
    name the window's days (tasks/ingest/partitions.py). Unknown (a CSV, no statistics): False.

    Args:
        source: a local path or an open binary file.
        window: the recipe's ``data.window``, over the time column ``window.column``.
    """
    groups = _footer_times(source, window)
    if not groups:
        return False
    low, high = time_range(window)
    return all(smallest >= low and largest < high and not gaps for smallest, largest, gaps in groups)


def _footers(files: list[TableFile], test, *, otherwise: bool) -> list[bool]:
    """Each file's ``test(open file)``, the footers read concurrently (a remote store's latency).

    ``otherwise``: the answer for a file without a footer (a CSV).
    """
    from concurrent.futures import ThreadPoolExecutor


    def check(file: TableFile) -> bool:
        if not file.url.endswith(".parquet"):
            return otherwise
        fs, path = storage.filesystem(file.url)
        with storage.reaching(file.url), fs.open(path, "rb") as f:
            return test(f)

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(check, files))


def files_whole_in_window(files: list[TableFile], window: WindowConfig) -> set[str]:
    """The URLs of the Parquet files among ``files`` whose every row the window keeps (:func:`whole_in_window`).

    Args:
        files: the table's files.
        window: the recipe's ``data.window``, over the time column ``window.column``.
    """
    whole = _footers(files, lambda f: whole_in_window(f, window), otherwise=False)
    return {file.url for file, inside in zip(files, whole, strict=True) if inside}


def files_for_time_window(files: list[TableFile], window: WindowConfig, *, url: str) -> list[TableFile]:
    """``files`` less the Parquet files whose footers put every row outside the window (read concurrently).

    Args:
        files: the table's files.
        window: the recipe's ``data.window``, over the time column ``window.column``.
        url: the table's URL (``data.url``), for messages.

    Raises:
        DataValidationError: every file's footer puts all its rows outside the window.
    """
    may_hold = _footers(files, lambda f: may_hold_window(f, window), otherwise=True)
    kept = [f for f, keep in zip(files, may_hold, strict=True) if keep]
    if not kept:
        start, end = bounds(window)
        raise DataValidationError(
            f"{url}: check 'window' failed: no file holds a {window.column!r} time from {start} to {end} "
            f"(data.window.days={window.days}, until {end}); widen data.window.days or set data.window.until"
        )
    return kept
