"""The ``slurm`` launcher: multi-node training as one ``sbatch`` job, followed to its end.

:func:`render_script` fills ``templates/training-job.sbatch`` (package data beside this
module) from a run's config: ``launcher.nodes`` nodes, ``workers / nodes`` tasks each,
``--gpus-per-task`` when the workers want GPUs, and the time limit, partition and
account when given. ``srun`` starts one worker per task; each builds its cluster with
TensorFlow's ``SlurmClusterResolver`` (tasks/train/strategy.py). :func:`on_slurm` submits
the script, replays the chief's output file into the task's logs and progress artifact
while it polls the job's state, and turns a job that did not complete (failed, cancelled,
timed out, node lost) into a task failure: a retry submits again and resumes from the
last published epoch. A job this process stops waiting for (lost lease, cancelled task)
is cancelled with ``scancel``, so no training outlives its run.

Secrets never enter the script: ``sbatch --export=ALL`` hands the job the submitting
task's environment (storage credentials included), which Slurm keeps with the job's state
readable only by Slurm's user, while scripts are shown by ``scontrol write batch_script``.
The run folder (a local root, or ``KERASFLOW_CACHE`` for an S3 root) must be on a
filesystem the nodes share, as Slurm clusters' home and scratch are: the tasks' output
files are written there and read here.
"""

from __future__ import annotations

import contextvars
import os
import re
import shlex
import string
import subprocess
import sys
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from kerasflow.tasks import storage
from kerasflow.tasks.config import ConfigError, TrainConfig, refuse_credentials
from kerasflow.tasks.train.launch import register_launcher
from kerasflow.tasks.train.launch.events import follow_file, replay_events
from kerasflow.tasks.train.launch.job import TrainingJob, chief_result, publish_job, resource_name
from kerasflow.tasks.train.launch.worker import DETERMINISTIC_MARK
from kerasflow.tasks.train.launch.worker_processes import (
    WorkerDeterministicError,
    WorkerFailedError,
    deterministic_message,
    last_error,
    progress_for,
)

__all__ = ["TEMPLATE", "JobStatus", "job_status", "on_slurm", "render_script"]

# Package data: the same file in a checkout, an editable install and a wheel.
TEMPLATE = resources.files(__package__).joinpath("templates", "training-job.sbatch")

# Job states after which a job never runs again (squeue(1) "JOB STATE CODES").
_SUCCEEDED = "COMPLETED"
_ENDED = {"FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}
# An #SBATCH line ends at white space: a path there must have none.
_NO_SPACE = re.compile(r"^\S+$")
# Consecutive failed state queries tolerated (slurmctld busy or restarting) before giving up.
_QUERY_RETRIES = 30


class JobStatus(NamedTuple):
    """A Slurm job's state, as ``scontrol`` or ``sacct`` report it.

    Attributes:
        state: PENDING, RUNNING, COMPLETED, CANCELLED...
        exit_code: ``<code>:<signal>`` of the batch script.
        reason: why it waits or ended, per Slurm (``None`` when running).
        nodes: its node list, once it has nodes.
    """
    state: str  # PENDING, RUNNING, COMPLETED, CANCELLED, ...
    exit_code: str  # "<code>:<signal>" of the batch script
    reason: str  # why it waits or ended, per Slurm ("None" when running)
    nodes: str  # its node list, once it has nodes


def render_script(config: TrainConfig, *, job_location: str, run_id: str, logs_dir: Path, workdir: str) -> str:
    """The batch script that trains ``config``: one ``srun`` task per worker.

    Args:
        config: the run's config; ``config.runtime.launcher`` sizes and places the job.
        job_location: path or URL of the run's ``job.json``, the workers' argument.
        run_id: the run id (its short form names the job).
        logs_dir: folder on a filesystem every node shares for the tasks' output files.
        workdir: the job's working directory.

    Raises:
        ConfigError: a path or URL that cannot stand in the script.
    """
    launcher = config.runtime.launcher
    try:
        refuse_credentials(job_location)  # the script is stored by slurmctld and shown to operators
    except ValueError as error:
        raise ConfigError(str(error)) from None
    for what, path in (("the run folder", os.fspath(logs_dir)), ("the working directory", workdir)):
        if not _NO_SPACE.match(path):
            raise ConfigError(f"received {what} {path!r}, expected a path without white space (an #SBATCH value)")
    values: dict[str, object | None] = {
        "name": resource_name(config.model.name, run_id).replace("train-", "kerasflow-", 1),
        "nodes": launcher.nodes,
        "tasks_per_node": launcher.tasks_per_node,
        "gpus_per_task": launcher.gpus_per_worker or None,
        "time_limit": launcher.time_limit,
        "partition": launcher.partition,
        "account": launcher.account,
        "batch_log": logs_dir / "slurm-%j-batch.log",
        "workdir": workdir,
        "worker_stdout": shlex.quote(os.fspath(logs_dir / "slurm-%j-worker-%t.out")),
        "worker_stderr": shlex.quote(os.fspath(logs_dir / "slurm-%j-worker-%t.log")),
        "python": shlex.quote(launcher.python or sys.executable),
        "job_location": shlex.quote(job_location),
    }
    unset = {f"${{{key}}}" for key, value in values.items() if value is None}
    # Unset options leave their line out, so Slurm's defaults apply (the partition's time limit...).
    lines = [line for line in template_text().splitlines(keepends=True) if not any(k in line for k in unset)]
    return string.Template("".join(lines)).substitute({k: str(v) for k, v in values.items() if v is not None})


def template_text() -> str:
    """The unrendered batch script, ``templates/training-job.sbatch`` of this package."""
    return TEMPLATE.read_text()


@register_launcher("slurm", on_this_node=False)
def on_slurm(job: TrainingJob, *, logger: Any, lease: Any):
    """Submit the training as a batch job, follow it to its end, read the chief's result.

    Args:
        job: the training job.
        logger: the train task's Prefect logger.
        lease: the training's lease, checked while the job runs; None for none.

    Raises:
        ConfigError: the script cannot be rendered, or ``sbatch`` refused it.
        WorkerDeterministicError: a worker failed in a way a retry repeats.
        WorkerFailedError: the job did not complete, or its state could not be read.
        LeaseLostError: another run holds the training now.
    """
    launcher = job.config.runtime.launcher
    job_location = publish_job(job)
    run_dir = storage.run_dir(job.config.storage.root, job.run_id)
    logs_dir = run_dir / "workers"
    logs_dir.mkdir(parents=True, exist_ok=True)
    script = render_script(
        job.config, job_location=job_location, run_id=job.run_id, logs_dir=logs_dir, workdir=os.getcwd()
    )
    script_path = run_dir / "training-job.sbatch"
    script_path.write_text(script)
    job_id = _submit(script_path)
    submitted = time.monotonic()
    logger.info(
        "submitted Slurm job %s: %d node(s) x %d task(s); its tasks' logs are %s/slurm-%s-worker-*.log",
        job_id,
        launcher.nodes,
        launcher.tasks_per_node,
        logs_dir,
        job_id,
    )
    done = threading.Event()
    chief_lines = follow_file(logs_dir / f"slurm-{job_id}-worker-0.out", done=done)
    # The replay runs in the task's context (a copy), so its artifacts and logs belong to the task run.
    replay = contextvars.copy_context().run
    reader = threading.Thread(
        target=replay, args=(replay_events, chief_lines, progress_for(job, logger), logger), daemon=True
    )
    reader.start()
    finished = False
    try:
        status = _wait(job_id, poll_seconds=launcher.poll_seconds, lease=lease, logger=logger, submitted=submitted)
        finished = True
    finally:
        if not finished:  # lost lease, cancelled or interrupted task: free the nodes now
            subprocess.run(["scancel", job_id], capture_output=True, timeout=120, check=False)
            logger.warning("cancelled Slurm job %s", job_id)
        done.set()
        reader.join(timeout=30)
    if status.state != _SUCCEEDED:
        _raise_failure(job_id, status, logs_dir)
    return chief_result(job)


def _submit(script: Path) -> str:
    # TF_CONFIG of the submitting process would name the wrong cluster to every task.
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    done = subprocess.run(
        ["sbatch", "--parsable", "--export=ALL", os.fspath(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        # Refused at submission (unknown partition or account, limits): the same script fails again.
        raise ConfigError(f"sbatch refused the training job {script}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip().split(";")[0]


def _wait(job_id: str, *, poll_seconds: float, lease: Any, logger: Any, submitted: float) -> JobStatus:
    """Poll the job until it ends; log each change of state (and the time it spent queued)."""
    last, failures = None, 0
    while True:
        if lease is not None:
            lease.check()  # lost or stale: another run may take the training over
        try:
            status = job_status(job_id)
            failures = 0
        except RuntimeError as error:
            failures += 1
            if failures > _QUERY_RETRIES:
                raise WorkerFailedError(f"{error}; a retry resumes from the last published epoch") from None
            logger.warning("could not read Slurm job %s (%d/%d): %s", job_id, failures, _QUERY_RETRIES, error)
            time.sleep(poll_seconds)
            continue
        if last is None or status.state != last.state:
            queued = f" after {time.monotonic() - submitted:.1f}s in the queue" if status.state == "RUNNING" else ""
            logger.info(
                "Slurm job %s %s (%s)%s on %s",
                job_id,
                status.state,
                status.reason,
                queued,
                status.nodes or "no nodes yet",
            )
            last = status
        if status.state == _SUCCEEDED or status.state in _ENDED:
            return status
        time.sleep(poll_seconds)


def job_status(job_id: str) -> JobStatus:
    """The job's state from slurmctld, or from accounting once slurmctld forgot it (MinJobAge)."""
    shown = subprocess.run(
        ["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=60, check=False
    )
    if shown.returncode == 0 and shown.stdout.strip():
        fields = dict(token.split("=", 1) for token in shown.stdout.split() if "=" in token)
        return JobStatus(
            fields.get("JobState", "UNKNOWN"),
            fields.get("ExitCode", "0:0"),
            fields.get("Reason", ""),
            "" if fields.get("NodeList") in (None, "(null)") else fields["NodeList"],
        )
    accounted = subprocess.run(
        ["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State,ExitCode,NodeList"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    rows = [row.split("|") for row in accounted.stdout.splitlines() if row.count("|") == 2]
    if accounted.returncode == 0 and rows:
        state, exit_code, nodes = rows[0]
        return JobStatus(state.split()[0], exit_code, "from accounting", nodes)  # "CANCELLED by 0"
    raise RuntimeError(f"cannot read Slurm job {job_id}: {shown.stderr.strip()} {accounted.stderr.strip()}".strip())


def _raise_failure(job_id: str, status: JobStatus, logs_dir: Path) -> None:
    """A worker's deterministic failure as such; anything else (kill, cancel, timeout) as transient."""
    logs = sorted(logs_dir.glob(f"slurm-{job_id}-worker-*.log"))
    for log in logs:
        if DETERMINISTIC_MARK in log.read_text(errors="replace"):
            raise WorkerDeterministicError(deterministic_message(log))
    causes = [f"{log.name}: {last_error(log)}" for log in logs]
    batch_log = logs_dir / f"slurm-{job_id}-batch.log"
    if not causes and batch_log.exists():
        causes.append(f"{batch_log.name}: {last_error(batch_log)}")
    raise WorkerFailedError(
        f"Slurm job {job_id} ended {status.state} (exit code {status.exit_code}, reason {status.reason}); "
        f"{'; '.join(causes) or 'no task started'} (logs: {logs_dir}); a retry resumes from the last published epoch"
    )
