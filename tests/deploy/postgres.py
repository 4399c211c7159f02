"""A throwaway PostgreSQL cluster for a test, as Prefect's server is run in production.

``initdb`` in a temporary folder, ``postgres`` on a free loopback port (127.0.0.1 only,
its socket in that folder too), a ``prefect`` role with a random password checked by
scram-sha-256 over TCP, and a ``prefect`` database: what docker-compose.yml's postgres
service gives the server. PostgreSQL refuses to run as root, so under root both run as
``nobody`` (``setpriv``, which execs: the process the test holds is the postmaster) in a
folder it owns. Durability is switched off (fsync, synchronous commit): the data lives
for one test. Readiness is polled with ``pg_isready`` up to
``KERASFLOW_SERVER_STARTUP_SECONDS``; everything is stopped and removed on exit, also
on failure.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kerasflow.flows.cli.embedded_server import DEFAULT_STARTUP_SECONDS, STARTUP_SECONDS, seconds_setting
from tests.deploy.processes import free_port, started

REQUIRED = "KERASFLOW_E2E_POSTGRES"
INSTALL = "apt-get install postgresql"
ROLE = DATABASE = "prefect"
UNPRIVILEGED = "nobody"


def postgres_bin() -> Path | None:
    """The folder of initdb, postgres and pg_isready: from PATH, else Debian's newest under /usr/lib/postgresql."""
    # Debian's package keeps them off PATH (/usr/lib/postgresql/<major>/bin); a symlink on PATH
    # resolves to that folder, where the matching postgres binary lives.
    candidates = [Path(found).resolve().parent] if (found := shutil.which("initdb")) else []
    debian = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(debian, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    for folder in candidates:
        if all((folder / tool).is_file() for tool in ("initdb", "postgres", "pg_isready", "createdb")):
            return folder
    return None


def postgres_or_skip() -> Path:
    """The binaries' folder; without them skip (fail when ``KERASFLOW_E2E_POSTGRES=required``)."""
    folder = postgres_bin()
    if folder is None:
        message = f"no PostgreSQL server binaries (initdb, postgres) on PATH or under /usr/lib/postgresql: {INSTALL}"
        if os.environ.get(REQUIRED) == "required":
            pytest.fail(f"{REQUIRED}=required but {message}")
        pytest.skip(message)
    return folder


@contextlib.contextmanager
def throwaway_postgres(bin_dir: Path, *, log: Path) -> Iterator[str]:
    """Yield the ``postgresql+asyncpg://`` URL of a new, empty ``prefect`` database; stop and remove it on exit."""
    folder = Path(tempfile.mkdtemp(prefix="kerasflow-postgres-"))
    try:
        as_owner = _owned_by_unprivileged_user(folder)
        data, sockets, password = folder / "data", folder / "sockets", secrets.token_urlsafe(16)
        sockets.mkdir()
        (folder / "password").write_text(password)
        if as_owner:
            for path in (sockets, folder / "password"):
                shutil.chown(path, user=UNPRIVILEGED)
        _check_call(
            [
                *as_owner, str(bin_dir / "initdb"), "--pgdata", str(data), "--username", ROLE,
                "--pwfile", str(folder / "password"), "--auth-host", "scram-sha-256", "--auth-local", "peer",
                "--encoding", "UTF8", "--no-locale", "--no-sync",
            ],
            what="initdb",
        )  # fmt: skip
        port = free_port()
        server = [
            *as_owner, str(bin_dir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
            "-k", str(sockets), "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        ]  # fmt: skip
        # SIGINT is PostgreSQL's fast shutdown: it ends client sessions instead of waiting for them.
        with started(server, env=_environment(), log=log, cwd=folder, stop=signal.SIGINT) as postmaster:
            _wait_ready(bin_dir, port, postmaster, log)
            _check_call(
                [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", ROLE, DATABASE],
                what="createdb",
                env=_environment() | {"PGPASSWORD": password},
            )
            yield f"postgresql+asyncpg://{ROLE}:{password}@127.0.0.1:{port}/{DATABASE}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _owned_by_unprivileged_user(folder: Path) -> list[str]:
    """The command prefix that runs PostgreSQL as the folder's owner: ``nobody`` under root, else nothing."""
    if os.geteuid() != 0:
        return []
    user = pwd.getpwnam(UNPRIVILEGED)
    os.chown(folder, user.pw_uid, user.pw_gid)
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"]


def _environment() -> dict:
    # Only what the binaries need: no PG* variable of the caller's may point them elsewhere.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}


def _check_call(command: list[str], *, what: str, env: dict | None = None) -> None:
    timeout = seconds_setting(STARTUP_SECONDS, DEFAULT_STARTUP_SECONDS)
    done = subprocess.run(command, env=env or _environment(), cwd="/", capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{what} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def _wait_ready(bin_dir: Path, port: int, postmaster: subprocess.Popen, log: Path) -> None:
    """Poll ``pg_isready`` until the server accepts connections, up to ``KERASFLOW_SERVER_STARTUP_SECONDS``."""
    timeout = seconds_setting(STARTUP_SECONDS, DEFAULT_STARTUP_SECONDS)
    deadline = time.monotonic() + timeout
    probe = [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-U", ROLE, "-t", "2"]
    while time.monotonic() < deadline:
        assert postmaster.poll() is None, f"postgres exited ({postmaster.returncode}):\n{log.read_text()[-3000:]}"
        if subprocess.run(probe, env=_environment(), timeout=30).returncode == 0:
            return
        time.sleep(0.2)
    raise TimeoutError(
        f"postgres not accepting connections after {timeout:.0f} s (raise {STARTUP_SECONDS}):\n"
        f"{log.read_text()[-3000:]}"
    )
