"""The ``in_process`` launcher: Keras's ``model.fit`` under the configured strategy, in this process."""

from __future__ import annotations

from typing import Any

from kerasflow.tasks import storage
from kerasflow.tasks.train.callbacks import standard_callbacks
from kerasflow.tasks.train.fit import fit_model, publish_run
from kerasflow.tasks.train.launch import register_launcher
from kerasflow.tasks.train.launch.job import TrainingJob, scratch_dir
from kerasflow.tasks.train.launch.worker_processes import progress_for
from kerasflow.tasks.train.state import DurableBackup, TrainingState


@register_launcher("in_process", on_this_node=True)
def in_process(job: TrainingJob, *, logger: Any, lease: Any):
    """Train ``job`` with Keras's ``model.fit`` in this process; publish the run folder.

    Args:
        job: the training job.
        logger: the train task's Prefect logger.
        lease: the training's lease, checked before each backup is published.
    """
    run_dir = storage.run_dir(job.config.storage.root, job.run_id)
    backup = DurableBackup(TrainingState(job.state_url), scratch=scratch_dir(job), publish=True, lease=lease)
    callbacks = standard_callbacks(
        job.config.training, backup=backup, progress=progress_for(job, logger), tensorboard_dir=run_dir / "tensorboard"
    )
    trained = fit_model(
        job.config,
        job.dataset,
        run_id=job.run_id,
        run_dir=run_dir,
        callbacks=callbacks,
        warm_start_version=job.warm_start_version,
    )
    return publish_run(trained, job.config)
