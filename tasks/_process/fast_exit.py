"""A kerasflow process ends as soon as its last exit handler has run, without the interpreter's teardown.

After a command has finished (its result printed, its threads joined, Prefect's log and
event workers drained by the exit handlers Prefect registers), Python still finalizes
every module it loaded and TensorFlow's C++ runtime tears itself down: 2.0 s per
``kerasflow train`` measured here, against 0.1 s without (bench/overhead.py counts it
in the command's wall time). Nothing of that teardown is the command's work: files are
closed by the ``with`` blocks that opened them, and the handlers that need the end of
the process (Prefect's drains, logging's flush, temporary folders' finalizers) run first.

:func:`arm` registers the last exit handler (exit handlers run last-registered first),
so it is called before anything that registers one is imported; :func:`run` runs the
command and records the exit code it leaves with (flows/cli.main, tasks/train/worker).
An exception that is not an exit (a bug's traceback) ends the process the ordinary way.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import weakref
from collections.abc import Callable

_EXIT_CODE: list[int] = []
# Whether weakref.finalize's exit handler (temporary folders' cleanup) was registered
# before ours, so would run after it: then ours runs it first.
_FINALIZERS_REGISTERED_BEFORE = [False]


def arm() -> None:
    """Register the command's last exit handler; call before importing anything heavy."""
    _FINALIZERS_REGISTERED_BEFORE[0] = bool(getattr(weakref.finalize, "_registered_with_atexit", False))
    atexit.register(_exit_now)


def leaving_with(code: object) -> None:
    """Record the code of the ``SystemExit`` the command ends with (None: 0; a message: 1, as Python does)."""
    _EXIT_CODE[:] = [code if isinstance(code, int) else 0 if code is None else 1]


def _exit_now() -> None:
    if not _EXIT_CODE:
        return
    if _FINALIZERS_REGISTERED_BEFORE[0]:
        run_finalizers = getattr(weakref.finalize, "_exitfunc", None)
        if run_finalizers is not None:
            run_finalizers()
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed, or a broken pipe: nothing to write to
            stream.flush()
    os._exit(_EXIT_CODE[0])


def run(app: Callable[[], object]) -> None:
    """Run the Typer ``app`` and record the code of the exit it ends with."""
    try:
        app()
    except SystemExit as done:
        leaving_with(done.code)
        raise
