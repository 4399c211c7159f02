"""Real kills: `kerasflow train` SIGKILLed during epoch 3 of 6 resumes at epoch 3 when run again; --fresh."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import keras
import pytest

import kerasflow.tasks.train.launch.in_process as in_process
from kerasflow.flows.recipes import load_recipe
from kerasflow.flows.train import train_flow
from kerasflow.models.registry import ModelRegistry
from kerasflow.tasks.config import TrainConfig
from kerasflow.tasks.failures import DeterministicFailure
from tests.flows.cli.test_cli import run

pytestmark = pytest.mark.usefixtures("prefect_server")

# Batches of 8 make an epoch of digits take about a second here: room to kill inside one.
SIX_EPOCHS = [
    "--set", "training.epochs=6",
    "--set", "training.batch_size=8",
    "--set", "training.early_stopping.enabled=false",
    "--set", "gate.value.accuracy.min=0.2",
    # Not the subject: the per-class recall gate of 0.85 on 20 test rows a digit is a seed's luck at batch 8.
    "--set", "gate.per_class.recall.min=0.2",
]  # fmt: skip


def kill_during_epoch(epoch: int, *args: str, epochs: int = 6) -> str:
    """Start `kerasflow train`, SIGKILL it as soon as epoch ``epoch - 1`` is logged; its output."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    process = subprocess.Popen(
        [sys.executable, "-m", "kerasflow.flows.cli", "train", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    seen = []
    for line in process.stdout:
        seen.append(line)
        if f"epoch {epoch - 1}/{epochs}" in line:
            process.kill()
            break
    process.wait(timeout=60)
    assert process.returncode == -9, "".join(seen)
    return "".join(seen)


def test_a_run_killed_during_epoch_3_resumes_there_and_registers_once(root, tmp_path):
    kill_during_epoch(3, *SIX_EPOCHS)
    assert not (root / "registry" / "digits").exists(), "nothing was registered by the killed run"
    backups = list((root / "training").glob("digits-*/backup/latest.json"))
    assert len(backups) == 1 and '"epoch": 2' in backups[0].read_text()

    code, out = run("train", *SIX_EPOCHS)
    assert code == 0, out
    assert re.search(r"training digits-\w+ was interrupted after epoch 2; resuming from its backup", out)
    assert "resuming from the backup: epoch 3 of 6" in out
    assert "epoch 3/6" in out and "epoch 6/6" in out and "epoch 2/6" not in out
    registry = ModelRegistry(str(root / "registry"))
    assert [v["version"] for v in registry.versions("digits")] == [1]
    resumed = registry.get("digits", 1)
    assert (resumed["training"]["initial_epoch"], resumed["training"]["epochs_completed"]) == (2, 6)
    assert not list((root / "training").glob("*/backup")), "a finished training leaves no backup behind"

    uninterrupted_root = tmp_path / "uninterrupted"
    train_flow(config=load_recipe("digits", [*SIX_EPOCHS[1::2], f"storage.root={uninterrupted_root}"]))
    uninterrupted = ModelRegistry(str(uninterrupted_root / "registry")).get("digits", 1)
    # Weights are restored exactly; the data order after a resume is not (fit restarts its
    # shuffle), so the two runs agree as two seeds would.
    for metric in ("accuracy", "loss"):
        assert resumed["metrics"]["values"][metric] == pytest.approx(
            uninterrupted["metrics"]["values"][metric], abs=0.05
        ), metric


class FailAtEpoch(keras.callbacks.Callback):
    """A deterministic failure at the start of an epoch: not retried, so the backup stays."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise DeterministicFailure(f"stopped at epoch {epoch + 1} by the test")


def test_fresh_starts_over_instead_of_resuming(root, monkeypatch, caplog):
    config = TrainConfig.smoke(storage={"root": str(root)}, training={"epochs": 3})
    standard = in_process.standard_callbacks
    monkeypatch.setattr(in_process, "standard_callbacks", lambda *a, **k: [*standard(*a, **k), FailAtEpoch(2)])
    with pytest.raises(DeterministicFailure, match="stopped at epoch 3"):
        train_flow(config=config)
    assert list(root.glob("training/digits-*/backup/latest.json")), "two epochs were published"
    monkeypatch.setattr(in_process, "standard_callbacks", standard)

    summary = train_flow(config=config, fresh=True)

    assert "--fresh: discarding any backup of training digits-" in caplog.text
    assert "resuming" not in caplog.text
    training = ModelRegistry(str(root / "registry")).get("digits", summary.version.version)["training"]
    assert (training["initial_epoch"], training["epochs_completed"]) == (0, 3)
