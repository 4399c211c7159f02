"""The embedded server's limits are settings, and the exit watchdog ends a process stuck shutting down."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kerasflow.flows.cli.embedded_server import SHUTDOWN_SECONDS, STARTUP_SECONDS, seconds_setting


def test_limits_come_from_the_environment_with_generous_defaults(monkeypatch):
    monkeypatch.delenv(STARTUP_SECONDS, raising=False)
    assert seconds_setting(STARTUP_SECONDS, 600.0) == 600.0
    monkeypatch.setenv(STARTUP_SECONDS, "1200")
    assert seconds_setting(STARTUP_SECONDS, 600.0) == 1200.0
    for bad in ("soon", "0", "-5"):
        monkeypatch.setenv(STARTUP_SECONDS, bad)
        with pytest.raises(ValueError, match=rf"received {STARTUP_SECONDS}='{bad}', expected a number of seconds"):
            seconds_setting(STARTUP_SECONDS, 600.0)


def test_the_watchdog_ends_a_process_whose_shutdown_waits_for_good():
    # A non-daemon thread that never ends holds interpreter exit, as Prefect's drain of a dead worker did.
    script = (
        "import threading, time\n"
        "from kerasflow.flows.cli.embedded_server import exit_within\n"
        "threading.Thread(target=time.sleep, args=(3600,)).start()\n"
        "exit_within(1.0, 3)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 3
    assert f"still shutting down after 1 s ({SHUTDOWN_SECONDS}); exiting" in result.stderr


def test_each_root_has_its_own_database_and_a_root_in_use_lends_it_to_no_second_server(tmp_path, monkeypatch):
    """Two `kerasflow train` at once never share a SQLite database ("database is locked")."""
    from kerasflow.flows.cli.embedded_server import ServerDatabase

    first, other = ServerDatabase(str(tmp_path / "a")), ServerDatabase(str(tmp_path / "b"))
    assert first.path == tmp_path / "a" / ".prefect" / "prefect.db" and not first.temporary
    assert other.path == tmp_path / "b" / ".prefect" / "prefect.db" and not other.temporary
    assert first.url == f"sqlite+aiosqlite:///{first.path}"

    while_in_use = ServerDatabase(str(tmp_path / "a"))  # a second job on the same root at the same time
    assert while_in_use.temporary and tmp_path not in while_in_use.path.parents
    while_in_use.release()
    assert not while_in_use.path.parent.exists(), "a temporary database goes with its server"
    first.release()
    again = ServerDatabase(str(tmp_path / "a"))
    assert again.path == first.path and not again.temporary
    again.release()
    other.release()

    monkeypatch.setenv("KERASFLOW_CACHE", str(tmp_path / "cache"))
    remote = ServerDatabase("s3://bucket/kerasflow")  # in the root's local mirror (tasks/storage.cache_dir)
    assert remote.path.parent.parent.parent == tmp_path / "cache" and not remote.temporary
    remote.release()

    (tmp_path / "notes").write_text("notes")  # a root that cannot hold one: the run's own check says why
    refused = ServerDatabase(str(tmp_path / "notes"))
    assert refused.temporary and (tmp_path / "notes").read_text() == "notes"
    refused.release()
