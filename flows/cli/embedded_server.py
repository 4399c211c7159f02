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

Its database is the storage root's, never Prefect's ``~/.prefect/prefect.db``: one SQLite
file written by the servers of two commands at once fails with "database is locked". A
command takes ``<root>/.prefect/prefect.db`` (a remote root's is in its local mirror,
``tasks/storage.cache_dir``) under an exclusive lock held while it runs; a second command
on the same root meanwhile, or one whose root cannot hold the folder, gets a database of its
own in a temporary folder, removed when its server stops. A fresh database costs the
server's migrations (a few seconds) once: a root's is kept for its next command. A database
the user configured (``PREFECT_SERVER_DATABASE_CONNECTION_URL`` and its parts) is used as is.

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
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from kerasflow.tasks._process.processes import die_with_parent

STARTUP_SECONDS = "KERASFLOW_SERVER_STARTUP_SECONDS"
SHUTDOWN_SECONDS = "KERASFLOW_SHUTDOWN_SECONDS"
DEFAULT_STARTUP_SECONDS = 600.0
DEFAULT_SHUTDOWN_SECONDS = 30.0
# Under the storage root (or its local mirror): the embedded server's database, its lock and its log.
DATABASE_FOLDER = ".prefect"
# Settings by which a user chose the server's database; then it is theirs, not the root's.
_CHOSEN_DATABASE = frozenset({"connection_url", "driver", "name", "host"})


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


class ServerDatabase:
    """Where an embedded server keeps its SQLite database and its log: its storage root's, or its own.

    The root's folder (``<root>/.prefect``, a remote root's in its local mirror) is claimed
    with an exclusive lock until :meth:`release` or the end of this process; when another
    command holds it, or the root cannot hold the folder (a file, a folder this user cannot
    write: the run's own check says so), the database is a new one in a temporary folder.

    Args:
        root: the storage root, a local folder or any fsspec URL; None: a temporary database.

    Attributes:
        folder: the folder of the database, its lock and the server's log.
        temporary: whether the folder is this command's own, removed by :meth:`release`.
    """

    def __init__(self, root: str | None) -> None:
        folder = _root_folder(root) if root else None
        self._lock = _claim(folder) if folder is not None else None
        self.temporary = self._lock is None
        if folder is None or self.temporary:
            folder = Path(tempfile.mkdtemp(prefix="kerasflow-prefect-"))
        self.folder = folder

    @property
    def path(self) -> Path:
        """The SQLite database file."""
        return self.folder / "prefect.db"

    @property
    def url(self) -> str:
        """The database's SQLAlchemy URL, as ``PREFECT_SERVER_DATABASE_CONNECTION_URL`` takes it."""
        return f"sqlite+aiosqlite:///{self.path}"

    def release(self) -> None:
        """Leave the root's database to the next command, or remove a temporary one with its folder."""
        if self._lock is not None:
            self._lock.close()  # closing the file releases its lock
            self._lock = None
        elif self.temporary:
            shutil.rmtree(self.folder, ignore_errors=True)


def _root_folder(root: str) -> Path:
    from kerasflow.tasks import storage

    return storage.cache_dir(root) / DATABASE_FOLDER


def _claim(folder: Path) -> IO[str] | None:
    """The lock file of ``folder``, open and locked exclusively; None when another holds it or it cannot be made."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = (folder / "prefect.db.lock").open("a")
    except OSError:
        return None
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        return None
    return lock


class EmbeddedServer:
    """A Prefect API server in a child process on a free loopback port, on its storage root's database.

    Args:
        root: the storage root whose database the server keeps (:class:`ServerDatabase`); None: a temporary one.
    """

    def __init__(self, root: str | None = None) -> None:
        import prefect
        from prefect.settings import get_current_settings

        self.port = _free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self._failed = False
        settings = get_current_settings()
        chosen = settings.server.database.model_fields_set & _CHOSEN_DATABASE
        self.database = None if chosen else ServerDatabase(root)
        # The server's own log (its background services print tracebacks, e.g. a busy SQLite
        # database) goes to a file, not between the command's progress and its one message.
        folder = self.database.folder if self.database is not None else Path(settings.home).expanduser()
        self.log_path = folder / "kerasflow-embedded-server.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            **settings.to_environment_variables(exclude_unset=True),
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        if self.database is not None:
            env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = self.database.url
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
                self._failed = True  # its log stays for the user to read
                raise RuntimeError(
                    f"Prefect's embedded server exited with code {self.process.returncode} while starting; "
                    f"set PREFECT_API_URL to a running server (`prefect server start`) or read {self.log_path}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.api_url}/health", timeout=5.0).status_code == 200:
                    return
            time.sleep(0.1)
        self._failed = True
        self.stop()
        raise RuntimeError(
            f"Prefect's embedded server did not answer within {timeout:.0f} s on {self.api_url}; "
            f"on a slow or loaded machine give it longer with {STARTUP_SECONDS}=<seconds> (now {timeout:.0f}), "
            "or set PREFECT_API_URL to a running server (`prefect server start`)"
        )

    def stop(self) -> None:
        """Ask the server to stop; it finishes its last requests on its own after we exit.

        A temporary database goes with it (the server holds its files open until it ends),
        unless the server failed and its log is what the user reads next. The root's stays
        locked until this process ends, so no other command's server opens it while this one stops.
        """
        if self.process.poll() is None:
            self.process.terminate()
        if self.database is not None and self.database.temporary and not self._failed:
            self.database.release()


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


def start_unless_configured(root: str | None) -> EmbeddedServer | None:
    """Start the embedded server now, on ``root``'s database, unless a server is configured or ephemeral mode is off.

    Args:
        root: the command's storage root (:class:`ServerDatabase`); None: a temporary database.
    """
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_ENABLED

    if configured_api_url() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return None
    return EmbeddedServer(root)
