"""The retraining flow: ingest -> validate -> train -> evaluate -> gate -> register -> (approve) -> promote.

What runs where: every step is a Prefect task in this flow's process (locally, against
Prefect's embedded server unless ``PREFECT_API_URL`` names one). Training runs where
``runtime.launcher`` says (tasks/train/launchers.py): in this process under the strategy
of ``tasks/train/strategy.py`` (every local GPU under MirroredStrategy, or one device),
or as MultiWorkerMirroredStrategy workers on this machine or in a Kubernetes Indexed Job.

What is retried: ingest, register and promote retry transient I/O errors with
exponential backoff; train retries twice and resumes from its last completed epoch, as
does the next run of the same training after a kill (tasks/train/state.py);
validate and gate never retry. A deterministic failure (bad data, bad config, NaN loss,
gate rejection) is not retried and fails the run with a message naming the cause.
When the data's fingerprint equals the production model's, the run ends early unless
``force`` is set: scheduled retraining on unchanged data wastes a GPU. With
``gate.approval: manual`` a passed candidate waits, paused, for a person's answer in the
Prefect UI before promotion.
"""

from __future__ import annotations

import uuid

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from models.registry import ModelRegistry
from tasks import events, storage
from tasks.approval import ApprovalRejected, request_approval
from tasks.config import TrainConfig
from tasks.evaluate import evaluate
from tasks.gate import GateRejected, gate
from tasks.ingest import ingest
from tasks.refs import DatasetRef, RunSummary
from tasks.register import promote, register
from tasks.train import train
from tasks.train.strategy import check_accelerator_features
from tasks.validate import validate


def _run_name() -> str:
    params = flow_run.parameters or {}
    config = params.get("config")
    name = getattr(getattr(config, "model", None), "name", None) or (config or {}).get("model", {}).get("name", "model")
    return f"{name}-{uuid.uuid4().hex[:6]}"


@flow(name="kerasflow-train", flow_run_name=_run_name, log_prints=True)
def train_flow(config: TrainConfig, force: bool = False, fresh: bool = False) -> RunSummary:
    """Retrain ``config.model.name`` and promote the candidate if it beats production.

    ``fresh`` discards the backup of an interrupted training of the same recipe, config
    and data instead of resuming it.
    """
    logger = get_run_logger()
    root = config.storage.root
    storage.check_root(root)  # refuse an unusable root or runtime before any work
    check_accelerator_features(config.runtime)
    run_id = str(flow_run.id or uuid.uuid4())
    name, alias = config.model.name, config.registry.alias

    dataset = ingest(config.data, root=root)
    unchanged = None if force else _unchanged_since(config, dataset)
    if unchanged is not None:
        message = (
            f"data unchanged since {name} v{unchanged} (fingerprint {dataset.fingerprint}); use --force to retrain"
        )
        logger.info(message)
        events.emit(
            events.TRAINING_SKIPPED, model=name, version=unchanged, alias=alias, fingerprint=dataset.fingerprint
        )
        return RunSummary(
            model_name=name,
            outcome="skipped",
            message=message,
            dataset_fingerprint=dataset.fingerprint,
            storage_root=root,
        )

    validate(dataset, config)
    trained = train(config, dataset, run_id=run_id, fresh=fresh)
    evaluation = evaluate(trained, dataset, config)
    report = gate(evaluation, config.gate, name=name)
    version = register(
        trained, dataset=dataset, evaluation=evaluation, report=report, config=config, flow_run_id=flow_run.id
    )
    summary = dict(
        model_name=name,
        dataset_fingerprint=dataset.fingerprint,
        storage_root=root,
        metrics=evaluation.candidate.values,
        gate=report,
        run_dir=storage.run_url(root, run_id),
    )
    if not report.passed:
        # Recorded as rejected above; failing the run makes the rejection visible in the UI.
        error = GateRejected(f"{name} v{version.version} rejected by the gate, {alias!r} unchanged: {report.summary()}")
        events.emit(events.GATE_REJECTED, model=name, version=version.version, alias=alias, reason=report.summary())
        error.summary = RunSummary(outcome="rejected", message=str(error), version=version, **summary)
        raise error
    approval_note = None
    if config.gate.approval == "manual":
        decision = request_approval(version, report, config=config)
        if not decision.approved:
            error = ApprovalRejected(f"{name} v{version.version} {decision.describe()}; {alias!r} unchanged")
            events.emit(
                events.GATE_REJECTED, model=name, version=version.version, alias=alias, reason=decision.describe()
            )
            rejected = version.model_copy(update={"status": "rejected"})
            error.summary = RunSummary(outcome="rejected", message=str(error), version=rejected, **summary)
            raise error
        approval_note = decision.describe()
    promoted = promote(version, report, config=config, flow_run_id=flow_run.id, note=approval_note)
    was = f"was v{promoted.previous_version}" if promoted.previous_version else "first promotion"
    message = f"{name} v{promoted.version} promoted to {alias!r} ({was})"
    logger.info(message)
    events.emit(
        events.MODEL_PROMOTED,
        model=name,
        version=promoted.version,
        previous_version=promoted.previous_version,
        alias=alias,
        fingerprint=dataset.fingerprint,
    )
    return RunSummary(outcome="promoted", message=message, version=promoted, **summary)


def _unchanged_since(config: TrainConfig, dataset: DatasetRef) -> int | None:
    """The production version trained on exactly this data, if there is one."""
    registry = ModelRegistry(storage.registry_url(config.storage.root))
    version = registry.alias_target(config.model.name, config.registry.alias)
    if version is None:
        return None
    lineage = registry.get(config.model.name, version).get("dataset", {}).get("fingerprint")
    return version if lineage == dataset.fingerprint else None
