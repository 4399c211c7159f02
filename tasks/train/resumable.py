"""A training that survives its process: keyed, leased, resumed from its backup, recorded when done.

What a training is (recipe, config, data) keys its durable state (state.py); the state is
held under an expiring lease (tasks/storage/lease.py), so two live runs never share it;
a killed training resumes from its last backup, and one that finished is not trained
again: its recorded model is returned until the flow forgets it (the candidate's fate is
recorded). The train task is this, at Prefect's edge.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from typing import Any

from kerasflow.tasks.config import TrainConfig
from kerasflow.tasks.refs import DatasetRef, TrainedModel
from kerasflow.tasks.storage.lease import TrainingLease

# Not `import launch`: the function would shadow the room kerasflow.tasks.train.launch on this package.
from kerasflow.tasks.train.launch import launch as launch_job
from kerasflow.tasks.train.launch.job import TrainingJob, scratch_dir
from kerasflow.tasks.train.state import TrainingState, training_key, training_url
from kerasflow.tasks.train.warm_start import resolve_warm_start

__all__ = ["forget_trained", "train_resumably", "training_job"]


def training_job(config: TrainConfig, dataset: DatasetRef, *, run_id: str, logger: Any) -> TrainingJob:
    """What the launcher runs: the config, the data, the run, the training's key and state, the warm start.

    Args:
        config: the recipe's config; with ``dataset``, it keys the training.
        dataset: the materialized dataset to train on.
        run_id: the retraining run's id; names the run folder the model is written to.
        logger: where a cold start for want of a model to warm start from is logged.

    Raises:
        ConfigError: ``training.warm_start`` names a version that cannot be used.
    """
    key = training_key(config, dataset)
    return TrainingJob(
        config=config,
        dataset=dataset,
        run_id=run_id,
        state_url=training_url(config.storage.root, key),
        key=key,
        warm_start_version=resolve_warm_start(
            config.training.warm_start, config.model, root=config.storage.root, logger=logger
        ),
    )


def train_resumably(
    job: TrainingJob,
    *,
    lease_seconds: int,
    fresh: bool,
    flow_run_id: str,
    logger: Any,
    slots: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> TrainedModel:
    """Run ``job`` under its training's lease: reuse a finished training, resume a killed one, or start.

    Args:
        job: the training job (:func:`training_job`).
        lease_seconds: how long the lease lasts without renewal (``runtime.lease_seconds``).
        fresh: discard the training's backup and finished-training record first.
        flow_run_id: the flow run holding the lease, named to a run that waits for it.
        logger: where reuse, resumption and a fresh start are logged.
        slots: the context held while the launcher trains (the GPU slots of the node).

    Returns:
        The trained model, recorded as the training's: trained now, or reused.

    Raises:
        TrainingBusyError: another live run holds the training's lease.
        LeaseLostError: the lease passed to another run while this one trained.
    """
    state = TrainingState(job.state_url)
    lease = TrainingLease(job.state_url, seconds=lease_seconds, description=job.key, flow_run_id=flow_run_id)
    # A holder on another machine that died renews no more: its lease ends within
    # lease_seconds of its last renewal, so wait that long (and a little) before giving up.
    with lease.held(wait_seconds=1.5 * lease_seconds + 5):
        job = job.model_copy(update={"lease_generation": lease.generation})
        if fresh:
            logger.info("--fresh: discarding any backup of training %s", job.key)
            state.clear()
            state.forget_trained()
        elif (done := state.finished()) is not None:
            logger.info(
                "training %s already finished in run %s (%d epoch(s)); reusing its model %s instead of training again",
                job.key,
                done.run_id,
                done.epochs_completed,
                done.model_uri,
            )
            return done
        elif epoch := state.latest_epoch():
            logger.info("training %s was interrupted after epoch %d; resuming from its backup", job.key, epoch)
        with slots():
            trained = launch_job(job, logger=logger, lease=lease)
        lease.check()  # a run that lost the training must not clear the new holder's backup
        state.record_trained(trained)  # first: a kill from here on resumes after training
        state.clear()  # the model is written and recorded: the backup has served its purpose
        shutil.rmtree(scratch_dir(job), ignore_errors=True)  # private folders of killed processes
    return trained


def forget_trained(config: TrainConfig, dataset: DatasetRef) -> None:
    """Clear the finished-training record once its candidate was promoted or rejected.

    Args:
        config: the recipe's config; with ``dataset``, it keys the training.
        dataset: the dataset the candidate was trained on.
    """
    TrainingState(training_url(config.storage.root, training_key(config, dataset))).forget_trained()
