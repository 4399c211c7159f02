"""Prefect's embedded server, started before TensorFlow is imported and stopped without waiting.

Without ``PREFECT_API_URL`` Prefect starts a temporary server the first time a flow
needs it and, at exit, waits for it to shut down. Both waits add to every
``kerasflow train`` on a laptop: about 4 s to start (measured here) while nothing else
happens, and about 2.4 s at exit. Started first, the server boots in its own process
while this one imports TensorFlow (about 4.5 s), and at exit it is told to stop without
being waited for. It is the same server Prefect would start: the same uvicorn command,
the same settings.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path


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
            )  # fmt: skip

    def wait_until_ready(self, timeout: float = 60.0) -> None:
        """Block until the server answers its health check."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"Prefect's embedded server exited with code {self.process.returncode} while starting; "
                    "set PREFECT_API_URL to a running server (`prefect server start`) or read {self.log_path}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.api_url}/health", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Prefect's embedded server did not answer within {timeout:.0f} s on {self.api_url}")

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
    from prefect.settings import PREFECT_API_URL, temporary_settings

    try:
        server.wait_until_ready()
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield
    finally:
        server.stop()


def start_unless_configured() -> EmbeddedServer | None:
    """Start the embedded server now, unless a server is configured or ephemeral mode is off."""
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_ENABLED

    if configured_api_url() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return None
    return EmbeddedServer()
