"""The train step as its own flow, so it can run on another work pool (GPUs) than the rest.

What runs where: with ``runtime.train_on`` set, the retraining flow's ``train`` task calls
``run_deployment`` for that deployment (``kerasflow-train-step/gpu`` in
deploy/prefect.yaml) with the configured job variables (GPU count, image), and waits. A
worker of that deployment's pool starts the infrastructure (a GPU pod, say) and runs
:func:`train_step_flow` there, which runs the same ``train`` task as a local run does.
Cheap steps (ingest, validate, evaluate, gate, register) stay on the parent's pool. The
two runs share only the storage root: the child writes its outcome to
``<root>/runs/<run-id>/train-step.json`` and the parent reads it back, so no Prefect result
storage is needed.

What is retried: inside the child, the ``train`` task retries and resumes as anywhere.
When the child's infrastructure dies (the run crashes, or ends without an outcome), the
parent's task launches a new child run once, which resumes from the training's backup.
A deterministic failure in the child (NaN loss, bad config) is recorded in the outcome
and fails the parent without a retry.
"""

# No `from __future__ import annotations`: a served flow's parameters must resolve (flows/train.py).

import json
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import task_run

from kerasflow.tasks import storage
from kerasflow.tasks.config import ConfigError, TrainConfig
from kerasflow.tasks.failures import DeterministicFailure, KerasflowError, retry_unless_deterministic
from kerasflow.tasks.refs import DatasetRef, TrainedModel
from kerasflow.tasks.train import train

OUTCOME_FILE = "train-step.json"


class TrainStepFailed(KerasflowError, RuntimeError):
    """The train step's run ended without a trained model (crashed, cancelled, timed out)."""


def model_name_parameter() -> str:
    """The model named by this flow run's ``config`` parameter (a TrainConfig or its dict)."""
    from prefect.runtime import flow_run

    config = (flow_run.parameters or {}).get("config")
    if isinstance(config, TrainConfig):
        return config.model.name
    return ((config or {}).get("model") or {}).get("name") or "model"


def _step_run_name() -> str:
    return f"{model_name_parameter()}-train-step"


@flow(name="kerasflow-train-step", flow_run_name=_step_run_name, log_prints=True)
def train_step_flow(config: TrainConfig, dataset: DatasetRef, run_id: str, fresh: bool = False) -> TrainedModel:
    """Train ``config``'s model on ``dataset`` for the retraining run ``run_id``; record the outcome.

    Args:
        config: the recipe's config, with ``runtime.train_on`` unset.
        dataset: the ingested dataset to train on.
        run_id: the id of the retraining flow run this step trains for; names its run folder.
        fresh: discard the backup of an interrupted training instead of resuming it.
    """
    outcome_url = storage.join(storage.run_url(config.storage.root, run_id), OUTCOME_FILE)
    try:
        trained = train(config, dataset, run_id=run_id, fresh=fresh)
    except (DeterministicFailure, ConfigError) as error:
        _write_outcome(outcome_url, {"deterministic_failure": f"{type(error).__name__}: {error}"})
        raise
    _write_outcome(outcome_url, {"trained": trained.model_dump(mode="json")})
    return trained


@task(
    name="train",
    retries=1,
    retry_delay_seconds=10,
    retry_condition_fn=retry_unless_deterministic,
    cache_policy=NO_CACHE,
)
def train_on_deployment(config: TrainConfig, dataset: DatasetRef, *, run_id: str, fresh: bool = False) -> TrainedModel:
    """Run the train step as a flow run of ``config.runtime.train_on`` and return what it trained.

    Args:
        config: the recipe's config; ``runtime.train_on`` names the deployment.
        dataset: the ingested dataset to train on.
        run_id: the id of the retraining flow run; the step writes its outcome under that run's folder.
        fresh: discard the backup of an interrupted training; only the first attempt discards it.

    Raises:
        DeterministicFailure: the step's run failed in a way a retry repeats.
        TrainStepFailed: the step's run ended without a trained model (crashed, cancelled, timed out).
    """
    from prefect.deployments import run_deployment

    logger = get_run_logger()
    target = config.runtime.train_on
    # The child trains here and now: it must not launch yet another child.
    step_config = config.model_copy(update={"runtime": config.runtime.model_copy(update={"train_on": None})})
    outcome_url = storage.join(storage.run_url(config.storage.root, run_id), OUTCOME_FILE)
    storage.remove_file(outcome_url)  # an outcome left by an earlier attempt must not pass for this one's
    logger.info("training on deployment %s with job variables %s", target.deployment, target.job_variables)
    child = run_deployment(
        target.deployment,
        parameters={
            "config": step_config.model_dump(mode="json"),
            "dataset": dataset.model_dump(mode="json"),
            "run_id": run_id,
            # --fresh discards the backup once; a relaunch resumes what the first child trained.
            "fresh": fresh and task_run.run_count <= 1,
        },
        job_variables=target.job_variables,
        timeout=target.timeout_seconds,
        as_subflow=True,
    )
    if child.state is None or not child.state.is_final():
        _cancel(child.id)  # waited timeout_seconds: a relaunch must not race a child still training
    trained = trained_by(child, _read_outcome(outcome_url), deployment=target.deployment)
    logger.info("train step run %s completed: model at %s", child.name, trained.model_uri)
    return trained


def trained_by(child: Any, outcome: dict[str, Any], *, deployment: str) -> TrainedModel:
    """What the train step's run trained, from its final state and the outcome it wrote.

    Args:
        child: the train step's flow run (its ``state`` and ``name``).
        outcome: the outcome file it wrote: ``trained`` or ``deterministic_failure``; empty if none.
        deployment: the deployment it ran under, named in the error.

    Raises:
        DeterministicFailure: the step's run failed in a way a retry repeats.
        TrainStepFailed: the step's run ended without a trained model (crashed, cancelled, timed out).
    """
    state = child.state
    if "trained" in outcome and state is not None and state.is_completed():
        return TrainedModel.model_validate(outcome["trained"])
    if "deterministic_failure" in outcome:
        raise DeterministicFailure(f"train step run {child.name} failed: {outcome['deterministic_failure']}")
    described = f"{state.name}: {state.message}" if state is not None else "no state"
    raise TrainStepFailed(
        f"train step run {child.name} ({deployment}) ended without a model ({described}); "
        "its worker's logs say why; a retry resumes from the training's backup"
    )


def _cancel(flow_run_id) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, Cancelling(message="the retraining run stopped waiting for it"))


def _write_outcome(url: str, payload: dict) -> None:
    storage.write_file(url, json.dumps(payload, indent=2).encode())


def _read_outcome(url: str) -> dict:
    return json.loads(storage.read_file(url) or b"{}")
