"""Prefect's embedded server, started before TensorFlow is imported and stopped without waiting.

Without ``PREFECT_API_URL`` Prefect starts a temporary server the first time a flow
needs it and, at exit, waits for it to shut down. Both waits add to every
``kerasflow train`` on a laptop: about 4 s to start (measured here) while nothing else
happens, and about 2.4 s at exit. Started first, the server boots in its own process
while this one imports TensorFlow (about 4.5 s), and at exit it is told to stop without
being waited for. It is the same server Prefect would start: the same uvicorn command,
the same settings. Prefect's own ``SubprocessASGIServer`` run the same way (started in a
thread during the TensorFlow import) made the process 4.7 s slower, 18.2 s against
13.5 s (``bench/embedded_server.py``, docs/benchmarks.md): it imports the server
application into this process and waits for the server at exit.

Lifetime and limits:
- The server dies with the ``kerasflow`` process (``PR_SET_PDEATHSIG``, tasks/_process/processes.py),
  so a SIGKILLed run leaves no orphan server behind.
- Start-up waits on readiness, up to ``KERASFLOW_SERVER_STARTUP_SECONDS`` (default 600):
  a loaded machine makes a run slow, not failed; the error names the setting.
- At the end the server is stopped only after Prefect's log and event workers have sent
  what they hold (bounded by ``KERASFLOW_SHUTDOWN_SECONDS``, default 30), and the command
  arms :func:`exit_within` so no shutdown wait of Prefect's can hang the process for good.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from kerasflow.tasks._process.processes import die_with_parent

STARTUP_SECONDS = "KERASFLOW_SERVER_STARTUP_SECONDS"
SHUTDOWN_SECONDS = "KERASFLOW_SHUTDOWN_SECONDS"
DEFAULT_STARTUP_SECONDS = 600.0
DEFAULT_SHUTDOWN_SECONDS = 30.0


def seconds_setting(name: str, default: float) -> float:
    """A positive number of seconds from the environment variable ``name``, else ``default``.

    Args:
        name: the environment variable's name.
        default: the seconds returned when the variable is unset or blank.
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"received {name}={raw!r}, expected a number of seconds greater than 0")
    return value


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedServer:
    """A Prefect API server in a child process on a free loopback port."""

    def __init__(self) -> None:
        import prefect
        from prefect.settings import get_current_settings

        self.port = _free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        # The server's own log (its background services print tracebacks, e.g. a busy SQLite
        # database) goes to a file, not between the command's progress and its one message.
        settings = get_current_settings()
        self.log_path = Path(settings.home).expanduser() / "kerasflow-embedded-server.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            **settings.to_environment_variables(exclude_unset=True),
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the handle
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "uvicorn",
                    "--app-dir", str(Path(prefect.__file__).parent.parent),
                    "--factory", "prefect.server.api.server:create_app",
                    "--host", "127.0.0.1", "--port", str(self.port),
                    "--log-level", "error", "--lifespan", "on",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                # SIGKILL, not SIGTERM: an orphan must not outlive a parent killed with -9, and the
                # logs were drained before any orderly stop (SQLite survives a kill).
                preexec_fn=die_with_parent,
            )  # fmt: skip

    def wait_until_ready(self, timeout: float | None = None) -> None:
        """Block until the server answers its health check, up to ``KERASFLOW_SERVER_STARTUP_SECONDS``.

        Args:
            timeout: the most seconds to wait; None reads ``KERASFLOW_SERVER_STARTUP_SECONDS`` (default 600).
        """
        import httpx

        if timeout is None:
            timeout = seconds_setting(STARTUP_SECONDS, DEFAULT_STARTUP_SECONDS)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"Prefect's embedded server exited with code {self.process.returncode} while starting; "
                    f"set PREFECT_API_URL to a running server (`prefect server start`) or read {self.log_path}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.api_url}/health", timeout=5.0).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"Prefect's embedded server did not answer within {timeout:.0f} s on {self.api_url}; "
            f"on a slow or loaded machine give it longer with {STARTUP_SECONDS}=<seconds> (now {timeout:.0f}), "
            "or set PREFECT_API_URL to a running server (`prefect server start`)"
        )

    def stop(self) -> None:
        """Ask the server to stop; it finishes its last requests on its own after we exit."""
        if self.process.poll() is None:
            self.process.terminate()


def configured_api_url() -> str | None:
    """The Prefect server the user configured (environment or profile), if any."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


@contextlib.contextmanager
def prefect_api(server: EmbeddedServer | None) -> Iterator[None]:
    """Point Prefect at ``server`` (if any) for the duration of the block, then stop it."""
    if server is None:
        yield
        return
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

    try:
        server.wait_until_ready()
        # No UI link: Prefect logs "View at http://127.0.0.1:<port>/runs/..." for a server that is
        # gone by the time the command ends.
        with temporary_settings(updates={PREFECT_API_URL: server.api_url, PREFECT_UI_URL: ""}):
            try:
                yield
            finally:
                # While the server still answers: stopped first, the workers would retry
                # their last batches against a closed port (seconds, once 78 s).
                drain_prefect_workers(seconds_setting(SHUTDOWN_SECONDS, DEFAULT_SHUTDOWN_SECONDS))
    finally:
        server.stop()


def drain_prefect_workers(timeout: float) -> bool:
    """Send what Prefect's log and event workers hold, for at most ``timeout`` s; whether they finished."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    deadline = time.monotonic() + timeout
    finished = True
    for worker in (APILogWorker, EventsWorker):
        _, pending = worker.drain_all(timeout=max(0.0, deadline - time.monotonic()), at_exit=False)
        finished = finished and not pending
    return finished


def exit_within(seconds: float, code: int) -> None:
    """Arm a watchdog: if this process is still shutting down after ``seconds``, end it with ``code``.

    Prefect drains its workers again at interpreter exit and waits without a limit for a
    worker whose thread died (its done event is never set: a log thread killed by an
    error in Prefect's internal logger hung a run 9 minutes). A command line run must
    end; a daemon thread keeps running through that wait and ends the process.

    Args:
        seconds: how long the process may still take to shut down, in seconds.
        code: the exit code the process ends with when it is still running then.
    """

    def watchdog() -> None:
        time.sleep(seconds)
        with contextlib.suppress(Exception):
            sys.stderr.write(
                f"kerasflow: Prefect was still shutting down after {seconds:.0f} s ({SHUTDOWN_SECONDS}); exiting\n"
            )
            sys.stderr.flush()
            sys.stdout.flush()
        os._exit(code)

    threading.Thread(target=watchdog, name="kerasflow-exit-watchdog", daemon=True).start()


def start_unless_configured() -> EmbeddedServer | None:
    """Start the embedded server now, unless a server is configured or ephemeral mode is off."""
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_ENABLED

    if configured_api_url() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return None
    return EmbeddedServer()
