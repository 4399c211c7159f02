"""Two real worker processes on loopback under MultiWorkerMirroredStrategy, through the flow."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from kerasflow.flows.train import train_flow
from kerasflow.models.registry import ModelRegistry
from kerasflow.tasks.config import TrainConfig
from kerasflow.tasks.train.launch.worker_processes import WorkerDeterministicError
from tests.flows.helpers import assert_the_retry_resumed, train_interrupted
from tests.tables import transactions_frame, write_frame
from tests.tasks.train.test_loop import DEFINED

pytestmark = pytest.mark.usefixtures("prefect_server")


def config(root, *, training=None, **runtime) -> TrainConfig:
    # Dropout off: masks are drawn per replica position, so two partitions of the same
    # global batch get different masks; every other part of the step is deterministic.
    return TrainConfig.smoke(
        storage={"root": str(root)},
        training=training or {"epochs": 3},
        model={"params": {"dropout": 0.0}},
        runtime=runtime,
    )


def trained(root):
    registry = ModelRegistry(str(root / "registry"))
    version = registry.get("digits", 1)
    model = keras.saving.load_model(root / "registry" / "digits" / "versions" / "1" / "model.keras")
    return version, model


def test_two_worker_processes_train_what_one_process_with_two_replicas_trains(tmp_path):
    # The recipe's whole training definition crosses the process boundary: class weights,
    # label smoothing, Nadam with weight decay and clipping, cosine decay after a warm-up
    # (the defaults are compared in process by tests/tasks/train/test_loop.py).
    one, two = tmp_path / "one", tmp_path / "two"
    train_flow(config=config(one, training=DEFINED, devices=["/cpu:0", "/cpu:1"]))
    train_flow(config=config(two, training=DEFINED, launcher={"kind": "local_processes", "workers": 2}))

    (single, single_model), (multi, multi_model) = trained(one), trained(two)
    assert single["training"]["strategy"] == "MirroredStrategy x2"
    assert multi["training"]["strategy"] == "MultiWorkerMirroredStrategy x2"
    assert multi["training"]["global_batch_size"] == single["training"]["global_batch_size"] == 64
    for a, b in zip(single_model.get_weights(), multi_model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
    curves = [
        json.loads((r / "runs" / v["training"]["run_id"] / "metrics.json").read_text())["history"]
        for r, v in ((one, single), (two, multi))
    ]
    for name in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(curves[1][name], curves[0][name], atol=1e-4)
    assert abs(multi["metrics"]["values"]["accuracy"] - single["metrics"]["values"]["accuracy"]) < 1e-3
    # Only the chief kept anything: the workers' private backup folders are gone.
    assert not list((two / "training").glob("*/scratch/backup-*"))


def test_two_workers_train_a_typed_table_of_dict_inputs_as_one_process_does(tmp_path):
    # keras-team/keras issue 20329: `fit` fails on dict inputs under MultiWorkerMirroredStrategy;
    # the project's loop takes a typed table's columns (numbers, text, gaps) as they come.
    url = write_frame(str(tmp_path / "transactions.parquet"), transactions_frame(1500, seed=4, fraud_rate=0.1))

    def typed(root, **runtime) -> TrainConfig:
        return TrainConfig.model_validate(
            {
                "data": {"source": "files", "url": url, "missing": "fill"},
                "model": {"name": "fraud", "family": "fraud_tabular", "num_classes": 2, "params": {"dropout": 0.0}},
                "training": {"epochs": 2, "batch_size": 32, "early_stopping": {"enabled": False}},
                "gate": {"value": {}},
                "storage": {"root": str(root)},
                "runtime": runtime,
            }
        )

    one, two = tmp_path / "one", tmp_path / "two"
    train_flow(config=typed(one, devices=["/cpu:0", "/cpu:1"]))
    train_flow(config=typed(two, launcher={"kind": "local_processes", "workers": 2}))
    models = [ModelRegistry(str(root / "registry")).load("fraud", 1) for root in (one, two)]
    assert isinstance(models[1].input, dict) and "country" in models[1].input
    for a, b in zip(models[0].get_weights(), models[1].get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
    multi = ModelRegistry(str(two / "registry")).get("fraud", 1)
    assert multi["training"]["strategy"] == "MultiWorkerMirroredStrategy x2"


def worker_pids(root) -> dict[int, int]:
    """Worker index -> pid of the training workers of runs under ``root`` (from /proc)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        worker = b"kerasflow.tasks.train.launch.worker"
        if worker not in cmdline or not any(str(root).encode() in part for part in cmdline):
            continue
        spec = next((e[len(b"TF_CONFIG=") :] for e in environ if e.startswith(b"TF_CONFIG=")), None)
        if spec:
            found[json.loads(spec)["task"]["index"]] = int(proc.name)
    return found


def test_a_killed_worker_fails_the_task_and_the_retry_resumes_from_the_last_epoch(root, caplog):
    killed = []

    def kill_worker_1() -> bool:
        pid = worker_pids(root).get(1)
        if pid:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        return bool(pid)

    started = time.monotonic()
    cfg = TrainConfig.smoke(
        storage={"root": str(root)},
        training={"epochs": 5, "batch_size": 8},
        runtime={"launcher": {"kind": "local_processes", "workers": 2}, "peer_timeout_seconds": 5},
    )
    summary = train_interrupted(cfg, after_epoch=2, interrupt=kill_worker_1)

    assert killed, "worker 1 was killed"
    assert summary.outcome == "promoted"
    text = caplog.text
    assert re.search(r"training worker 1 of 2 exited with code -9: killed by SIGKILL", text)
    assert "the other workers stopped on their own" in text, "the chief saw its dead peer and failed, not hung"
    assert_the_retry_resumed(root, text, after_at_least=2, epochs=5)
    assert worker_pids(root) == {}, "no worker outlives the run"
    assert time.monotonic() - started < 240


def test_a_worker_whose_loss_diverges_fails_the_run_at_once_without_retries(root, caplog):
    cfg = TrainConfig.smoke(
        storage={"root": str(root)},
        training={"epochs": 2, "learning_rate": 1e12, "optimizer": "sgd"},
        runtime={"launcher": {"kind": "local_processes", "workers": 2}, "peer_timeout_seconds": 5},
    )
    with pytest.raises(WorkerDeterministicError, match="TrainingDivergedError: training diverged: loss is nan"):
        train_flow(config=cfg)
    assert "Retry 1/2" not in caplog.text, "a NaN loss is not retried"
    assert worker_pids(root) == {}
