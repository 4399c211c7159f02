"""One worker of a multi-worker training: ``python -m kerasflow.tasks.train.launch.worker JOB``.

JOB is the path or URL of a ``job.json`` (tasks/train/launch/job.py). The cluster comes from
TF_CONFIG (set by the launcher), a Kubernetes Indexed Job's index, or Slurm. Every
worker builds the recipe's model under MultiWorkerMirroredStrategy, restores the
newest published backup and runs the loop of ``loop.py``; only the chief (worker 0)
publishes backups, reports progress (JSON lines on stdout, replayed by the launcher)
and writes the model, the run folder and ``result.json``. Other workers keep their
backups in private folders that are removed at the end.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from kerasflow.tasks import storage
from kerasflow.tasks.config import ConfigError
from kerasflow.tasks.failures import DeterministicFailure
from kerasflow.tasks.storage.lease import LeaseView
from kerasflow.tasks.train import cluster, fit
from kerasflow.tasks.train.launch.job import TrainingJob, scratch_dir
from kerasflow.tasks.train.plan import make_plan
from kerasflow.tasks.train.strategy import build_strategy, describe, precision

# Exit code and stderr mark of a failure that a retry cannot fix (NaN loss, bad config).
DETERMINISTIC_EXIT = 3
DETERMINISTIC_MARK = "kerasflow-deterministic-failure "


def read_job(location: str):
    """The job at ``location``: a local path, or a URL read with fsspec."""
    if "://" in location:
        import fsspec

        with fsspec.open(location, "rb") as f:
            return TrainingJob.model_validate_json(f.read())
    return TrainingJob.model_validate_json(Path(location).read_text())


def run(job) -> None:
    """Train ``job`` as one worker of its cluster; the chief also saves the model and writes ``result.json``."""
    from kerasflow.tasks.train.callbacks import standard_callbacks
    from kerasflow.tasks.train.launch.events import EventStream
    from kerasflow.tasks.train.state import DurableBackup, TrainingState

    config, ref = job.config, job.dataset
    strategy = build_strategy(config.runtime.model_copy(update={"strategy": "multi_worker"}))
    chief = cluster.is_chief()
    replicas = strategy.num_replicas_in_sync
    plan = make_plan(config, ref, replicas=replicas)
    fit.seed_everything(config.training.seed)
    with strategy.scope(), precision(config.runtime):
        model = fit.build_compiled_model(config, ref, plan=plan, warm_start_version=job.warm_start_version)
    plan = fit.inputs_as_built(model, fit.labels_as_compiled(model, plan))
    run_dir = storage.run_dir(config.storage.root, job.run_id)
    lease = (
        LeaseView(job.state_url, generation=job.lease_generation, description=job.key)
        if job.lease_generation is not None
        else None
    )
    backup = DurableBackup(TrainingState(job.state_url), scratch=scratch_dir(job), publish=chief, lease=lease)
    callbacks = standard_callbacks(
        config.training,
        backup=backup,
        progress=EventStream() if chief else None,
        tensorboard_dir=run_dir / "tensorboard" if chief else None,
    )
    started = time.perf_counter()
    history = fit.loop_model(model, strategy, ref, callbacks=callbacks, plan=plan)
    if not chief:
        return
    trained = fit.save_trained(
        model,
        history.history,
        history.epoch,
        config=config,
        ref=ref,
        run_id=job.run_id,
        run_dir=run_dir,
        strategy=describe(strategy),
        replicas=replicas,
        seconds=time.perf_counter() - started,
        warm_started_from=job.warm_start_version,
    )
    fit.publish_run(trained, config, write_result=True)  # result.json: what the launcher returns


def main(argv: list[str]) -> int:
    """The worker's command line: train the job named by the one argument.

    Args:
        argv: the arguments after the program name: the path or URL of ``job.json``.

    Returns:
        The exit code: 0, 2 for a bad command line, ``DETERMINISTIC_EXIT`` for a failure a retry repeats.
    """
    if len(argv) != 1:
        print("usage: python -m kerasflow.tasks.train.launch.worker JOB_JSON_PATH_OR_URL", file=sys.stderr)
        return 2

    spec = cluster.tf_config_from_index(os.environ)
    if spec and not os.environ.get("TF_CONFIG"):
        os.environ["TF_CONFIG"] = spec
    try:
        run(read_job(argv[0]))
    except (DeterministicFailure, ConfigError) as error:
        # A retry would fail the same way: tell the launcher so, with the message.
        print(f"{DETERMINISTIC_MARK}{type(error).__name__}: {error}", file=sys.stderr, flush=True)
        return DETERMINISTIC_EXIT
    return 0


if __name__ == "__main__":
    from kerasflow.tasks._process import fast_exit
    from kerasflow.tasks._process.deferred_keras import defer_unused_keras_namespaces

    fast_exit.arm()  # a worker ends when its result is written, without the interpreter's teardown
    defer_unused_keras_namespaces()  # 2 s of CPU at start-up (tasks/_process/deferred_keras.py)
    fast_exit.run(lambda: sys.exit(main(sys.argv[1:])))
