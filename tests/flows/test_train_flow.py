"""The retraining flow end to end on the digits sample, under a real Prefect server."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import kerasflow.tasks.train.launch.in_process as in_process
from kerasflow.flows.train import train_flow
from kerasflow.models.registry import ModelRegistry
from kerasflow.tasks.config import ConfigError, TrainConfig
from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.gate import GateRejected, decide
from kerasflow.tasks.refs import GateEvidence, GateReport, Metrics
from kerasflow.tasks.train.callbacks import TrainingDivergedError
from tests.flows.helpers import flow_run_record, model_events

pytestmark = pytest.mark.usefixtures("prefect_server")

STEPS = ["ingest", "validate", "check-drift", "train", "evaluate", "gate", "register", "promote"]


def smoke(root, **overrides) -> TrainConfig:
    return TrainConfig.smoke(storage={"root": str(root)}, **overrides)


def registry_of(root) -> ModelRegistry:
    return ModelRegistry(f"{root}/registry")


def test_digits_flow_registers_promotes_and_records_everything(root):
    summary = train_flow(config=smoke(root))

    assert summary.outcome == "promoted"
    assert (summary.version.version, summary.version.alias) == (1, "production")
    registry = registry_of(root)
    assert registry.alias_target("digits", "production") == 1
    metadata = registry.get("digits", 1)
    assert metadata["status"] == "registered"
    assert metadata["dataset"]["fingerprint"] == summary.dataset_fingerprint
    assert metadata["config"]["training"]["epochs"] == 2
    assert metadata["keras_version"] == keras.__version__
    assert {"tensorflow_version", "created_at", "sha256", "flow_run_id", "gate", "metrics"} <= set(metadata)
    assert 0.0 <= metadata["metrics"]["values"]["accuracy"] <= 1.0
    assert set(metadata["metrics"]["per_class"]["accuracy"]) == {str(d) for d in range(10)}
    # Layout of DESIGN.md under the root.
    assert (root / "datasets" / summary.dataset_fingerprint / "ref.json").exists()
    assert (root / "runs" / metadata["run_id"] / "model.keras").exists()
    assert (root / "runs" / metadata["run_id"] / "metrics.json").exists()
    assert any((root / "runs" / metadata["run_id"] / "tensorboard").rglob("*tfevents*"))
    assert not (root / "runs" / metadata["run_id"] / "backup").exists(), "backup is removed once training completes"
    # The version carries a SavedModel for TF Serving that predicts what model.keras predicts.
    assert metadata["saved_model_uri"] == f"file://{root}/registry/digits/versions/1/saved_model"
    served = tf.saved_model.load(str(root / "registry" / "digits" / "versions" / "1" / "saved_model"))
    images = np.random.default_rng(0).uniform(0, 16, size=(4, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(
        served.serve(images).numpy(), registry.load("digits", 1).predict(images, verbose=0), rtol=1e-5, atol=1e-6
    )

    artifacts = {}
    flow_run, task_runs, artifact_keys = flow_run_record(
        metadata["flow_run_id"], artifacts_by_key=artifacts, tasks=tuple(STEPS)
    )
    assert flow_run.state.is_completed()
    assert flow_run.name == f"digits-{summary.dataset_fingerprint[:12]}"  # named after the model and its data
    assert sorted(task_runs) == sorted(STEPS)
    assert all(run.state.is_completed() for runs in task_runs.values() for run in runs)
    assert {
        "dataset-statistics",
        "validation-report",
        "training-progress",
        "evaluation",
        "gate-report",
        "gate-summary",
        "registered-version",
        "training-plots",
    } <= artifact_keys
    # The learning curves and confusion matrix are PNGs saved with the run, copied into the
    # version, and shown in the UI by the artifact that embeds exactly those bytes.
    version_dir = root / "registry" / "digits" / "versions" / "1"
    embedded = [
        base64.b64decode(m)
        for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", artifacts["training-plots"].data)
    ]
    for index, file_name in enumerate(("learning_curves.png", "confusion_matrix.png")):
        saved = (root / "runs" / metadata["run_id"] / "plots" / file_name).read_bytes()
        assert saved.startswith(b"\x89PNG\r\n\x1a\n") and len(saved) > 5_000
        assert (version_dir / "plots" / file_name).read_bytes() == saved == embedded[index]
        assert metadata["files"][f"plots/{file_name}"] == f"file://{version_dir}/plots/{file_name}"
    confusion = np.array(metadata["metrics"]["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == metadata["metrics"]["num_examples"]
    assert np.trace(confusion) / confusion.sum() == pytest.approx(metadata["metrics"]["values"]["accuracy"])


def test_second_run_is_gated_against_the_first_and_unchanged_data_is_skipped(root):
    started = datetime.now(UTC)
    first = train_flow(config=smoke(root))
    skipped = train_flow(config=smoke(root))
    assert skipped.outcome == "skipped"
    assert skipped.message.startswith(
        f"data and training definition unchanged since digits v1 (data {first.dataset_fingerprint}, definition "
    )
    assert len(registry_of(root).versions("digits")) == 1
    definition = registry_of(root).get("digits", 1)["definition"]
    assert definition["fingerprint"] in skipped.message
    assert definition["builder"]["reference"] == "digits_cnn" and len(definition["builder"]["code_sha256"]) == 64

    config = smoke(root, gate={"change": {"accuracy": {"max_regression": 0.5}, "loss": {"max_regression": 5.0}}})
    second = train_flow(config=config, force=True)
    assert second.outcome == "promoted"
    assert second.version.version == 2 and second.version.previous_version == 1
    assert second.gate.baseline_version == 1
    change = [c for c in second.gate.checks if c.kind == "change"]
    assert [c.verdict for c in change] == ["pass", "pass"]
    assert all(c.baseline is not None for c in change)
    metadata = registry_of(root).get("digits", 2)
    assert metadata["baseline_version"] == 1
    assert metadata["baseline"]["values"]["accuracy"] == pytest.approx(first.metrics["accuracy"])
    # Decided with confidence on paired evidence recorded with the version: deciding again gives the same report.
    assert all(c.low <= c.estimate <= c.high and c.point_verdict == "pass" and c.mdd >= 0 for c in change)
    evidence = GateEvidence.model_validate(metadata["evidence"])
    assert evidence.rows == metadata["metrics"]["num_examples"] and {"accuracy", "loss"} <= set(evidence.changes)
    again = decide(
        Metrics.model_validate(metadata["metrics"]),
        Metrics.model_validate(metadata["baseline"]),
        config.gate,
        baseline_version=1,
        alias_version=1,
        evidence=evidence,
    )
    assert again == GateReport.model_validate(metadata["gate"])

    # Each outcome is an event about the model, tied to its flow run, for automations.
    mine = {f"prefect.flow-run.{registry_of(root).get('digits', v)['flow_run_id']}" for v in (1, 2)}
    stored = model_events("digits", since=started, expected=3)
    assert [(e.event, e.payload.get("version")) for e in stored] == [
        ("kerasflow.model.promoted", 1),
        ("kerasflow.training.skipped", 1),
        ("kerasflow.model.promoted", 2),
    ]
    assert stored[-1].payload["previous_version"] == 1 and stored[-1].resource.name == "digits"
    assert {e.payload["fingerprint"] for e in stored} == {first.dataset_fingerprint}
    flow_runs = {r.id for e in stored for r in e.related if r.role == "flow-run"}
    assert mine <= flow_runs

    # Same data, a new architecture and learning rate: the run trains, and says why.
    changed = train_flow(config=smoke(root, model={"params": {"filters": 8}}, training={"learning_rate": 0.002}))
    assert changed.outcome == "promoted" and changed.version.version == 3
    assert changed.reason == "the training definition changed since v2: model.params.filters, training.learning_rate"


def test_rejected_candidate_is_recorded_and_production_unchanged(root):
    started = datetime.now(UTC)
    train_flow(config=smoke(root))
    with pytest.raises(GateRejected, match=r"accuracy .* < 1.01") as info:
        train_flow(config=smoke(root, gate={"value": {"accuracy": {"min": 1.01}}}), force=True)
    assert info.value.summary.outcome == "rejected"
    registry = registry_of(root)
    assert registry.get("digits", 2)["status"] == "rejected"
    assert registry.alias_target("digits", "production") == 1
    promoted, rejected = model_events("digits", since=started, expected=2)
    assert (promoted.event, rejected.event) == ("kerasflow.model.promoted", "kerasflow.gate.rejected")
    assert rejected.payload["version"] == 2 and "1.01" in rejected.payload["reason"]
    run = f"prefect.flow-run.{registry.get('digits', 2)['flow_run_id']}"
    assert run in {r.id for r in rejected.related}


def test_mirrored_strategy_on_two_logical_cpus_trains_and_registers(root):
    # 1,283 / 263 examples at a global batch of 64: both splits end in a partial batch.
    summary = train_flow(config=smoke(root, runtime={"devices": ["/cpu:0", "/cpu:1"]}))
    training = registry_of(root).get("digits", summary.version.version)["training"]
    assert training["strategy"] == "MirroredStrategy x2"
    assert training["replicas"] == 2
    assert training["global_batch_size"] == 64  # 32 per replica
    assert summary.outcome == "promoted"


class RaiseOnceAtEpoch(keras.callbacks.Callback):
    """A fault injected into training: the process 'dies' once at the start of an epoch."""

    def __init__(self, epoch: int, log: list[int], raised: list[bool]):
        super().__init__()
        self.epoch, self.log, self.raised = epoch, log, raised

    def on_epoch_begin(self, epoch, logs=None):
        self.log.append(epoch)
        if epoch == self.epoch and not self.raised:
            self.raised.append(True)
            raise ConnectionError("simulated transient fault at epoch 3")


@pytest.mark.parametrize("fresh", [False, True], ids=["resume", "fresh-run-retried"])
def test_a_retried_training_resumes_from_the_last_completed_epoch(root, monkeypatch, fresh):
    # With --fresh the run starts over once; its own retry still resumes its fresh epochs.
    epochs_begun: list[int] = []
    raised: list[bool] = []
    standard = in_process.standard_callbacks

    def with_fault(*args, **kwargs):
        return [*standard(*args, **kwargs), RaiseOnceAtEpoch(2, epochs_begun, raised)]

    monkeypatch.setattr(in_process, "standard_callbacks", with_fault)
    summary = train_flow(config=smoke(root, training={"epochs": 5}), fresh=fresh)

    assert raised == [True]
    # Epochs 1-2 completed, epoch 3 failed, the retry started again at epoch 3 (index 2).
    assert epochs_begun == [0, 1, 2, 2, 3, 4]
    training = registry_of(root).get("digits", summary.version.version)["training"]
    assert (training["initial_epoch"], training["epochs_completed"]) == (2, 5)
    _, task_runs, _ = flow_run_record(registry_of(root).get("digits", 1)["flow_run_id"], tasks=("train",))
    assert task_runs["train"][0].run_count == 2


def write_table(path, *, rows=200, nan_row=None, labels=None):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"f{i}": rng.normal(size=rows) for i in range(4)})
    frame["label"] = labels if labels is not None else (frame["f0"] + frame["f1"] > 0).astype(int)
    if nan_row is not None:
        frame.loc[nan_row, "f2"] = np.nan
    frame.to_parquet(path)
    return path


def tabular(root, url, **overrides) -> TrainConfig:
    base = {
        "data": {"source": "files", "url": str(url)},
        "model": {"name": "fraud", "family": "fraud_tabular", "num_classes": 2},
        "gate": {},
    }
    return TrainConfig.smoke(storage={"root": str(root)}, **{**base, **overrides})


def test_nan_features_fail_validation_and_nothing_is_trained(root, tmp_path):
    url = write_table(tmp_path / "events.parquet", nan_row=17)
    with pytest.raises(DataValidationError, match=r"check 'finite features' failed: 1 row\(s\)") as info:
        train_flow(config=tabular(root, url))
    assert str(info.value).startswith(f"{url}: ")
    assert "first at row 17 (column 'f2')" in str(info.value) and "impute or drop" in str(info.value)
    assert registry_of(root).names() == []
    assert not (root / "runs").exists()


def test_labels_outside_the_class_range_fail_validation(root, tmp_path):
    labels = np.tile([0, 1, 2, 1], 50)
    url = write_table(tmp_path / "events.parquet", labels=labels)
    with pytest.raises(DataValidationError, match=r"check 'label range' failed: \d+ row\(s\) have labels outside 0..1"):
        train_flow(config=tabular(root, url))
    assert registry_of(root).names() == []


def test_a_missing_column_is_named(root, tmp_path):
    url = write_table(tmp_path / "events.parquet")
    config = tabular(root, url, data={"source": "files", "url": str(url), "feature_columns": ["f0", "amount"]})
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['amount'\]"):
        train_flow(config=config)
    assert registry_of(root).names() == []


def test_the_input_shape_comes_from_the_data_not_from_params(root):
    # The builder is told the data's shape (its input spec); a recipe cannot set another one.
    config = smoke(root, model={"params": {"input_shape": [28, 28, 1]}})
    with pytest.raises(ConfigError, match=r"model.params \['input_shape'\] that builder 'digits_cnn' does not take"):
        train_flow(config=config)
    assert registry_of(root).names() == []
    assert not (root / "datasets").exists(), "refused before ingest"


def test_a_diverged_loss_fails_at_once_without_retry(root):
    # A learning rate this large overflows the weights within the first batches.
    config = smoke(root, training={"learning_rate": 1e30, "optimizer": "sgd"})
    state = train_flow(config=config, return_state=True)
    assert state.is_failed()
    with pytest.raises(TrainingDivergedError, match=r"training diverged: loss is (nan|inf) at epoch 1") as info:
        state.result()
    assert "lower training.learning_rate (now 1e+30)" in str(info.value)
    assert registry_of(root).names() == []
    _, task_runs, _ = flow_run_record(state.state_details.flow_run_id, tasks=("train",))
    assert task_runs["train"][0].run_count == 1, "a NaN loss is deterministic: no retry"


def test_missing_labels_are_named(root, tmp_path):
    labels = np.tile([0.0, 1.0, np.nan, 1.0], 50)
    url = write_table(tmp_path / "events.parquet", labels=labels)
    with pytest.raises(DataValidationError, match=r"check 'label present' failed: 50 row\(s\) have no label"):
        train_flow(config=tabular(root, url))
    assert registry_of(root).names() == []


def test_a_region_the_model_fails_is_caught_by_the_sliced_gate(root, tmp_path):
    rng = np.random.default_rng(0)
    # 1,000 rows a region, so each region's ~150 test rows can show an AUC under 0.7 with confidence
    # (the gate fails a slice only when its interval, corrected for the number of slices, is below the bound).
    frame = pd.DataFrame({f"f{i}": rng.normal(size=3000) for i in range(4)})
    frame["region"] = np.repeat(["eu", "us", "apac"], 1000)
    learnable = (frame["f0"] + frame["f1"] > 0).astype(int)
    # In apac the label is noise: the model cannot rank it, whatever its overall AUC.
    frame["label"] = np.where(frame["region"] == "apac", rng.integers(0, 2, size=3000), learnable)
    frame.to_parquet(tmp_path / "events.parquet")
    config = tabular(
        root,
        tmp_path / "events.parquet",
        data={"source": "files", "url": str(tmp_path / "events.parquet"), "slice_columns": ["region"]},
        gate={"per_slice": {"region": {"auc": {"min": 0.7}}}},
        training={"epochs": 15, "batch_size": 32, "early_stopping": {"enabled": False}},
    )

    with pytest.raises(GateRejected, match=r"auc\[region=apac\]") as info:
        train_flow(config=config)

    metadata = registry_of(root).get("fraud", 1)
    assert metadata["status"] == "rejected"
    per_region = metadata["metrics"]["per_slice"]["region"]
    assert set(per_region) == {"eu", "us", "apac"}
    assert per_region["eu"]["auc"] >= 0.7 and per_region["us"]["auc"] >= 0.7 and per_region["apac"]["auc"] < 0.7
    verdicts = {c["metric"]: c["verdict"] for c in metadata["gate"]["checks"] if c["kind"] == "slice"}
    assert verdicts == {"auc[region=apac]": "fail", "auc[region=eu]": "pass", "auc[region=us]": "pass"}
    assert "region" not in metadata["dataset"]["feature_names"], "a slice column is not a model input"
    assert "production" in str(info.value) and registry_of(root).alias_target("fraud", "production") is None
