"""A team's Keras code as it is: a model compiled the guide's way trains; a builder's own failure is not retried."""

from __future__ import annotations

import sys
import textwrap

import pytest

from kerasflow.flows.train import train_flow
from kerasflow.tasks.config import ConfigError, TrainConfig
from tests.flows.cli.test_cli import run

pytestmark = pytest.mark.usefixtures("prefect_server")

TEAM_CODE = """
import os
import keras

def guide(input_spec):
    # The Keras guide's MNIST model: compiled by the team, over one-hot labels.
    model = keras.Sequential(
        [
            keras.Input(input_spec.feature_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(len(input_spec.class_names), activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model

def broken(input_spec):
    with open(os.environ["KF_BUILDER_CALLS"], "a") as calls:
        calls.write("called\\n")
    raise ValueError("Input 0 of layer conv2d is incompatible with the layer: expected ndim=4, found ndim=2")
"""


@pytest.fixture
def team_builders(tmp_path, monkeypatch):
    (tmp_path / "kf_team_builders.py").write_text(textwrap.dedent(TEAM_CODE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("KF_BUILDER_CALLS", str(tmp_path / "calls.txt"))
    yield tmp_path
    sys.modules.pop("kf_team_builders", None)


def test_a_model_compiled_for_one_hot_labels_trains_on_class_ids(root, team_builders):
    # Keras's "Arguments target and output must have the same rank", after two retries.
    config = TrainConfig.smoke(model={"builder": "kf_team_builders:guide", "name": "guide"})
    summary = train_flow(config=config)
    assert summary.outcome == "promoted", summary.message
    assert summary.metrics["accuracy"] > 0.5


def test_a_builder_that_raises_fails_once_with_exit_2_naming_it(root, team_builders):
    config = TrainConfig.smoke(model={"builder": "kf_team_builders:broken", "name": "broken"})
    with pytest.raises(ConfigError, match=r"builder 'kf_team_builders:broken' raised ValueError on an input of shape"):
        train_flow(config=config)
    assert (team_builders / "calls.txt").read_text().count("called") == 1, "not retried"

    assignments = ["model.family=null", "model.builder=kf_team_builders:broken", "model.params={}", "training.epochs=1"]
    code, out = run("train", "digits", *(arg for assignment in assignments for arg in ("--set", assignment)))
    assert code == 2, out
    assert "raised ValueError" in out and "Traceback" not in out


def test_a_builder_module_that_cannot_be_imported_says_where_to_put_it(root):
    with pytest.raises(ConfigError, match=r"cannot be imported .*; put the folder that holds it on PYTHONPATH"):
        train_flow(config=TrainConfig.smoke(model={"builder": "kf_not_on_the_path.models:build"}))
