"""Ingest: open the configured source and materialize it once per fingerprint."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.tasks import exponential_backoff

from tasks import storage
from tasks.config import DataConfig
from tasks.failures import retry_unless_deterministic
from tasks.ingest.materialize import materialize
from tasks.ingest.sources import load_source
from tasks.refs import DatasetRef

__all__ = ["ingest"]


@task(
    name="ingest",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=retry_unless_deterministic,
)
def ingest(data: DataConfig, *, root: str) -> DatasetRef:
    """Materialize the dataset the config names under ``<root>/datasets/<fingerprint>``."""
    logger = get_run_logger()
    source = load_source(data)
    ref = materialize(source, storage.datasets_dir(root))
    logger.info(
        "dataset %s (%s) at %s: %s",
        ref.fingerprint,
        data.source,
        ref.uri,
        ", ".join(f"{k}={v}" for k, v in ref.splits.items()),
    )
    return ref
