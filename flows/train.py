"""The retraining flow: ingest -> validate -> (drift) -> train -> evaluate -> gate -> register -> (approve) -> promote.

What runs where: every step is a Prefect task in this flow's process (locally, against
Prefect's embedded server unless ``PREFECT_API_URL`` names one). With ``runtime.train_on``
the train step is a flow run of its own on another work pool (flows/train_step.py).
Training runs where ``runtime.launcher`` says (tasks/train/launch/): in this process under the strategy
of ``tasks/train/strategy.py`` (every local GPU under MirroredStrategy, or one device),
or as MultiWorkerMirroredStrategy workers on this machine or in a Kubernetes Indexed Job.

What is retried: ingest, register and promote retry transient I/O errors with
exponential backoff; train retries twice and resumes from its last completed epoch, as
does the next run of the same training after a kill (tasks/train/state.py); a run
killed after training finished is resumed after it by the next run: the recorded model is
evaluated, gated, registered (the version already written is found) and promoted;
validate and gate never retry. The training data is compared with the production
model's, column by column (tasks/drift.py): a drift is reported, and fails the run
under ``validation.drift.action: fail``. A deterministic failure (bad data, bad config, NaN loss,
gate rejection) is not retried and fails the run with a message naming the cause.
When the data's fingerprint equals the production model's, the run ends early unless
``force`` is set: scheduled retraining on unchanged data wastes a GPU. With
``gate.approval: manual`` a passed candidate waits for a person's answer in the Prefect
UI before promotion: paused in process locally; under a deployment suspended, its
process gone, and resumed from the candidate it recorded (tasks/approval.py), so the
resumed run neither ingests nor trains again.
"""

# No `from __future__ import annotations`: Prefect pickles a served flow's function by value
# (cloudpickle keeps only the globals its code names), so string annotations such as
# "TrainConfig" could not be resolved in the run's process (Train_FlowModel is not fully defined).

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from kerasflow.flows.train_step import model_name_parameter, train_on_deployment
from kerasflow.models.registry import ModelRegistry
from kerasflow.tasks import events, storage
from kerasflow.tasks.approval import ApprovalRejected, awaiting_approval, request_approval
from kerasflow.tasks.config import TrainConfig
from kerasflow.tasks.drift import check_drift
from kerasflow.tasks.evaluate import evaluate
from kerasflow.tasks.gate import GateRejected, gate
from kerasflow.tasks.ingest import ingest
from kerasflow.tasks.ingest.sources import check_source
from kerasflow.tasks.ingest.sources.tables import window
from kerasflow.tasks.lineage import changes, training_definition
from kerasflow.tasks.refs import Candidate, DatasetRef, GateReport, ModelVersion, RunSummary
from kerasflow.tasks.register import PROMOTING_ACTOR, StaleBaseline, promote, promotion_reason, register
from kerasflow.tasks.storage import holds
from kerasflow.tasks.train import forget_trained, train
from kerasflow.tasks.train.build import check_definition, check_monitors
from kerasflow.tasks.train.launch import check_launcher
from kerasflow.tasks.train.strategy import check_accelerator_features
from kerasflow.tasks.validate import validate


def _run_name() -> str:
    """``<model>`` until the data is known, then ``<model>-<fingerprint>`` (_name_after_data).

    Prefect's run logger keeps the first name, so log lines read "Flow run 'digits' - ...".
    """
    return model_name_parameter()


def _name_after_data(model: str, fingerprint: str) -> None:
    """Rename this run after its model and data, so the runs list reads "which model, which data".

    Only kerasflow's own flow: a team's flow calling :func:`retrain` keeps the name it gave its runs.
    """
    if flow_run.id is None or flow_run.flow_name != TRAIN_FLOW:
        return
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(flow_run.id, name=f"{model}-{fingerprint[:FINGERPRINT_CHARS]}")
    except Exception as error:  # noqa: BLE001 - a cosmetic rename never fails a retraining
        get_run_logger().warning("could not rename the run after its data: %s", error)


# Enough of the fingerprint to tell datasets apart in a list; the full one is in the run's logs and registry.
FINGERPRINT_CHARS = 12


TRAIN_FLOW = "kerasflow-train"


@flow(name=TRAIN_FLOW, flow_run_name=_run_name, log_prints=True)
def train_flow(config: TrainConfig, force: bool = False, fresh: bool = False) -> RunSummary:
    """Retrain ``config.model.name`` and promote the candidate if it beats production.

    ``fresh`` discards the backup of an interrupted training of the same recipe, config
    and data instead of resuming it. The datasets the run holds from ingest on
    (tasks/storage/holds.py) are let go when it ends, however it ends.

    Args:
        config: the recipe's config.
        force: retrain even when the data and the training definition are unchanged since the version under
            the registry alias.
        fresh: discard the backup of an interrupted training instead of resuming it.

    Returns:
        The run's outcome (promoted or skipped), with the version and its metrics.

    Raises:
        GateRejected: the gate or a person rejected the candidate, or production moved while it was judged.
        ConfigError: the recipe names a builder, source or launcher that does not exist, or bad params.
    """
    return retrain(config, force=force, fresh=fresh)


@dataclass(frozen=True)
class TeamSteps:
    """A team's own work between kerasflow's steps, run inside the same flow run by :func:`retrain`.

    Each is called with what the step before it produced; what it returns is ignored. A
    Prefect task is called as a task (its run, retries and logs are the flow run's). Raising
    stops the run there, as a failing kerasflow step does: nothing after it runs.

    Attributes:
        before_training: called with the dataset once it is validated and compared with
            production's, before any training (a team's data policy: enough rows, fresh enough).
        before_promotion: called with the registered version and the gate's report once the
            gate (and a manual approval) passed, before the alias moves. Raising
            :class:`~kerasflow.tasks.gate.GateRejected` rejects the candidate as the gate would
            (the next run trains again); any other exception fails the run, the alias unchanged.
    """

    before_training: Callable[[DatasetRef], Any] | None = None
    before_promotion: Callable[[ModelVersion, GateReport], Any] | None = None


def retrain(
    config: TrainConfig, *, force: bool = False, fresh: bool = False, steps: TeamSteps | None = None
) -> RunSummary:
    """What ``kerasflow train`` does, inside the calling flow run, with a team's ``steps`` between its steps.

    Call it from a team's own ``@flow``: every guarantee of the command holds (the checks
    before any work, skip when data and definition are unchanged, the drift check, manual
    approval, the promoted and rejected events, the stale-baseline check, the finished
    training forgotten once its fate is recorded, the datasets held until the run ends).

    Args:
        config: the recipe's config.
        force: retrain even when the data and the training definition are unchanged.
        fresh: discard the backup of an interrupted training instead of resuming it.
        steps: the team's own work between the steps; None for none.

    Returns:
        The run's outcome (promoted or skipped), with the version and its metrics.

    Raises:
        GateRejected: the gate, a person or ``steps.before_promotion`` rejected the candidate, or production
            moved while it was judged; its ``summary`` is the run's summary.
        ConfigError: the recipe names a builder, source or launcher that does not exist, or bad params.
    """
    with holds.released_at_end(config.storage.root):
        return _retrain(config, force=force, fresh=fresh, steps=steps or TeamSteps())


def _retrain(config: TrainConfig, *, force: bool, fresh: bool, steps: TeamSteps) -> RunSummary:
    logger = get_run_logger()
    root = config.storage.root
    storage.check_root(root)  # refuse an unusable root or runtime before any work
    # A rolling window ends on the day before this run's scheduled start, fixed once here so
    # that every step (and a retry, or a resume after approval) sees the same days.
    config = config.model_copy(update={"data": window.resolve_until(config.data, flow_run.scheduled_start_time)})
    run_id = str(flow_run.id or uuid.uuid4())
    name, alias = config.model.name, config.registry.alias
    if config.gate.approval == "manual" and (candidate := awaiting_approval(config.target, run_id)) is not None:
        # This run was suspended for approval and resumed, from the top, after the answer.
        # Its config was checked before it trained; promotion needs no TensorFlow.
        logger.info("resumed: %s v%d awaits its approval", name, candidate.version.version)
        _name_after_data(name, candidate.dataset.fingerprint)  # the engine renamed it on restart
        return _approve_and_promote(candidate, config=config, run_id=run_id, steps=steps)
    check_accelerator_features(config.runtime)
    check_definition(config)  # an unknown builder, a misspelt param or loss: exit 2, before any work
    check_source(config.data)  # a source or launcher no package registered: exit 2, before any work
    check_launcher(config.runtime.launcher.kind)

    dataset = ingest(config.data, root=root, runtime=config.runtime.ingest)
    _name_after_data(name, dataset.fingerprint)
    unchanged, reason = (None, "--force was given") if force else _unchanged_since(config, dataset)
    if unchanged is not None:
        message = (
            f"data and training definition unchanged since {name} v{unchanged} (data {dataset.fingerprint}, "
            f"definition {reason}: the data, model and training sections and the builder's code); "
            "use --force to retrain"
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
    if reason:
        logger.info("training: %s", reason)

    check_monitors(config, dataset)  # the task the labels call for reports the monitors: exit 2 before training
    validate(dataset, config)
    check_drift(dataset, config.validation.drift, name=name, alias=alias)
    if steps.before_training is not None:
        steps.before_training(dataset)
    if config.runtime.train_on is None:
        trained = train(config, dataset, run_id=run_id, fresh=fresh)
    else:  # on another work pool (GPUs), as a flow run of its own: flows/train_step.py
        trained = train_on_deployment(config, dataset, run_id=run_id, fresh=fresh)
    evaluation = evaluate(trained, dataset, config.model, target=config.target)
    report = gate(evaluation, config.gate, name=name)
    version = register(
        trained, dataset=dataset, evaluation=evaluation, report=report, config=config, flow_run_id=flow_run.id
    )
    candidate = Candidate(
        dataset=dataset,
        version=version,
        report=report,
        metrics=evaluation.candidate.values,
        run_dir=storage.run_url(root, trained.run_id),  # the run that trained it, when reused after a kill
        reason=reason,
    )
    if not report.passed:
        forget_trained(config, dataset)  # its fate is recorded: the next run of this key trains
        # Recorded as rejected above; failing the run makes the rejection visible in the UI.
        error = GateRejected(f"{name} v{version.version} rejected by the gate, {alias!r} unchanged: {report.summary()}")
        events.emit(events.GATE_REJECTED, model=name, version=version.version, alias=alias, reason=report.summary())
        error.summary = _summary(candidate, config, outcome="rejected", message=str(error))
        raise error
    return _approve_and_promote(candidate, config=config, run_id=run_id, steps=steps)


def _approve_and_promote(candidate: Candidate, *, config: TrainConfig, run_id: str, steps: TeamSteps) -> RunSummary:
    """Ask a person when ``gate.approval`` is manual, run the team's step, then promote the passed candidate."""
    name, alias, version = config.model.name, config.registry.alias, candidate.version
    approval_note = None
    if config.gate.approval == "manual":
        decision = request_approval(
            candidate, target=config.target, timeout=config.gate.approval_timeout_seconds, run_id=run_id
        )
        if not decision.approved:
            error = ApprovalRejected(f"{name} v{version.version} {decision.describe()}; {alias!r} unchanged")
            events.emit(
                events.GATE_REJECTED, model=name, version=version.version, alias=alias, reason=decision.describe()
            )
            forget_trained(config, candidate.dataset)
            rejected = candidate.model_copy(update={"version": version.model_copy(update={"status": "rejected"})})
            error.summary = _summary(rejected, config, outcome="rejected", message=str(error))
            raise error
        approval_note = decision.describe()
    if steps.before_promotion is not None:
        try:
            steps.before_promotion(version, candidate.report)
        except GateRejected as error:
            forget_trained(config, candidate.dataset)  # its fate is recorded: the next run trains
            events.emit(events.GATE_REJECTED, model=name, version=version.version, alias=alias, reason=str(error))
            error.summary = _summary(candidate, config, outcome="rejected", message=str(error))
            raise
    try:
        promoted = promote(version, candidate.report, target=config.target, flow_run_id=flow_run.id, note=approval_note)
    except StaleBaseline as error:
        forget_trained(config, candidate.dataset)  # the next run trains and is judged against the new model
        events.emit(events.GATE_REJECTED, model=name, version=version.version, alias=alias, reason=str(error))
        error.summary = _summary(candidate, config, outcome="rejected", message=str(error))
        raise
    forget_trained(config, candidate.dataset)
    was = f"was v{promoted.previous_version}" if promoted.previous_version else "first promotion"
    message = f"{name} v{promoted.version} promoted to {alias!r} ({was})"
    get_run_logger().info(message)
    events.emit_promoted(
        name,
        version=promoted.version,
        previous_version=promoted.previous_version,
        alias=alias,
        fingerprint=candidate.dataset.fingerprint,
        actor=PROMOTING_ACTOR,
        reason=promotion_reason(candidate.report, approval_note),
    )
    return _summary(candidate.model_copy(update={"version": promoted}), config, outcome="promoted", message=message)


def _summary(candidate: Candidate, config: TrainConfig, *, outcome: str, message: str) -> RunSummary:
    return RunSummary(
        model_name=config.model.name,
        outcome=outcome,
        message=message,
        dataset_fingerprint=candidate.dataset.fingerprint,
        storage_root=config.storage.root,
        version=candidate.version,
        metrics=candidate.metrics,
        gate=candidate.report,
        run_dir=candidate.run_dir,
        reason=candidate.reason,
    )


def _unchanged_since(config: TrainConfig, dataset: DatasetRef) -> tuple[int | None, str | None]:
    """(the production version trained on this data and definition, or None; why the run trains).

    When a version is returned, the reason is the definition's fingerprint it matched.
    """

    registry = ModelRegistry(storage.registry_url(config.storage.root))
    version = registry.alias_target(config.model.name, config.registry.alias)
    if version is None:
        return None, f"no model under {config.registry.alias!r} yet"
    metadata = registry.get(config.model.name, version)
    if metadata.get("dataset", {}).get("fingerprint") != dataset.fingerprint:
        return None, f"the data changed since v{version}"
    current = training_definition(config)
    recorded = metadata.get("definition")
    if recorded and recorded.get("fingerprint") == current["fingerprint"]:
        return version, current["fingerprint"]
    return None, f"the training definition changed since v{version}: {', '.join(changes(recorded, current))}"
