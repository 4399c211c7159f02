"""The command ends after its exit handlers without the interpreter's teardown, with its own exit code."""

import os
import subprocess
import sys

import pytest

SCRIPT = """
import atexit, sys, tempfile
from pathlib import Path
from kerasflow.tasks._process import fast_exit

fast_exit.arm()
marker = Path(sys.argv[2])

class Teardown:
    def __del__(self):  # runs only when the interpreter tears its modules down
        marker.with_suffix(".teardown").write_text("torn down")

kept_alive = Teardown()
left_open = tempfile.TemporaryDirectory()  # never closed: its finalizer must still remove it
marker.with_suffix(".tmp").write_text(left_open.name)
atexit.register(lambda: marker.with_suffix(".handler").write_text("ran"))  # like Prefect's drains

def app():
    print("result line", end="")  # no newline, no flush: buffered when stdout is a pipe
    exit_with = sys.argv[1]
    sys.exit(None if exit_with == "none" else int(exit_with) if exit_with.isdigit() else exit_with)

fast_exit.run(app)
"""


@pytest.mark.parametrize(("exit_with", "code"), [("none", 0), ("3", 3), ("2", 2), ("a message", 1)])
def test_the_command_keeps_its_exit_code_output_and_handlers_and_skips_the_teardown(tmp_path, exit_with, code):
    marker = tmp_path / "marker"
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, exit_with, str(marker)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == code, result.stderr
    assert result.stdout == "result line"
    if exit_with == "a message":
        assert result.stderr.strip() == "a message"
    assert marker.with_suffix(".handler").read_text() == "ran", "an exit handler registered later still runs"
    temporary = marker.with_suffix(".tmp").read_text()
    assert not os.path.exists(temporary), "a temporary folder left open is still removed"
    assert not marker.with_suffix(".teardown").exists(), "the interpreter's teardown was skipped"


def test_an_error_that_is_not_an_exit_ends_the_ordinary_way(tmp_path):
    script = SCRIPT.replace("    exit_with = sys.argv[1]\n", '    raise RuntimeError("a bug")\n')
    marker = tmp_path / "marker"
    result = subprocess.run(
        [sys.executable, "-c", script, "none", str(marker)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 1 and "RuntimeError: a bug" in result.stderr
    assert marker.with_suffix(".teardown").read_text() == "torn down"
