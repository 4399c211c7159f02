"""Child processes that die with the process that started them.

A process SIGKILLed (``kill -9``, the OOM killer, a node drain) cannot stop its children.
Without help they run on, orphaned: training workers beside the run that resumes their
training, Prefect's embedded server holding its port and database forever. On Linux the
kernel delivers a signal to a child when the thread that forked it exits
(``PR_SET_PDEATHSIG``); pass :func:`die_with_parent` as ``preexec_fn`` of ``Popen`` from a
thread that lives as long as the child should (the main thread, or the launching task's).
"""

from __future__ import annotations

import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """In the child before exec: receive ``sig`` when the parent dies (Linux prctl; a no-op elsewhere)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)
    except (OSError, AttributeError):  # not Linux: callers keep their own checks (leases, health)
        pass
