"""Where training processes run: this process, N local workers, an Indexed Job, a Slurm job.

- ``in_process``: Keras's ``model.fit`` under the configured strategy, here.
- ``local_processes``: N worker processes on this machine, TF_CONFIG on free loopback
  ports, each running the multi-worker loop (``worker.py``). The chief's progress
  events are replayed into the Prefect logger and progress artifact; the first worker
  to fail fails the launch, and the others are stopped rather than left to hang.
- ``kubernetes``: the same workers as pods of an Indexed Job (``kubernetes.py``).
- ``slurm``: the same workers as the tasks of an ``sbatch`` job (``slurm.py``).

Each is registered under its ``runtime.launcher.kind`` with :func:`register_launcher`
and returns the TrainedModel the chief wrote.
"""

from __future__ import annotations

import contextvars
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from kerasflow.tasks import storage
from kerasflow.tasks._process.processes import die_with_parent
from kerasflow.tasks.failures import DeterministicFailure
from kerasflow.tasks.train.callbacks import PrefectProgress, standard_callbacks
from kerasflow.tasks.train.fit import fit_model, publish_run
from kerasflow.tasks.train.launch import cluster
from kerasflow.tasks.train.launch.events import replay_events
from kerasflow.tasks.train.launch.job import TrainingJob
from kerasflow.tasks.train.launch.worker import DETERMINISTIC_EXIT, DETERMINISTIC_MARK
from kerasflow.tasks.train.state import DurableBackup, TrainingState


class WorkerFailedError(RuntimeError):
    """A training worker exited with an error; transient (a retry resumes from the backup)."""


class WorkerDeterministicError(DeterministicFailure):
    """A worker failed in a way a retry repeats (NaN loss, bad config); its message is the worker's."""


def scratch_dir(job: TrainingJob) -> Path:
    """Private local folders of this training's processes (backups in progress)."""
    return storage.local_path(job.config.storage.root, job.state_url) / "scratch"


def progress_for(job: TrainingJob, logger: Any) -> PrefectProgress:
    config = job.config
    return PrefectProgress(
        logger=logger,
        epochs=config.training.epochs,
        description=f"training {config.model.name} ({config.model.family}) on {job.dataset.fingerprint}",
    )


class Launcher(NamedTuple):
    """How one ``runtime.launcher.kind`` runs a training job."""

    run: Callable[..., Any]  # (job, *, logger, lease) -> TrainedModel
    on_this_node: bool  # whether training uses this node's GPUs (the GPU slots held here)


LAUNCHERS: dict[str, Launcher] = {}


def register_launcher(kind: str, *, on_this_node: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``run(job, *, logger, lease)`` as the launcher of ``runtime.launcher.kind == kind``."""

    def register(run: Callable[..., Any]) -> Callable[..., Any]:
        LAUNCHERS[kind] = Launcher(run=run, on_this_node=on_this_node)
        return run

    return register


def launcher_for(kind: str) -> Launcher:
    # Launchers in modules of their own register when imported.
    from kerasflow.tasks.train.launch import slurm  # noqa: F401

    try:
        return LAUNCHERS[kind]
    except KeyError:
        raise ValueError(f"received runtime.launcher.kind={kind!r}, expected one of {sorted(LAUNCHERS)}") from None


def launch(job: TrainingJob, *, logger: Any, lease: Any) -> Any:
    """Run the training ``job`` with the configured launcher; the chief's TrainedModel."""
    return launcher_for(job.config.runtime.launcher.kind).run(job, logger=logger, lease=lease)


@register_launcher("in_process", on_this_node=True)
def in_process(job: TrainingJob, *, logger: Any, lease: Any):
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


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (held open together, so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def write_job(job: TrainingJob) -> Path:
    run_dir = storage.run_dir(job.config.storage.root, job.run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "job.json"
    path.write_text(job.model_dump_json(indent=2))
    return path


@register_launcher("local_processes", on_this_node=True)
def local_processes(job: TrainingJob, *, logger: Any, lease: Any):
    """N workers on loopback; the chief's events drive ``PrefectProgress`` here."""
    from kerasflow.tasks.refs import TrainedModel

    workers = job.config.runtime.launcher.workers
    run_dir = storage.run_dir(job.config.storage.root, job.run_id)
    job_path = write_job(job)
    logs_dir = run_dir / "workers"
    logs_dir.mkdir(parents=True, exist_ok=True)
    addresses = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    progress = progress_for(job, logger)
    processes: list[subprocess.Popen] = []
    for index in range(workers):
        env = {**os.environ, "TF_CONFIG": cluster.tf_config(addresses, index), "PYTHONUNBUFFERED": "1"}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # Appended to: a retry of the task runs the same workers again in the same run.
        stderr = open(logs_dir / f"worker-{index}.log", "ab")  # noqa: SIM115 - closed below
        gpus = job.config.runtime.launcher.gpus_per_worker
        if gpus:  # each worker its own GPUs, not all of them
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(index * gpus + g) for g in range(gpus))
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "kerasflow.tasks.train.launch.worker", os.fspath(job_path)],
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
                cwd=os.getcwd(),
                text=True,
                preexec_fn=die_with_parent,  # no orphan training beside the run that resumes it
            )
        )
        stderr.close()
    logger.info("started %d training workers on %s; their logs are in %s", workers, ", ".join(addresses), logs_dir)
    # The replay runs in the task's context (a copy), so its artifacts and logs belong to the task run.
    replay = contextvars.copy_context().run
    chief_lines = threading.Thread(
        target=replay, args=(replay_events, processes[0].stdout, progress, logger), daemon=True
    )
    chief_lines.start()
    for other in processes[1:]:
        threading.Thread(target=_drain, args=(other.stdout,), daemon=True).start()
    try:
        _wait_all(processes, job, lease=lease, logs_dir=logs_dir)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        chief_lines.join(timeout=5)
    result = run_dir / "result.json"
    return TrainedModel.model_validate_json(result.read_text())


# How long a worker may take to notice the dead peer and exit, beyond the heartbeat
# timeout. Unloaded, a chief exits 3 s after TensorFlow aborts its collectives; on a
# 2-core CI machine running other training beside it, kill to exit took over 20 s with a
# 5 s heartbeat timeout. Only a worker that truly hangs pays this wait.
EXIT_SECONDS = 60


def _wait_all(processes: list[subprocess.Popen], job: TrainingJob, *, lease: Any, logs_dir: Path) -> None:
    """Wait for every worker; on the first failure wait for the rest to fail too, then raise.

    The survivors' collectives fail on their own once TensorFlow's coordination service
    misses the dead peer's heartbeats for runtime.peer_timeout_seconds; given twice that
    and EXIT_SECONDS to exit, any still running are killed, and the error says which happened.
    """
    grace = 2 * job.config.runtime.peer_timeout_seconds + EXIT_SECONDS
    failed_at = 0.0
    failure = ""
    while True:
        codes = [p.poll() for p in processes]
        if all(code == 0 for code in codes):
            return
        if lease is not None:
            try:
                lease.check()  # lost or stale: another run may take the training over
            except Exception:
                for process in processes:
                    process.kill()
                raise
        if not failure:
            for index, code in enumerate(codes):
                if code == DETERMINISTIC_EXIT:
                    for process in processes:
                        process.kill()
                    raise WorkerDeterministicError(deterministic_message(logs_dir / f"worker-{index}.log"))
                if code not in (None, 0):
                    log = logs_dir / f"worker-{index}.log"
                    cause = f"killed by {signal.Signals(-code).name}" if code < 0 else last_error(log)
                    failure = (
                        f"training worker {index} of {len(processes)} exited with code {code}: {cause} (log: {log})"
                    )
                    failed_at = time.monotonic()
                    break
        if failure and all(code is not None for code in codes):
            raise WorkerFailedError(
                f"{failure}; the other workers stopped on their own; a retry resumes from the last published epoch"
            )
        if failure and time.monotonic() - failed_at > grace:
            raise WorkerFailedError(
                f"{failure}; the other workers were still running {grace:g}s later (runtime.peer_timeout_seconds="
                f"{job.config.runtime.peer_timeout_seconds:g}) and were killed; a retry resumes from the last "
                "published epoch"
            )
        time.sleep(0.2)


def deterministic_message(log: Path) -> str:
    text = log.read_text(errors="replace")
    return text[text.rindex(DETERMINISTIC_MARK) + len(DETERMINISTIC_MARK) :].strip()


def last_error(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    for line in reversed(lines):
        # TensorFlow's C++ start-up noise (no CUDA driver) says "error" too; skip it.
        if ("Error" in line or "error" in line) and "cuInit" not in line:
            return line.strip()[:500]
    return lines[-1].strip()[:500] if lines else "no output (killed?)"


def _drain(stream: Any) -> None:
    for _ in stream:
        pass


def publish_job(job: TrainingJob) -> str:
    """Write ``job.json`` into the run folder, uploaded when the root is remote; its path or URL."""
    root = job.config.storage.root
    job_path = write_job(job)
    if storage.is_local(root):
        return os.fspath(job_path)
    storage.upload_dir(job_path.parent, storage.run_url(root, job.run_id))
    return storage.join(storage.run_url(root, job.run_id), "job.json")


def chief_result(job: TrainingJob) -> Any:
    """The TrainedModel the chief wrote to ``result.json``, read from the storage root."""
    from kerasflow.tasks.refs import TrainedModel

    root = job.config.storage.root
    result_url = storage.join(storage.run_url(root, job.run_id), "result.json")
    if not storage.is_local(root):
        storage.local_path(root, result_url).unlink(missing_ok=True)  # an earlier attempt's, in the mirror
    return TrainedModel.model_validate_json(storage.fetch_file(root, result_url).read_text())


@register_launcher("kubernetes", on_this_node=False)
def on_kubernetes(job: TrainingJob, *, logger: Any, lease: Any):
    """Write the job next to the run, apply the Indexed Job, wait, read the chief's result."""
    from kerasflow.tasks.train.launch import kubernetes

    root = job.config.storage.root
    if storage.is_local(root):
        from kerasflow.tasks.config import ConfigError

        raise ConfigError(
            f"received runtime.launcher.kind='kubernetes' with storage.root={root!r}, expected a root every pod "
            "can reach, e.g. s3://bucket/kerasflow"
        )
    job_url = publish_job(job)
    manifests = kubernetes.render_manifests(job.config, job_url=job_url, run_id=job.run_id)
    kubernetes.apply_and_wait(manifests, timeout_seconds=7 * 24 * 3600, logger=logger)
    return chief_result(job)
