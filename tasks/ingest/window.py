"""Rolling windows: train on the last N days of hive-style ``date=YYYY-MM-DD`` partitions.

A table that grows one partition a day (``s3://bucket/events/date=2026-11-03/part-0.parquet``)
is retrained on the days ``data.window`` names, not on all history. The window is chosen
from the listing alone, before anything is read, so the dataset's fingerprint covers only
the files inside it: a partition that leaves the window or an old one rewritten changes
nothing, a new day inside it makes a new dataset.

The window ends on ``data.window.until`` (inclusive). Left unset it is resolved once per
run (``resolve_until``) to the day before the run's scheduled start in UTC, the last
complete day: a nightly run at 02:00 does not train on two hours of today.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from kerasflow.tasks.failures import DataValidationError

if TYPE_CHECKING:
    from kerasflow.tasks.config import DataConfig, WindowConfig
    from kerasflow.tasks.ingest.tabular import TableFile


def partition_day(url: str, key: str) -> date | None:
    """The day of the ``<key>=YYYY-MM-DD`` folder in ``url``; None when it has none."""
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
    """``data`` with its window's end fixed: the day before ``scheduled`` (the run's scheduled start)."""
    if data.window is None or data.window.until is not None:
        return data
    window = data.window.model_copy(update={"until": last_complete_day(scheduled)})
    return data.model_copy(update={"window": window})


def in_window(files: list[TableFile], window: WindowConfig, *, url: str) -> list[TableFile]:
    """The files of the window's days, in order; one clear error for undated files or an empty window."""
    end = window.until or last_complete_day()
    start = end - timedelta(days=window.days - 1)
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
