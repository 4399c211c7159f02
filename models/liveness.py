"""Whether the writer named by a small record is still at work, and a heartbeat that keeps it so.

A killed process never says it is done, so a claim, a lease or a hold cannot depend on
its holder cleaning up. Each record names its holder (host, pid, the process's start
time) and an expiry its holder pushes forward from a :class:`Heartbeat`. A record is
*live* while its expiry is ahead and, on the holder's own host, its process still runs
(a restart on the same machine need not wait out the expiry). A reused pid is told apart
by the process's start time.

Clocks: expiry compares wall clocks of different machines; keep them NTP-synced, and
keep expiries well above their skew.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["Heartbeat", "holder_fields", "is_live", "process_token"]

log = logging.getLogger(__name__)


def process_token(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux), so a reused pid is not taken for the holder.

    Args:
        pid: a process id on this host.

    Returns:
        Field 22 of ``/proc/<pid>/stat`` (clock ticks since boot), as text; None when it cannot be read
        (no such process, no ``/proc``).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: starttime, in clock ticks since boot


def alive_here(holder: Mapping[str, Any]) -> bool:
    """Whether the holder's process still runs; only meaningful for a holder on this host.

    Args:
        holder: a record naming its holder: ``pid`` and, when recorded, ``process_token``.
    """
    pid = int(holder.get("pid", 0) or 0)
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    token = holder.get("process_token")
    return token is None or token == process_token(pid)


def holder_fields(seconds: float, *, released: bool = False) -> dict[str, Any]:
    """The fields naming this process as a record's holder, live for ``seconds`` from now.

    Args:
        seconds: how long the record stays live without a renewal.
        released: mark the record released (``expires_at`` 0), for a holder letting go.

    Returns:
        ``host``, ``pid``, ``process_token``, ``renewed_at`` and ``expires_at`` (seconds since the
        epoch) and ``released``.
    """
    now = time.time()
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "process_token": process_token(os.getpid()),
        "renewed_at": now,
        "expires_at": 0.0 if released else now + seconds,
        "released": released,
    }


def is_live(record: Mapping[str, Any] | None, now: float | None = None) -> bool:
    """Whether ``record``'s holder still holds it: not released, not expired, its process alive here.

    Args:
        record: a claim, lease or hold carrying :func:`holder_fields`; None is not live.
        now: the time ``expires_at`` is compared with, in seconds since the epoch; None: the current time.
    """
    if record is None or record.get("released") or float(record.get("expires_at", 0) or 0) <= (now or time.time()):
        return False
    return record.get("host") != socket.gethostname() or alive_here(record)


class Heartbeat:
    """Calls ``renew()`` every ``interval`` seconds in a daemon thread until :meth:`stop`.

    A failed renewal is logged and tried again at the next beat; :meth:`silent_for` tells
    how long it has been since the last one that succeeded, so a writer can stop before
    committing when it may have been taken for dead. ``renew`` may raise ``StopIteration``
    to end the heartbeat (the record was taken over).

    Args:
        renew: called with no arguments at every beat.
        interval: seconds between beats.
        name: the thread's name, also in the warning a failed renewal logs.
    """

    def __init__(self, renew: Callable[[], None], *, interval: float, name: str = "kerasflow-heartbeat"):
        self._renew = renew
        self.interval = interval
        self._renewed = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=name, daemon=True)

    def start(self) -> Heartbeat:
        self._renewed = time.monotonic()
        self._thread.start()
        return self

    def silent_for(self) -> float:
        """Seconds since the last renewal that succeeded (or since the start)."""
        return time.monotonic() - self._renewed

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=max(self.interval, 1.0) * 2)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._renew()
                self._renewed = time.monotonic()
            except StopIteration:
                return
            except Exception as error:  # noqa: BLE001 - any failure to renew; silent_for() reports it
                log.warning("could not renew %s: %s", self._thread.name, error)

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
