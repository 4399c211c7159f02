"""Train: fit the recipe's model under a tf.distribute strategy, resumably.

A retry of this task runs in the same run folder, so BackupAndRestore resumes from the
last completed epoch; a diverged (NaN) loss is deterministic and not retried.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks import storage
from tasks.config import TrainConfig
from tasks.failures import retry_unless_deterministic
from tasks.refs import DatasetRef, TrainedModel
from tasks.train.callbacks import PrefectProgress, standard_callbacks
from tasks.train.fit import fit_model

__all__ = ["train"]


@task(
    name="train",
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=retry_unless_deterministic,
    cache_policy=NO_CACHE,
)
def train(config: TrainConfig, dataset: DatasetRef, *, run_id: str) -> TrainedModel:
    """Train a candidate on ``dataset``; write it to ``<root>/runs/<run_id>/model.keras``."""
    logger = get_run_logger()
    run_dir = storage.run_dir(config.storage.root, run_id)
    progress = PrefectProgress(
        logger=logger,
        epochs=config.training.epochs,
        description=f"training {config.model.name} ({config.model.family}) on {dataset.fingerprint}",
    )
    callbacks = standard_callbacks(config.training, run_dir=run_dir, progress=progress)
    trained = fit_model(config, dataset, run_id=run_id, run_dir=run_dir, callbacks=callbacks)
    root = config.storage.root
    if not storage.is_local(root):
        # The run folder is the local mirror of <root>/runs/<run_id>; publish it there.
        run_url = storage.run_url(root, run_id)
        storage.upload_dir(run_dir, run_url)
        trained = trained.model_copy(
            update={
                "model_uri": storage.join(run_url, "model.keras"),
                "saved_model_uri": storage.join(run_url, "saved_model"),
            }
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
