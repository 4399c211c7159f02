"""Processes an end-to-end test starts and stops: servers, workers, a database."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def started(
    command: list[str], *, env: dict, log: Path, cwd: Path = ROOT, stop: int = signal.SIGTERM
) -> Iterator[subprocess.Popen]:
    """Run ``command`` in a session of its own, output to ``log``; stop the whole session on exit."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            # The whole session: the worker's flow-run subprocesses too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, stop)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
