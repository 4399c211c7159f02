"""Two real worker processes on loopback under MultiWorkerMirroredStrategy, through the flow."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from flows.train import train_flow
from models.registry import ModelRegistry
from tasks.config import TrainConfig

pytestmark = pytest.mark.usefixtures("prefect_server")


def config(root, **runtime) -> TrainConfig:
    # Dropout off: masks are drawn per replica position, so two partitions of the same
    # global batch get different masks; every other part of the step is deterministic.
    return TrainConfig.smoke(
        storage={"root": str(root)},
        training={"epochs": 3},
        model={"params": {"dropout": 0.0}},
        runtime=runtime,
    )


def trained(root):
    registry = ModelRegistry(str(root / "registry"))
    version = registry.get("digits", 1)
    model = keras.saving.load_model(root / "registry" / "digits" / "versions" / "1" / "model.keras")
    return version, model


def test_two_worker_processes_train_what_one_process_with_two_replicas_trains(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    train_flow(config=config(one, devices=["/cpu:0", "/cpu:1"]))
    train_flow(config=config(two, launcher={"kind": "local_processes", "workers": 2}))

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
