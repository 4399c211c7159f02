"""A team's own model, end to end: its builder by import path, its custom layer, its recipe.

The project is docs/examples/clinic/, as the README's "Your own model" walks through it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kerasflow.flows.predict import predict_flow
from kerasflow.flows.recipes import load_recipe
from kerasflow.flows.train import train_flow
from kerasflow.models import io
from kerasflow.models.registry import ModelRegistry
from kerasflow.tasks.config import ConfigError
from tests.flows.cli.test_cli import run

pytestmark = pytest.mark.usefixtures("prefect_server")

PROJECT = Path(__file__).parents[2] / "docs" / "examples" / "clinic"
RECIPE = str(PROJECT / "recipe.yaml")


@pytest.fixture
def clinic(monkeypatch):
    """The team's project on the import path, as its own checkout or installed package would be."""
    monkeypatch.syspath_prepend(str(PROJECT))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(PROJECT), os.environ.get("PYTHONPATH", "")]))
    yield
    for name in [m for m in sys.modules if m == "clinic_models" or m.startswith("clinic_models.")]:
        sys.modules.pop(name)


def test_a_teams_builder_and_custom_layer_train_register_and_score(root, tmp_path, clinic):
    config = load_recipe(RECIPE, ["training.epochs=12"])
    summary = train_flow(config=config)
    assert summary.outcome == "promoted", summary.message
    assert summary.metrics["auc"] >= 0.95  # the recipe's own gate, on the bundled table

    registry = ModelRegistry(f"{root}/registry")
    metadata = registry.get("clinic-screening", 1)
    assert metadata["builder"]["reference"] == "clinic_models.builder:build"
    assert metadata["builder"]["package"] == "clinic_models" and len(metadata["builder"]["code_sha256"]) == 64
    # The custom layer is in the saved model; it loads only from a package the caller trusts.
    with pytest.raises(io.UnsafeModelError, match="'clinic_models>GatedResidual' from a package the recipe does not"):
        registry.load("clinic-screening", 1)
    model = registry.load("clinic-screening", 1, trusted_packages=["clinic_models"])
    # The saved model is the table's encoding in front of the team's model; its 30 numbers are one input.
    assert list(model.input) == ["kerasflow.numbers"] and tuple(model.input["kerasflow.numbers"].shape) == (None, 30)
    body = next(layer for layer in model.layers if layer.name == "clinic_screening")
    assert any(type(layer).__name__ == "GatedResidual" for layer in body.layers)
    # The encoding holds the training split's statistics: the raw columns' means differ by orders of magnitude.
    encoded_means = np.concatenate(
        [np.asarray(layer.mean).ravel() for layer in model.layers if type(layer).__name__ == "Normalization"]
    )
    assert len(encoded_means) == 30 and np.std(encoded_means) > 1.0
    # kerasflow adapted the builder's own Normalization, on the encoded (standardized) training split.
    normalization = next(layer for layer in body.layers if type(layer).__name__ == "Normalization")
    assert np.abs(np.asarray(normalization.mean)).max() < 0.2
    assert np.asarray(normalization.variance).ravel() == pytest.approx(np.ones(30), abs=0.2)

    scored = predict_flow(
        model="clinic-screening@production",
        output=str(tmp_path / "scores.parquet"),
        trusted_packages=("clinic_models",),
    )
    frame = pd.read_parquet(tmp_path / "scores.parquet")
    assert scored.rows == len(frame) == metadata["dataset"]["splits"]["test"]
    assert float((frame["prediction"] == frame["label"]).mean()) == pytest.approx(summary.metrics["accuracy"])


def test_builder_mistakes_fail_before_any_work_with_exit_2(root, clinic):
    with pytest.raises(ConfigError, match=r"model.params \['unitz'\] .* expected any of \['dropout', 'units'\]"):
        train_flow(config=load_recipe(RECIPE, ["model.params.unitz=3"]))
    with pytest.raises(ConfigError, match=r"module 'clinic_modelz.builder' cannot be imported"):
        train_flow(config=load_recipe(RECIPE, ["model.builder=clinic_modelz.builder:build"]))
    assert not (root / "datasets").exists(), "nothing was ingested"

    code, out = run("train", RECIPE, "--set", "model.params.filtres=16")
    assert code == 2, out
    assert "model.params ['filtres'] that builder 'clinic_models.builder:build' does not take" in out
    assert "Traceback" not in out
