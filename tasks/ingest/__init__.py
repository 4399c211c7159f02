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
from kerasflow.tasks.ingest import file_parts, partitions
from kerasflow.tasks.ingest.sources import fingerprint, identify, load_source
from kerasflow.tasks.ingest.sources.tables import table_reading, window
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
    logger = get_run_logger()
    data = window.resolve_until(data, None)  # the flows fix it from the scheduled start; called alone: now
    identity = identify(data)
    if data.window is not None:
        logger.info(
            "data.window: the %d day(s) to %s, %d file(s)", data.window.days, data.window.until, len(identity["files"])
        )
    holds.hold(root, [fingerprint(identity)])  # before reading ref.json: housekeeping sees it (tasks/storage/holds.py)
    ref = materialization.find_materialized(root, fingerprint(identity))
    if ref is None:
        files = len(identity.get("files", ()))
        logger.info("materializing %s source%s into %s", data.source, f" ({files} file(s))" if files else "", root)
        if partitions.applies(data, identity):  # one materialization per file, reused as files are added
            ref = partitions.materialize_partitions(
                data, identity, root, logger=logger, runtime=runtime or IngestRunConfig()
            )
        elif file_parts.applies(data, identity):  # one file, read in batches and stored in parts if large
            ref = file_parts.materialize_file(data, identity, root, logger=logger)
            if ref is None:
                raise table_reading.no_rows(data)
        else:
            ref = materialization.materialize(load_source(data, identity), root)
    else:
        logger.info("dataset %s is materialized already; reusing it", ref.fingerprint)
    splits = ", ".join(f"{k}={v}" for k, v in ref.splits.items())
    logger.info("dataset %s (%s) at %s: %s", ref.fingerprint, data.source, ref.uri, splits)
    if ref.ignored_columns:
        logger.warning("columns outside the recipe's schema, ignored: %s", ", ".join(ref.ignored_columns))
    statistics = materialization.read_statistics(ref)
    if statistics is not None:  # a dataset stored before statistics were kept has none
        create_markdown_artifact(
            key="dataset-statistics",
            markdown=statistics_report.markdown(ref.fingerprint, statistics),
            description="rows, missing values, distributions and labels of every split",
        )
    return ref
