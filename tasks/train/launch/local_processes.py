"""The ``local_processes`` launcher: N worker processes on this machine, TF_CONFIG on loopback ports.

Each worker runs the multi-worker loop (``worker.py``). The chief's progress events are
replayed into the Prefect logger and progress artifact; the first worker to fail fails
the launch, and the others are stopped rather than left to hang.
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
from pathlib import Path
from typing import Any

from kerasflow.tasks import storage
from kerasflow.tasks._process.processes import die_with_parent
from kerasflow.tasks.refs import TrainedModel
from kerasflow.tasks.train import cluster
from kerasflow.tasks.train.launch import register_launcher
from kerasflow.tasks.train.launch.events import replay_events
from kerasflow.tasks.train.launch.job import TrainingJob, write_job
from kerasflow.tasks.train.launch.worker import DETERMINISTIC_EXIT
from kerasflow.tasks.train.launch.worker_processes import (
    WorkerDeterministicError,
    WorkerFailedError,
    deterministic_message,
    last_error,
    progress_for,
)


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


@register_launcher("local_processes", on_this_node=True)
def local_processes(job: TrainingJob, *, logger: Any, lease: Any):
    """N workers on loopback; the chief's events drive ``PrefectProgress`` here.

    Args:
        job: the training job; ``runtime.launcher.workers`` and ``gpus_per_worker`` size the workers.
        logger: the train task's Prefect logger.
        lease: the training's lease, checked while the workers run; None for none.

    Raises:
        WorkerDeterministicError: a worker failed in a way a retry repeats.
        WorkerFailedError: a worker exited with an error, or was killed.
        LeaseLostError: another run holds the training now.
    """

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


def _drain(stream: Any) -> None:
    for _ in stream:
        pass
