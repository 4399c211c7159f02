"""Warm start from the production model: same builder and params, or refused naming the difference."""

from __future__ import annotations

import numpy as np
import pytest

from kerasflow.flows.train import train_flow
from kerasflow.models.registry import ModelRegistry
from kerasflow.tasks.config import ConfigError, TrainConfig
from kerasflow.tasks.gate import GateRejected

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_a_warm_start_begins_from_the_production_weights_and_records_it(root):
    assert train_flow(config=TrainConfig.smoke()).outcome == "promoted"
    registry = ModelRegistry(f"{root}/registry")
    production = registry.load("digits", 1).get_weights()

    # One epoch at a vanishing learning rate: the candidate is where training started.
    config = TrainConfig.smoke(
        training={"warm_start": "production", "epochs": 1, "learning_rate": 1e-12},
        gate={"change": {"accuracy": {"max_regression": 0.001}}},
    )
    summary = train_flow(config=config, force=True)
    assert summary.outcome == "promoted", summary.message
    metadata = registry.get("digits", 2)
    assert metadata["warm_started_from"] == 1 and metadata["training"]["warm_started_from"] == 1
    for started, was in zip(registry.load("digits", 2).get_weights(), production, strict=True):
        np.testing.assert_allclose(started, was, atol=1e-6)
    # A cold start at the same learning rate is untrained: recorded as such, and rejected by the gate.
    with pytest.raises(GateRejected, match="accuracy"):
        train_flow(config=TrainConfig.smoke(training={"epochs": 1, "learning_rate": 1e-12}), force=True)
    assert registry.get("digits", 3)["warm_started_from"] is None


def test_a_warm_start_from_another_architecture_is_refused_before_any_work(root):
    train_flow(config=TrainConfig.smoke())
    config = TrainConfig.smoke(model={"params": {"filters": 8}}, training={"warm_start": "production"})
    with pytest.raises(ConfigError, match=r"cannot warm start from digits v1: it was built with model.params \{\}"):
        train_flow(config=config, force=True)
    with pytest.raises(ConfigError, match=r"training.warm_start='7'"):
        train_flow(config=TrainConfig.smoke(training={"warm_start": "7"}), force=True)
    assert [v["version"] for v in ModelRegistry(f"{root}/registry").versions("digits")] == [1]
