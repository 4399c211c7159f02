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
