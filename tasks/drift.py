"""Drift: the new training data against the production model's, before training (``validation.drift``).

The step finds the baseline, the training split's statistics recorded with the model
under the alias (its dataset's ``statistics.json``), compares column by column
(tasks/drift_comparison.py: the measures, the report), shows the report as an artifact,
emits ``kerasflow.data.drifted``, and fails the run under ``action: fail``. Batch
scoring reads the same baseline to report skew (a scored table against the model's
training data). A changed schema is not drift: a column added, removed or of another kind
is one error naming it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.tasks import exponential_backoff

from kerasflow.models.registry import ModelRegistry
from kerasflow.tasks import events, storage
from kerasflow.tasks.config import DriftConfig
from kerasflow.tasks.data.materialize import find_materialized, read_statistics
from kerasflow.tasks.data.source_data import PIXEL_COLUMNS
from kerasflow.tasks.data.statistics import SplitStatistics
from kerasflow.tasks.drift_comparison import DriftReport, compare, report_markdown
from kerasflow.tasks.drift_comparison import SchemaChanged as SchemaChanged
from kerasflow.tasks.failures import DataValidationError, retry_unless_deterministic
from kerasflow.tasks.refs import DatasetRef


def production_statistics(root: str, *, name: str, alias: str) -> tuple[SplitStatistics, str] | None:
    """The training split's statistics of the model under ``alias``, and what it is; None without one.

    Args:
        root: the storage root, any fsspec URL.
        name: the model's name in the registry.
        alias: the alias whose version is the baseline.
    """

    registry = ModelRegistry(storage.registry_url(root))
    version = registry.alias_target(name, alias)
    return training_statistics(root, registry.get(name, version)) if version is not None else None


def training_statistics(root: str, metadata: Mapping[str, Any]) -> tuple[SplitStatistics, str] | None:
    """The training split's statistics of a registered version (its ``metadata``), and what it is.

    None when its dataset was stored without statistics or is gone (``kerasflow datasets gc``).

    Args:
        root: the storage root, any fsspec URL.
        metadata: the version's metadata, as the registry returns it.
    """

    fingerprint = metadata.get("dataset", {}).get("fingerprint")
    ref = find_materialized(root, fingerprint) if fingerprint else None
    statistics = read_statistics(ref) if ref is not None else None
    if statistics is None or "train" not in statistics.splits:
        return None
    name = f"{metadata['name']} v{metadata['version']}'s training data (dataset {fingerprint})"
    return statistics.splits["train"], name


class DataDrifted(DataValidationError):
    """The training data drifted from the production model's past ``validation.drift``'s thresholds (action fail)."""


def drift_against_production(
    dataset: DatasetRef, drift: DriftConfig, *, name: str, alias: str
) -> DriftReport | str:
    """The training split of ``dataset`` compared with the training data of the model under ``alias``.

    Args:
        dataset: this run's dataset; its training split's statistics are compared.
        drift: the recipe's ``validation.drift`` section (thresholds, per-column thresholds).
        name: the model's name in the registry.
        alias: the alias whose model's recorded training statistics are the baseline.

    Returns:
        The column-by-column report, or why nothing was compared (drift off, no model
        under the alias, or no statistics recorded with it).
    """

    if not drift.enabled:
        return "validation.drift.enabled is false"
    baseline = production_statistics(dataset.storage_root, name=name, alias=alias)
    statistics = read_statistics(dataset) if baseline is not None else None
    if baseline is None or statistics is None or "train" not in statistics.splits:
        return f"no model under {alias!r} with recorded training statistics"
    current = statistics.splits["train"]
    # Images stored before their pixel statistics were kept describe sizes alone: compare what both describe.
    older = {c for names in PIXEL_COLUMNS.values() for c in names if c in current.columns} - set(baseline[0].columns)
    if older:
        current = dataclasses.replace(current, columns={k: v for k, v in current.columns.items() if k not in older})
    return compare(
        baseline[0],
        current,
        numeric_threshold=drift.numeric_threshold,
        categorical_threshold=drift.categorical_threshold,
        thresholds=drift.columns,
        baseline_name=baseline[1],
        current_name=f"the training split of dataset {dataset.fingerprint}",
    )


@task(
    name="check-drift",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=retry_unless_deterministic,
)
def check_drift(dataset: DatasetRef, drift: DriftConfig, *, name: str, alias: str) -> DriftReport | None:
    """Compare the training split with the production model's; report it, emit ``kerasflow.data.drifted``, and
    fail the run when ``drift.action`` is ``fail``. None when there is nothing to compare with.

    Args:
        dataset: this run's dataset; its training split's statistics are compared.
        drift: the recipe's ``validation.drift`` section.
        name: the model's name in the registry.
        alias: the alias whose model's training data is the baseline.

    Raises:
        SchemaChanged: the columns differ from the baseline's.
        DataDrifted: a column drifted past its threshold and ``drift.action`` is ``fail``.
    """

    logger = get_run_logger()
    report = drift_against_production(dataset, drift, name=name, alias=alias)
    if isinstance(report, str):
        logger.info("data drift: not checked (%s)", report)
        return None
    create_markdown_artifact(
        key="data-drift",
        markdown=report_markdown(report, title="Data drift", labels=("production's training data", "this run's")),
        description="the training data against the production model's, column by column",
    )
    drifted = report.drifted()
    if not drifted:
        logger.info("data drift: %s", report.summary())
        return report
    events.emit(
        events.DATA_DRIFTED,
        model=name,
        alias=alias,
        fingerprint=dataset.fingerprint,
        columns={c.column: c.distance for c in drifted},
    )
    if drift.action == "fail":
        raise DataDrifted(
            f"data drift: {report.summary()}. Check the source; if the change is real, raise the threshold "
            "(validation.drift.columns.<column>) or set validation.drift.action=warn to train on it"
        )
    logger.warning("data drift: %s", report.summary())
    return report
