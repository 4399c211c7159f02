"""Real kills after training: `kerasflow train` SIGKILLed at a chosen step; the rerun does only what is left.

The killed process is the real command. It is started through a small launcher that
replaces one step of the flow with a SIGKILL of the process itself, so the kill lands
exactly where the test says (the first instant of that step), whatever the machine's speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kerasflow.models.registry import ModelRegistry
from tests.flows.cli.test_cli import run
from tests.flows.helpers import THREE_EPOCHS

pytestmark = pytest.mark.usefixtures("prefect_server")


# Runs `kerasflow train ARGS` with the flow's step STEP replaced by a SIGKILL of this process.
# Before dying it writes the pids of its child processes (the embedded server) to CHILDREN.
LAUNCHER = """
import os, signal, sys
from pathlib import Path

import kerasflow.flows.train as flow_module

step, children, *args = sys.argv[1:]

def killed(*_, **__):
    me = os.getpid()
    pids = []
    for task in Path(f"/proc/{me}/task").iterdir():
        try:
            pids += (task / "children").read_text().split()
        except FileNotFoundError:  # a thread that ended between the listing and the read
            continue
    Path(children).write_text(" ".join(pids))
    print(f"killing myself at {step}", flush=True)
    os.kill(me, signal.SIGKILL)

setattr(flow_module, step, killed)
from kerasflow.flows.cli import main
sys.argv = ["kerasflow", "train", *args]
main()
"""


def kill_at(step: str, *args: str, tmp_path: Path, embedded: bool = False) -> tuple[str, list[int]]:
    """Run `kerasflow train` until the flow reaches ``step``, where it SIGKILLs itself; (output, child pids)."""
    from prefect.settings import PREFECT_API_URL

    children = tmp_path / f"children-{step}"
    env = dict(os.environ)
    if embedded:  # the command starts its own server, as on a laptop
        env.pop("PREFECT_API_URL", None)
        env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    else:
        env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    result = subprocess.run(
        [sys.executable, "-c", LAUNCHER, step, str(children), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    out = result.stdout + result.stderr
    assert result.returncode == -9 and f"killing myself at {step}" in out, out
    return out, [int(p) for p in children.read_text().split()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def trained_records(root: Path) -> list[Path]:
    return list((root / "training").glob("digits-*/trained.json"))


def test_killed_during_evaluation_the_rerun_does_not_train_again_and_no_server_is_orphaned(root, tmp_path):
    out, children = kill_at("evaluate", *THREE_EPOCHS, tmp_path=tmp_path, embedded=True)
    assert "epoch 3/3" in out
    assert children, "the embedded server ran as a child of the command"
    deadline = time.monotonic() + 120  # the kernel signals at once; a loaded machine only delays the reaping
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in children), f"orphaned: {children}"
    [record] = trained_records(root)
    trained = json.loads(record.read_text())
    assert not list((root / "training").glob("*/backup")), "the backup gave way to the record"

    code, out = run("train", *THREE_EPOCHS)

    assert code == 0, out
    assert f"already finished in run {trained['run_id']} (3 epoch(s)); reusing its model" in out
    assert "epoch 1/3" not in out, "the rerun trained again"
    registry = ModelRegistry(str(root / "registry"))
    assert [v["version"] for v in registry.versions("digits")] == [1]
    assert registry.alias_target("digits", "production") == 1
    assert registry.get("digits", 1)["run_id"] == trained["run_id"]
    assert not trained_records(root), "promoted: the record is cleared"

    code, out = run("train", *THREE_EPOCHS)
    assert code == 0 and "data and training definition unchanged since digits v1" in out, out


def test_killed_between_register_and_promote_the_rerun_promotes_that_version(root, tmp_path):
    out, _ = kill_at("promote", *THREE_EPOCHS, tmp_path=tmp_path)
    assert "registered digits v1 (registered)" in out
    registry = ModelRegistry(str(root / "registry"))
    assert [v["version"] for v in registry.versions("digits")] == [1]
    assert registry.alias_target("digits", "production") is None
    assert trained_records(root)

    code, out = run("train", *THREE_EPOCHS)

    assert code == 0, out
    assert "reusing its model" in out and "epoch 1/3" not in out, out
    assert "digits v1 promoted to 'production' (first promotion)" in out
    assert [v["version"] for v in registry.versions("digits")] == [1], "no v2"
    assert registry.alias_target("digits", "production") == 1
    assert not trained_records(root)


def test_once_promoted_the_same_training_key_trains_again(root):
    code, out = run("train", *THREE_EPOCHS)
    assert code == 0, out
    assert not trained_records(root)
    code, out = run("train", *THREE_EPOCHS, "--force")
    assert code == 0, out
    assert "reusing its model" not in out and "epoch 3/3" in out
    assert ModelRegistry(str(root / "registry")).alias_target("digits", "production") == 2
