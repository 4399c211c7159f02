"""The train step on another work pool: what the parent does with each way the child run ends.

The real path (a worker, run_deployment, a child flow run on the pool) runs end to end in
tests/deploy/test_e2e.py; here ``run_deployment`` is replaced by a stand-in that writes
what a child would write, so each ending is tested in seconds under a real Prefect server.
"""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import pytest
from prefect import flow
from prefect.states import Completed, Crashed, Failed

from kerasflow.flows.train_step import OUTCOME_FILE, TrainStepFailed, train_on_deployment
from kerasflow.tasks import storage
from kerasflow.tasks.config import TrainConfig
from kerasflow.tasks.failures import DeterministicFailure
from kerasflow.tasks.refs import DatasetRef, TrainedModel

pytestmark = pytest.mark.usefixtures("prefect_server")

RUN_ID = "run-7"


def _config(root) -> TrainConfig:
    return TrainConfig.smoke(
        storage={"root": str(root)},
        runtime={"train_on": {"deployment": "kerasflow-train-step/gpu", "job_variables": {"gpu_count": 2}}},
    )


def _dataset(root) -> DatasetRef:
    return DatasetRef(
        fingerprint="f" * 16,
        storage_root=str(root),
        uri=f"{root}/datasets/ffff",
        builder_path="attempt-1/digits/1.0.0",
        source="sample",
        splits={"train": 10, "validation": 2, "test": 2},
        feature_key="image",
        label_key="label",
        feature_shape=(8, 8, 1),
        feature_dtype="float32",
        num_classes=10,
        class_names=[str(i) for i in range(10)],
    )


def _trained(root) -> TrainedModel:
    return TrainedModel(
        run_id=RUN_ID,
        model_uri=f"{root}/runs/{RUN_ID}/model.keras",
        sha256="0" * 64,
        dataset_fingerprint="f" * 16,
        epochs_completed=2,
        initial_epoch=0,
        history={"loss": [1.0, 0.5]},
        strategy="MirroredStrategy x2",
        replicas=2,
        global_batch_size=64,
        train_seconds=1.0,
    )


class StandInDeployment:
    """Records each call and ends the child as told, writing what the child would write."""

    def __init__(self, root, endings: list[tuple[str, dict | None]]) -> None:
        self.root, self.endings, self.calls = root, list(endings), []

    def __call__(self, name, *, parameters, job_variables, timeout, as_subflow):
        self.calls.append({"name": name, "parameters": parameters, "job_variables": job_variables})
        state, outcome = self.endings.pop(0)
        if outcome is not None:
            path = storage.run_dir(str(self.root), parameters["run_id"]) / OUTCOME_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(outcome))
        states = {"completed": Completed(), "failed": Failed(message="boom"), "crashed": Crashed(message="pod evicted")}
        return SimpleNamespace(id=uuid.uuid4(), name=f"child-{len(self.calls)}", state=states[state])


def _run_parent(config, dataset, *, fresh=False):
    step = train_on_deployment.with_options(retry_delay_seconds=0)

    @flow
    def parent():
        return step(config, dataset, run_id=RUN_ID, fresh=fresh)

    return parent()


def test_a_completed_child_hands_back_its_model_and_is_sent_the_config_without_train_on(tmp_path, monkeypatch):
    trained = _trained(tmp_path)
    child = StandInDeployment(tmp_path, [("completed", {"trained": trained.model_dump(mode="json")})])
    monkeypatch.setattr("prefect.deployments.run_deployment", child)

    assert _run_parent(_config(tmp_path), _dataset(tmp_path), fresh=True) == trained
    [call] = child.calls
    assert call["name"] == "kerasflow-train-step/gpu" and call["job_variables"] == {"gpu_count": 2}
    sent = TrainConfig.model_validate(call["parameters"]["config"])
    assert sent.runtime.train_on is None, "the child trains; it must not launch another child"
    assert call["parameters"]["fresh"] is True and call["parameters"]["run_id"] == RUN_ID


def test_a_crashed_child_is_launched_once_more_and_the_relaunch_resumes_rather_than_starts_fresh(tmp_path, monkeypatch):
    trained = _trained(tmp_path)
    child = StandInDeployment(
        tmp_path, [("crashed", None), ("completed", {"trained": trained.model_dump(mode="json")})]
    )
    monkeypatch.setattr("prefect.deployments.run_deployment", child)

    assert _run_parent(_config(tmp_path), _dataset(tmp_path), fresh=True) == trained
    assert [c["parameters"]["fresh"] for c in child.calls] == [True, False]


def test_an_outcome_left_by_an_earlier_attempt_is_not_taken_for_this_ones(tmp_path, monkeypatch):
    stale = storage.run_dir(str(tmp_path), RUN_ID) / OUTCOME_FILE
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"trained": _trained(tmp_path).model_dump(mode="json")}))
    child = StandInDeployment(tmp_path, [("crashed", None), ("crashed", None)])
    monkeypatch.setattr("prefect.deployments.run_deployment", child)

    with pytest.raises(TrainStepFailed, match=r"child-2 \(kerasflow-train-step/gpu\) ended without a model"):
        _run_parent(_config(tmp_path), _dataset(tmp_path))
    assert len(child.calls) == 2


def test_a_deterministic_failure_in_the_child_fails_the_parent_without_a_relaunch(tmp_path, monkeypatch):
    outcome = {"deterministic_failure": "TrainingDivergedError: training diverged: loss is nan at epoch 2"}
    child = StandInDeployment(tmp_path, [("failed", outcome), ("completed", None)])
    monkeypatch.setattr("prefect.deployments.run_deployment", child)

    with pytest.raises(DeterministicFailure, match="child-1 failed: TrainingDivergedError: training diverged"):
        _run_parent(_config(tmp_path), _dataset(tmp_path))
    assert len(child.calls) == 1
