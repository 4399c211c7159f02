"""What the ``kerasflow`` command shows on the terminal: progress and one message per failure.

Prefect echoes every failure on the console three times (the task's failed state, the
flow's exception with its traceback, the flow's failed state) before the command prints
its own one-line message naming the cause and the fix. The command keeps those records
off the terminal; the Prefect API still receives them whole, with their tracebacks, so
the UI and ``prefect flow-run logs`` show everything. ``kerasflow --debug`` shows all.
"""

from __future__ import annotations

import logging

_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


class FailureEchoFilter(logging.Filter):
    """Drops the run loggers' error records and tracebacks from the console handler only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(_RUN_LOGGERS) and (
            record.levelno >= logging.ERROR or record.getMessage().startswith("Finished in state Failed")
        ):
            return False
        if record.exc_info:
            # The API handler, which runs before the console's (it sits on the run logger
            # itself), has already taken the traceback; the terminal gets the message alone.
            record.exc_info, record.exc_text = None, None
        return True


def quiet_failures() -> None:
    """Install :class:`FailureEchoFilter` on Prefect's console handlers (idempotent)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in ("prefect", *_RUN_LOGGERS))]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and not any(
                isinstance(f, FailureEchoFilter) for f in handler.filters
            ):
                handler.addFilter(FailureEchoFilter())
