"""TensorFlow's pre-absl start-up lines are dropped from the terminal; nothing else is."""

from __future__ import annotations

import os
import subprocess
import sys

from kerasflow.flows.cli import tensorflow_start
from kerasflow.flows.cli.tensorflow_start import STARTUP_NOISE, import_tensorflow

SCRIPT = (
    "import os, sys\n"
    "from kerasflow.flows.cli.tensorflow_start import import_tensorflow\n"
    "import_tensorflow(quiet=sys.argv[1] == 'quiet')\n"
    "os.write(2, b'after the import\\n')\n"
)


def start(mode: str) -> list[bytes]:
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], env=env, capture_output=True, timeout=600, check=True)
    return done.stderr.splitlines()


def test_a_fresh_process_imports_tensorflow_without_its_startup_lines():
    loud, quiet = start("loud"), start("quiet")
    assert any(STARTUP_NOISE.search(line) for line in loud), f"nothing to filter on this machine: {loud}"
    assert not any(STARTUP_NOISE.search(line) for line in quiet), quiet
    assert quiet[-1] == b"after the import", "the real stderr is back after the import"


def test_every_other_line_written_during_the_import_reaches_stderr(capfd, monkeypatch):
    def load():
        os.write(2, b"I0000 00:00:1.0 1 cudart_stub.cc:31] Could not find cuda drivers on your machine\n")
        os.write(2, b"E0000 00:00:1.0 1 some_op.cc:7] a real problem\npartial line without end")
        print("from Python", file=sys.stderr)

    monkeypatch.setattr(tensorflow_start, "_load", load)
    import_tensorflow()
    err = capfd.readouterr().err
    assert "Could not find cuda drivers" not in err
    assert "a real problem\n" in err and "partial line without end" in err and "from Python" in err
