"""Register the candidate as the next version, then promote it if, and only if, it passed.

A rejected candidate is still registered, with status ``rejected``, so its metrics and
gate report stay on record; only a passed one may move an alias (TFX: a model that is
not blessed is not pushed).
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from kerasflow.models.registry import AliasMoved, ModelRegistry
from kerasflow.tasks import storage
from kerasflow.tasks.config import TrainConfig
from kerasflow.tasks.failures import DeterministicFailure, retry_unless_deterministic
from kerasflow.tasks.gate import GateRejected
from kerasflow.tasks.lineage import training_definition
from kerasflow.tasks.refs import DatasetRef, Evaluation, GateReport, ModelVersion, RunTarget, TrainedModel

__all__ = [
    "PROMOTING_ACTOR",
    "PromotionRefused",
    "StaleBaseline",
    "build_metadata",
    "move_alias",
    "promote",
    "promotion_reason",
    "register",
    "write_version",
]


class PromotionRefused(DeterministicFailure):
    """A caller asked to promote a candidate whose gate did not pass."""


class StaleBaseline(GateRejected):
    """The alias moved after the candidate was judged: it was never compared with what it would replace."""


def statistics_summary(dataset: DatasetRef) -> dict | None:
    """The dataset's statistics in short, per split (None for a dataset stored without them)."""
    from kerasflow.tasks.data.materialize import read_statistics
    from kerasflow.tasks.data.statistics import summary

    statistics = read_statistics(dataset)
    return summary(statistics) if statistics is not None else None


def build_metadata(
    *,
    config: TrainConfig,
    trained: TrainedModel,
    dataset: DatasetRef,
    evaluation: Evaluation,
    report: GateReport,
    flow_run_id: str | None,
) -> dict:
    """Everything needed to audit or reproduce a version (never credentials).

    Args:
        config: the recipe's config, recorded whole.
        trained: the candidate the train step wrote.
        dataset: the dataset it was trained and evaluated on.
        evaluation: the candidate's and the baseline's metrics.
        report: the gate's report; it decides the status (``registered`` or ``rejected``).
        flow_run_id: the Prefect flow run that trained it; None outside a flow run.

    Returns:
        The version's ``metadata.json`` content: status, metrics, gate report, config, task, builder and
        training definition, the dataset's fingerprint, schema and statistics summary, the training record,
        run ids and library versions.
    """
    import keras
    import tensorflow as tf

    from kerasflow.tasks.train.build import task_of

    definition = training_definition(config)

    return {
        "status": "registered" if report.passed else "rejected",
        "metrics": evaluation.candidate.model_dump(),
        "baseline": evaluation.baseline.model_dump() if evaluation.baseline else None,
        "baseline_version": evaluation.baseline_version,
        # What the gate decided on besides the metrics: decide() on it gives the recorded gate again.
        "evidence": evaluation.evidence.model_dump() if evaluation.evidence else None,
        "gate": report.model_dump(),
        "config": config.model_dump(mode="json"),
        # What it predicts: scoring writes this task's columns (tasks/learning/learning_tasks.py).
        "task": task_of(config.model, dataset).name,
        # The builder (reference, package version, code sha256) and the definition's fingerprint:
        # the next run retrains only when this or the data changed.
        "builder": definition["builder"],
        "definition": definition,
        # What the model reads and predicts: batch scoring checks its input against this.
        "dataset": {
            "fingerprint": dataset.fingerprint,
            "uri": dataset.uri,
            "splits": dataset.splits,
            "feature_shape": list(dataset.feature_shape),
            "feature_dtype": dataset.feature_dtype,
            "feature_names": dataset.feature_names,
            "column_types": dataset.column_types,
            "missing": config.data.missing,
            "class_names": dataset.class_names,
            # The training split's statistics, in short (the whole of them stay beside the dataset).
            "statistics": statistics_summary(dataset),
        },
        "training": trained.model_dump(exclude={"history"}),
        "warm_started_from": trained.warm_started_from,
        "run_id": trained.run_id,
        "flow_run_id": flow_run_id,
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


@task(
    name="register",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=retry_unless_deterministic,
    cache_policy=NO_CACHE,
)
def register(
    trained: TrainedModel,
    *,
    dataset: DatasetRef,
    evaluation: Evaluation,
    report: GateReport,
    config: TrainConfig,
    flow_run_id: str | None,
) -> ModelVersion:
    """Write the candidate as the next version (idempotent across retries of this run).

    Args:
        trained: the candidate the train step wrote.
        dataset: the dataset it was trained and evaluated on.
        evaluation: the candidate's and the baseline's metrics; its plots are copied into the version.
        report: the gate's report; a failed one registers the version as ``rejected``.
        config: the recipe's config (``model.name``, ``storage.root``).
        flow_run_id: the Prefect flow run that trained it; None outside a flow run.
    """
    metadata = build_metadata(
        config=config, trained=trained, dataset=dataset, evaluation=evaluation, report=report, flow_run_id=flow_run_id
    )
    version = write_version(trained, metadata=metadata, plots=evaluation.plots, target=config.target)
    get_run_logger().info("registered %s v%d (%s) at %s", version.name, version.version, version.status, version.uri)
    create_link_artifact(
        key="registered-version",
        link=version.uri,
        link_text=f"{version.name} v{version.version} ({version.status})",
        description="model registry entry of this run",
    )
    return version


def write_version(trained: TrainedModel, *, metadata: dict, plots: dict[str, str], target: RunTarget) -> ModelVersion:
    """Register the run's model, SavedModel and plots as the next version of ``target.name``.

    Idempotent across retries of one run: the run id and the model's sha256 are the key, so
    a retry after the commit landed finds the version it wrote.

    Args:
        trained: the candidate the train step wrote.
        metadata: the version's ``metadata.json`` (:func:`build_metadata`).
        plots: file name -> URL of the evaluation's figures, copied into the version's ``plots/``.
        target: the storage root and the model's name.

    Returns:
        The version as registered (its status is the metadata's).
    """
    registry = ModelRegistry(storage.registry_url(target.root))
    record = registry.register(
        target.name,
        model_file=storage.fetch_file(target.root, trained.model_uri),
        metadata=metadata,
        idempotency_key=f"{trained.run_id}:{trained.sha256}",
        saved_model_dir=_local_saved_model(target.root, trained),
        extra_files={f"plots/{file_name}": storage.fetch_file(target.root, url) for file_name, url in plots.items()},
    )
    return ModelVersion(
        name=record["name"],
        version=record["version"],
        uri=registry.version_url(record["name"], record["version"]),
        status=record["status"],
        sha256=record["sha256"],
    )


def _local_saved_model(root: str, trained: TrainedModel):
    """A local copy of the run's SavedModel export (the run folder itself on this machine)."""
    if trained.saved_model_uri is None:
        return None
    return storage.download_dir(trained.saved_model_uri, storage.local_path(root, trained.saved_model_uri))


# Who moves the alias when a flow promotes, in the alias history and the promoted event.
PROMOTING_ACTOR = "kerasflow train"


def promotion_reason(report: GateReport, note: str | None = None) -> str:
    """Why a flow moves the alias, as its history and its promoted event say: the gate's summary, and ``note``.

    Args:
        report: the candidate's gate report.
        note: appended after a ``;`` (a person's approval); None: nothing.
    """
    return f"gate passed: {report.summary()}" + (f"; {note}" if note else "")


def move_alias(
    version: ModelVersion,
    report: GateReport,
    *,
    target: RunTarget,
    actor: str,
    flow_run_id: str | None,
    note: str | None,
) -> ModelVersion:
    """Move ``target.alias`` to ``version`` from the version its gate judged it against, and no other.

    Args:
        version: the registered candidate.
        report: its gate's report; ``report.alias_version`` is the version the alias may move from.
        target: the storage root and the alias to move.
        actor: who moves it, recorded in the alias's history.
        flow_run_id: the Prefect flow run, recorded in the alias's history.
        note: appended to the reason in the alias's history (a person's approval).

    Returns:
        ``version`` with the alias and the version the alias pointed at before.

    Raises:
        PromotionRefused: the gate did not pass, or the version is not ``registered``.
        StaleBaseline: the alias moved after the candidate was judged.
    """
    if not report.passed or version.status != "registered":
        raise PromotionRefused(
            f"{version.name} v{version.version} did not pass its gate ({report.summary()}); it cannot be promoted"
        )
    registry = ModelRegistry(storage.registry_url(target.root))
    alias = target.alias
    current = registry.alias_target(version.name, alias)
    if current == version.version:  # a retry after the move landed
        last = registry.alias_history(version.name, alias)[-1]
        return version.model_copy(update={"alias": alias, "previous_version": last["previous_version"]})
    judged = report.judged_against()
    try:
        entry = registry.set_alias(
            version.name,
            alias,
            version.version,
            reason=promotion_reason(report, note),
            actor=actor,
            flow_run_id=flow_run_id,
            expected_version=judged,
        )
    except AliasMoved as moved:
        judged_name = f"v{judged}" if judged is not None else "no model (a first run)"
        raise StaleBaseline(
            f"{version.name} v{version.version} passed its gate against {judged_name}, but {alias!r} has since moved "
            f"to v{moved.current}; it was not promoted, since it was never compared with the version it would "
            f"replace. It stays registered: run the training again (its candidate is gated against v{moved.current}), "
            f"or promote it by hand (kerasflow models promote {version.name} {version.version})"
        ) from None
    return version.model_copy(update={"alias": alias, "previous_version": entry["previous_version"]})


@task(
    name="promote",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=retry_unless_deterministic,
    cache_policy=NO_CACHE,
)
def promote(
    version: ModelVersion,
    report: GateReport,
    *,
    target: RunTarget,
    flow_run_id: str | None,
    note: str | None = None,
) -> ModelVersion:
    """Move the target's alias to ``version``; refuse whatever did not pass the gate.

    The alias moves only from the version the gate judged the candidate against
    (``report.alias_version``): when another run promoted meanwhile, :class:`StaleBaseline`
    is raised and the alias stays, so a candidate never replaces a model it was not compared with.

    Args:
        version: the registered candidate.
        report: its gate's report; ``report.alias_version`` is the version the alias may move from.
        target: the storage root and the alias to move (``TrainConfig.target``).
        flow_run_id: the Prefect flow run, recorded in the alias's history.
        note: appended to the reason in the alias's history (a person's approval).

    Returns:
        ``version`` with the alias and the version the alias pointed at before.

    Raises:
        PromotionRefused: the gate did not pass, or the version is not ``registered``.
        StaleBaseline: the alias moved after the candidate was judged.
    """
    promoted = move_alias(version, report, target=target, actor=PROMOTING_ACTOR, flow_run_id=flow_run_id, note=note)
    was = f"v{promoted.previous_version}" if promoted.previous_version else "(none)"
    get_run_logger().info("alias %r of %s: %s -> v%d", target.alias, version.name, was, version.version)
    return promoted
