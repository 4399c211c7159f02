"""The root of every exception kerasflow raises, and the mark of those a retry cannot fix.

Every kerasflow exception derives from :class:`KerasflowError`, so a team's code can catch
kerasflow's failures as one. Those a retry cannot fix (bad data, a bad recipe, a refused
model file, a NaN loss, a gate rejection) derive from :class:`DeterministicFailure`: the
steps' retry condition is that one ``isinstance`` check (tasks/failures.py). The others
are transient (storage out of reach, a killed worker) and retried with backoff. Each
keeps the built-in base it had (``ValueError``, ``OSError``, ``RuntimeError``), so code
that caught those still does.

This module lives in models/ because models/ raises them too and imports nothing of
tasks/; tasks/failures.py is where the steps import them from.
"""

from __future__ import annotations

__all__ = ["ConfigError", "DeterministicFailure", "KerasflowError", "ModelFileError"]


class KerasflowError(Exception):
    """The root of every exception kerasflow raises."""


class DeterministicFailure(KerasflowError):
    """A failure that a retry cannot fix; its message names the cause and the fix."""


class ConfigError(DeterministicFailure, ValueError):
    """A recipe, override or command line that cannot describe a valid run (exit 2)."""


class ModelFileError(DeterministicFailure, ValueError):
    """A model file kerasflow will not load; loading it again cannot help, so it is never retried."""
