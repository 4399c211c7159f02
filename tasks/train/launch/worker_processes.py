"""Worker processes watched from their launcher: what their failures mean, and the chief's progress.

Shared by the launchers whose workers are processes (``local_processes``, ``slurm``): a
worker that exits with ``DETERMINISTIC_EXIT`` failed in a way a retry repeats, any other
failure is transient (a retry resumes from the backup), and the error names the worker
and the last error line of its log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kerasflow.tasks.failures import DeterministicFailure, KerasflowError
from kerasflow.tasks.train.callbacks import PrefectProgress
from kerasflow.tasks.train.launch.job import TrainingJob
from kerasflow.tasks.train.launch.worker import DETERMINISTIC_MARK


class WorkerFailedError(KerasflowError, RuntimeError):
    """A training worker exited with an error; transient (a retry resumes from the backup)."""


class WorkerDeterministicError(DeterministicFailure):
    """A worker failed in a way a retry repeats (NaN loss, bad config); its message is the worker's."""


def progress_for(job: TrainingJob, logger: Any) -> PrefectProgress:
    """The ``PrefectProgress`` that reports ``job``'s epochs.

    Args:
        job: the training job.
        logger: the train task's Prefect logger.
    """
    config = job.config
    return PrefectProgress(
        logger=logger,
        epochs=config.training.epochs,
        description=f"training {config.model.name} ({config.model.family}) on {job.dataset.fingerprint}",
    )


def deterministic_message(log: Path) -> str:
    """The message a worker printed after ``DETERMINISTIC_MARK`` in its ``log``, the last one."""
    text = log.read_text(errors="replace")
    return text[text.rindex(DETERMINISTIC_MARK) + len(DETERMINISTIC_MARK) :].strip()


def last_error(log: Path) -> str:
    """The last line of ``log`` that names an error, else its last line (at most 500 characters)."""
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    for line in reversed(lines):
        # TensorFlow's C++ start-up noise (no CUDA driver) says "error" too; skip it.
        if ("Error" in line or "error" in line) and "cuInit" not in line:
            return line.strip()[:500]
    return lines[-1].strip()[:500] if lines else "no output (killed?)"
