"""Train: fit the recipe's model under a tf.distribute strategy, resumably.

The training's durable state (backups published every epoch) is keyed by what the
training is (tasks/train/state.py) and held under an expiring lease
(tasks/storage/lease.py; both in tasks/train/resumable.py), so a retry of this task, the
next scheduled run or ``kerasflow train`` again resumes a training that was killed, on
this machine or another, and two live runs never share it. A training that finished but
whose model was not yet promoted or rejected (the run was killed in evaluation, gating,
registration or before promotion) is not trained again: the task returns the recorded
model (``trained.json``), original run id and all, and the flow calls
:func:`forget_trained` once the candidate's fate is recorded.
While training, the task holds slots of the Prefect global concurrency limit
``runtime.gpu_limit`` for the GPUs it uses, so runs sharing a node queue. A diverged
(NaN) loss is deterministic and not retried.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run, task_run

from kerasflow.tasks.config import RuntimeConfig, TrainConfig
from kerasflow.tasks.failures import retry_unless_deterministic
from kerasflow.tasks.refs import DatasetRef, TrainedModel
from kerasflow.tasks.train.launch import launcher_for

__all__ = ["forget_trained", "train"]


@task(
    name="train",
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=retry_unless_deterministic,
    cache_policy=NO_CACHE,
)
def train(config: TrainConfig, dataset: DatasetRef, *, run_id: str, fresh: bool = False) -> TrainedModel:
    """Train a candidate on ``dataset``; write it to ``<root>/runs/<run_id>/model.keras``.

    Args:
        config: the recipe's config.
        dataset: the materialized dataset to train on.
        run_id: the retraining run's id; names the run folder the model is written to.
        fresh: discard the backup of an interrupted training and its finished-training record (first attempt
            only) instead of resuming or reusing them.

    Raises:
        TrainingBusyError: another live run holds the training's lease.
        TrainingDivergedError: the loss became NaN or infinite (trained in process).
        WorkerDeterministicError: a worker process failed in a way a retry repeats (NaN loss, bad config).
        ConfigError: the recipe's model or training section does not resolve.
    """
    # Keras and TensorFlow load here, not when kerasflow.tasks.train is imported: `kerasflow k8s
    # render` and the worker's cluster helpers live in this package and need neither.
    from kerasflow.tasks.train.resumable import train_resumably, training_job

    logger = get_run_logger()
    trained = train_resumably(
        training_job(config, dataset, run_id=run_id, logger=logger),
        lease_seconds=config.runtime.lease_seconds,
        # Once: a retry of this task resumes the fresh start instead of discarding the epochs it has just trained.
        fresh=fresh and task_run.run_count <= 1,
        flow_run_id=str(flow_run.id or run_id),
        logger=logger,
        slots=lambda: gpu_slots(config.runtime, logger=logger),
    )
    logger.info(
        "trained %s with %s, global batch %d: %d epoch(s) in %.1fs, model at %s",
        config.model.name,
        trained.strategy,
        trained.global_batch_size,
        trained.epochs_completed,
        trained.train_seconds,
        trained.model_uri,
    )
    return trained


def forget_trained(config: TrainConfig, dataset: DatasetRef) -> None:
    """Clear the finished-training record once its candidate was promoted or rejected.

    Args:
        config: the recipe's config; with ``dataset``, it keys the training.
        dataset: the dataset the candidate was trained on.
    """
    from kerasflow.tasks.train import resumable

    resumable.forget_trained(config, dataset)


@contextlib.contextmanager
def gpu_slots(runtime: RuntimeConfig, *, logger) -> Iterator[int]:
    """Hold ``runtime.gpu_limit`` slots for the GPUs training uses on this node.

    A limit that does not exist on the server is not enforced (Prefect's non-strict
    mode): create it once per node pool with ``prefect gcl create gpu --limit <GPUs>``.

    Args:
        runtime: the recipe's ``runtime`` section (``gpu_limit``, ``gpu_slots``, ``devices``, the launcher).
        logger: where waiting for, holding and releasing the slots is logged.

    Yields:
        The slots held, for the block; 0 without a limit or GPUs on this node.
    """
    slots = runtime.gpu_slots if runtime.gpu_slots is not None else local_gpus(runtime)
    if not runtime.gpu_limit or slots == 0:
        yield 0
        return
    from prefect.concurrency.sync import concurrency

    logger.info("waiting for %d slot(s) of the %r concurrency limit", slots, runtime.gpu_limit)
    with concurrency(runtime.gpu_limit, occupy=slots, strict=False):
        logger.info("holding %d slot(s) of %r", slots, runtime.gpu_limit)
        yield slots
    logger.info("released %d slot(s) of %r", slots, runtime.gpu_limit)


def local_gpus(runtime: RuntimeConfig) -> int:
    """The GPUs of this node that training occupies (none when pods or Slurm nodes train elsewhere)."""

    if not launcher_for(runtime.launcher.kind).on_this_node:
        return 0
    if runtime.devices:
        return sum("gpu" in d.lower() for d in runtime.devices)
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))
