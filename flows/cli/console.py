"""What the ``kerasflow`` command shows on the terminal: progress and one message per failure.

Prefect echoes every failure on the console three times (the task's failed state, the
flow's exception with its traceback, the flow's failed state) before the command prints
its own one-line message naming the cause and the fix. The command keeps those records
off the terminal; the Prefect API still receives them whole, with their tracebacks, so
the UI and ``prefect flow-run logs`` show everything. ``kerasflow --debug`` shows all.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from types import TracebackType

_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


class FailureEchoFilter(logging.Filter):
    """Drops the run loggers' error records and tracebacks from the console handler only."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether the console shows ``record``; a record it shows loses its traceback.

        Args:
            record: a log record on its way to a Prefect console handler.

        Returns:
            False for a run logger's error record or "Finished in state Failed" line, True otherwise.
        """
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
    """Install :class:`FailureEchoFilter` on Prefect's console handlers, and one line per crashed Prefect thread.

    Idempotent. ``prefect._internal`` logs a crash of its own worker threads with a
    traceback on stderr (its ``debug`` handler), and the thread's exception then reaches
    :func:`threading.excepthook`, which prints it again.
    """
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in ("prefect", *_RUN_LOGGERS))]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler):
                _add_once(handler)
    for handler in logging.getLogger("prefect._internal").handlers:
        if isinstance(handler, logging.StreamHandler) and not any(
            isinstance(f, InternalCrashFilter) for f in handler.filters
        ):
            handler.addFilter(InternalCrashFilter())
    if not isinstance(threading.excepthook, PrefectThreadCrashHook):
        threading.excepthook = PrefectThreadCrashHook(threading.excepthook)


def _add_once(handler: logging.Handler) -> None:
    if not any(isinstance(f, FailureEchoFilter) for f in handler.filters):
        handler.addFilter(FailureEchoFilter())


class InternalCrashFilter(logging.Filter):
    """Drops ``prefect._internal``'s records of a crash (those with a traceback): the hook below reports it once."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether the console shows ``record``: only when it carries no traceback.

        Args:
            record: a log record of ``prefect._internal`` on its way to a stream handler.
        """
        return not record.exc_info


class PrefectThreadCrashHook:
    """``threading.excepthook`` that reports a crash of one of Prefect's own threads in one line.

    Under load Prefect's log worker thread has died at the end of a run (seen once in a
    few hundred CLI runs); the command's result is already printed by then, and a
    traceback from Prefect's internals after it reads as if the command had crashed.
    Every other thread's exception goes to the hook that was installed before.

    Args:
        previous: the ``threading.excepthook`` installed before; it handles every exception not raised in
            Prefect's own code, and ``SystemExit``.
    """

    def __init__(self, previous) -> None:
        self.previous = previous

    def __call__(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or not _raised_in_prefect(args.exc_traceback):
            self.previous(args)
            return
        name = args.thread.name if args.thread is not None else "a thread"
        # stderr may be closed at exit: then nothing is left to tell.
        with contextlib.suppress(Exception):
            sys.stderr.write(
                f"kerasflow: Prefect's {name} stopped ({args.exc_type.__name__}: {args.exc_value}); "
                "the run's last log lines may not have reached the Prefect API (--debug shows the traceback)\n"
            )


def _raised_in_prefect(traceback: TracebackType | None) -> bool:
    import prefect

    package = prefect.__path__[0]
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename.startswith(package):
            return True
        traceback = traceback.tb_next
    return False
