"""Which failures are worth a retry, and the one error hierarchy the steps raise from.

A transient fault (network, storage, a killed process) may pass on a second try; a
deterministic one (bad data, bad config, NaN loss, a refused model file, a rejected
gate) fails the same way every time, so retrying it only delays the message the user
needs. Every kerasflow exception derives from :class:`KerasflowError`; those of the
second kind from :class:`DeterministicFailure` (models/errors.py holds the roots, since
models/ raises them too). Every retrying task passes :func:`retry_unless_deterministic`
as its ``retry_condition_fn``.
"""

from __future__ import annotations

from typing import Any

from kerasflow.models.errors import ConfigError, DeterministicFailure, KerasflowError

__all__ = ["ConfigError", "DataValidationError", "DeterministicFailure", "KerasflowError", "retry_unless_deterministic"]


def retry_unless_deterministic(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry anything but a :class:`DeterministicFailure`.

    A bad config and a refused model file are deterministic too (loading the same bytes
    again refuses them again, and would triple the cost of a file built to exhaust memory).

    Args:
        task: the task (unused; Prefect passes it).
        task_run: the failed task run (unused; Prefect passes it).
        state: the failed run's state; its result re-raises the exception.

    Returns:
        False when the exception is a :class:`DeterministicFailure`, True otherwise.
    """
    try:
        state.result()
    except DeterministicFailure:
        return False
    except BaseException:  # noqa: BLE001 - any other failure is presumed transient
        return True
    return True


class DataValidationError(DeterministicFailure):
    """Data the model cannot learn from; the message names split, check, count and fix."""
