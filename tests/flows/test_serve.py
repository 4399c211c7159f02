"""`kerasflow serve`: the flows' parameters survive Prefect's serve, and a served schedule retrains."""

from __future__ import annotations

import cloudpickle
import pytest


@pytest.mark.parametrize(
    ("flow_path", "parameters"),
    [
        ("kerasflow.flows.train:train_flow", {"config": {}}),
        ("kerasflow.flows.train_step:train_step_flow", {"config": {}, "dataset": "a ref", "run_id": "r1"}),
        ("kerasflow.flows.predict:predict_flow", {"model": "digits", "data": {"source": "files", "url": "a.csv"}}),
    ],
)
def test_a_served_flow_still_validates_its_parameters(flow_path, parameters):
    """Prefect's runner pickles a served flow's function by value, keeping only the globals its code names.

    Parameter types written as strings (``from __future__ import annotations``) then cannot be
    resolved in the run's process: "Train_FlowModel is not fully defined; you should define TrainConfig".
    """
    import importlib

    from kerasflow.tasks.config import DataConfig, TrainConfig
    from kerasflow.tasks.refs import DatasetRef

    module, name = flow_path.split(":")
    restored = cloudpickle.loads(cloudpickle.dumps(getattr(importlib.import_module(module), name)))
    if "dataset" in parameters:
        parameters = {**parameters, "dataset": _a_dataset_ref()}
    validated = restored.validate_parameters(parameters)
    expected = {"config": TrainConfig, "data": DataConfig, "dataset": DatasetRef}
    assert all(isinstance(validated[key], kind) for key, kind in expected.items() if key in parameters)


def _a_dataset_ref() -> dict:
    return {
        "fingerprint": "f" * 16,
        "storage_root": "/tmp/root",
        "uri": "/tmp/root/datasets/" + "f" * 16,
        "builder_path": "attempt-1/digits/1.0.0",
        "num_bytes": 1,
        "source": "sample",
        "splits": {"train": 1},
        "feature_key": "image",
        "label_key": "label",
        "feature_shape": [8, 8, 1],
        "feature_dtype": "float32",
        "num_classes": 2,
        "class_names": ["a", "b"],
    }
