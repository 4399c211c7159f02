"""Ingest: name the configured source's content, and materialize it once per fingerprint.

Unchanged data costs a listing and one GET of the published marker: the source is read
(and downloaded, concurrently) only when its fingerprint has not been materialized yet.
A table of several files is materialized file by file, and a file stored before is
reused (tasks/ingest/partitions.py); inside a flow run each file stored is a task run of
its own, several at once under a task runner (tasks/ingest/file_runs.py). A file is read
in record batches and, when large, stored in parts of rows (tasks/ingest/file_parts.py),
so memory follows a part.
An unreachable store is transient and retried with backoff; bad data is not retried.
What ingest finds or stores is held for the run until it ends (tasks/storage/holds.py), so
housekeeping never removes it in between.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.tasks import exponential_backoff

from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.config.runtime import IngestRunConfig
from kerasflow.tasks.data import materialize as materialization
from kerasflow.tasks.data import statistics_report
from kerasflow.tasks.failures import retry_unless_deterministic
from kerasflow.tasks.ingest.sources import fingerprint, identify
from kerasflow.tasks.ingest.sources.tables import window
from kerasflow.tasks.ingest.storing import find_or_store
from kerasflow.tasks.refs import DatasetRef
from kerasflow.tasks.storage import holds

__all__ = ["ingest"]


@task(
    name="ingest",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=retry_unless_deterministic,
)
def ingest(data: DataConfig, *, root: str, runtime: IngestRunConfig | None = None) -> DatasetRef:
    """Materialize the dataset the config names under ``<root>/datasets/<fingerprint>``.

    ``runtime``: how a table's files run (``runtime.ingest``, tasks/ingest/file_runs.py); by
    default each file is a task run under the flow's task runner.

    Args:
        data: the recipe's ``data`` section.
        root: the storage root, any fsspec URL.
        runtime: the recipe's ``runtime.ingest`` section; None for its defaults.

    Returns:
        The materialized dataset, found or stored, held for the run.

    Raises:
        ConfigError: no source is registered for ``data.source``.
        DataValidationError: the data cannot be learnt from (no row to store, a bad value or column).
    """
    data = window.resolve_until(data, None)  # the flows fix it from the scheduled start; called alone: now
    identity = identify(data)
    holds.hold(root, [fingerprint(identity)])  # before reading ref.json: housekeeping sees it (tasks/storage/holds.py)
    ref = find_or_store(data, identity, root, logger=get_run_logger(), runtime=runtime or IngestRunConfig())
    statistics = materialization.read_statistics(ref)
    if statistics is not None:  # a dataset stored before statistics were kept has none
        create_markdown_artifact(
            key="dataset-statistics",
            markdown=statistics_report.markdown(ref.fingerprint, statistics),
            description="rows, missing values, distributions and labels of every split",
        )
    return ref
