"""Which failures are worth a retry.

A transient fault (network, storage, a killed process) may pass on a second try; a
deterministic one (bad data, bad config, NaN loss, a rejected gate) fails the same way
every time, so retrying it only delays the message the user needs. Errors of the second
kind derive from :class:`DeterministicFailure`; every retrying task passes
:func:`retry_unless_deterministic` as its ``retry_condition_fn``.
"""

from __future__ import annotations

from typing import Any


class DeterministicFailure(Exception):
    """A failure that a retry cannot fix; its message names the cause and the fix."""


class ConfigError(ValueError):
    """A recipe, override or command line that cannot describe a valid run."""


def retry_unless_deterministic(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry anything but a DeterministicFailure, a bad config
    or a refused model file (loading the same bytes again refuses them again, and would
    triple the cost of a file built to exhaust memory)."""
    from kerasflow.models.io import ModelFileError

    try:
        state.result()
    except (DeterministicFailure, ConfigError, ModelFileError):
        return False
    except BaseException:  # noqa: BLE001 - any other failure is presumed transient
        return True
    return True


class DataValidationError(DeterministicFailure):
    """Data the model cannot learn from; the message names split, check, count and fix."""
