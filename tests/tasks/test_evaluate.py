"""Evaluation batch by batch: the same metrics as the whole split at once, overall and per slice."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest

from kerasflow.tasks import evaluate
from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.data.materialize import materialize
from kerasflow.tasks.data.pipeline import load_slices, make_dataset
from kerasflow.tasks.ingest.sources import load_source
from kerasflow.tasks.learning.learning_tasks import TASKS, LearningTask, Measured
from kerasflow.tasks.learning.measurers import Sample
from tests.tables import event_frame, write_frame

rng = np.random.default_rng(0)
ROWS = 5003
CUTS = [0, 1, 257, 3000, ROWS]  # uneven chunks, one of a single row


def outputs(task: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if task == "multiclass":
        logits = rng.normal(size=(ROWS, 4))
        probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return rng.integers(0, 4, ROWS), probabilities.astype("float32"), ["a", "b", "c", "d"]
    if task == "binary":
        return rng.integers(0, 2, ROWS), rng.random((ROWS, 1)).astype("float32"), ["ok", "fraud"]
    if task == "binary-softmax":
        p = rng.random(ROWS).astype("float32")
        return rng.integers(0, 2, ROWS), np.stack([1 - p, p], axis=1), ["ok", "fraud"]
    y = rng.normal(150, 70, ROWS)
    return y, (y + rng.normal(0, 40, ROWS))[:, None].astype("float32"), []


@pytest.mark.parametrize("name", ["multiclass", "binary", "binary-softmax", "regression"])
def test_metrics_batch_by_batch_equal_those_of_the_whole_split_and_keras_own(name):
    y_true, y_pred, class_names = outputs(name)
    task = TASKS[name.split("-")[0]]
    chunked = task.measurer(class_names)
    for start, end in itertools.pairwise(CUTS):
        chunked.update(y_true[start:end], y_pred[start:end])
    whole = task.measurer(class_names)
    whole.update(y_true, y_pred)

    got, expected = chunked.result(), whole.result()
    assert chunked.rows == whole.rows == ROWS
    assert got.values == pytest.approx(expected.values, rel=1e-6)
    assert got.per_class == expected.per_class and got.confusion == expected.confusion
    # And the whole is what Keras computes over the same predictions.
    if name == "regression":
        reference = {"mse": keras.metrics.MeanSquaredError(), "r2": keras.metrics.R2Score()}
        for metric in reference.values():
            metric.update_state(y_true[:, None].astype("float32"), y_pred)
        assert expected.values["mse"] == pytest.approx(float(reference["mse"].result()), rel=1e-4)
        assert expected.values["r2"] == pytest.approx(float(reference["r2"].result()), rel=1e-4)
        return
    predicted = y_pred.argmax(axis=1) if y_pred.shape[1] > 1 else (y_pred[:, 0] >= 0.5).astype(int)
    assert expected.values["accuracy"] == pytest.approx(float((predicted == y_true).mean()))
    assert np.array(expected.confusion).sum() == ROWS and np.trace(expected.confusion) == (predicted == y_true).sum()
    first = class_names[0]
    assert expected.per_class["recall"][first] == pytest.approx(float((predicted[y_true == 0] == 0).mean()))
    if name == "binary":
        auc = keras.metrics.AUC()
        auc.update_state(y_true, y_pred[:, 0])
        assert expected.values["auc"] == pytest.approx(float(auc.result()))
        loss = keras.losses.BinaryCrossentropy()(y_true.astype("float32")[:, None], y_pred)
        assert expected.values["loss"] == pytest.approx(float(loss), rel=1e-5)
    if name == "multiclass":
        loss = keras.losses.SparseCategoricalCrossentropy()(y_true, y_pred)
        assert expected.values["loss"] == pytest.approx(float(loss), rel=1e-5)


def test_a_task_that_only_measures_whole_arrays_still_sees_every_row():
    class Counting(LearningTask):
        name = "counting-test"

        def measure(self, y_true, y_pred, *, class_names):
            return Measured(values={"rows": float(len(y_true)), "sum": float(np.sum(y_true))})

    measurer = Counting().measurer([])
    for start, end in itertools.pairwise(CUTS):
        measurer.update(np.arange(start, end), np.zeros((end - start, 1)))
    assert measurer.result().values == {"rows": ROWS, "sum": float(np.arange(ROWS).sum())}
    with pytest.raises(NotImplementedError, match="implements neither measure"):
        LearningTask().measure(np.zeros(1), np.zeros(1), class_names=[])


def test_a_sample_for_figures_is_bounded_uniform_and_in_arrival_order():
    sample = Sample(1000, seed=1)
    for start in range(0, 100_000, 7_001):
        rows = np.arange(start, min(start + 7_001, 100_000))
        sample.add(rows, rows * 2)
    kept, doubled = sample.columns()
    assert len(kept) == 1000 and (np.diff(kept) > 0).all() and (doubled == kept * 2).all()
    assert 40_000 < kept.mean() < 60_000 and kept.min() < 2_000 and kept.max() > 98_000
    small = Sample(1000)
    small.add(np.arange(10))
    assert small.columns()[0].tolist() == list(range(10)), "fewer rows than the limit: all of them"


def test_evaluating_a_split_chunk_by_chunk_equals_the_whole_of_it(root, tmp_path, monkeypatch):
    frame = event_frame(1200, seed=3)
    frame["region"] = np.array(["eu", "us", "apac"])[np.arange(1200) % 3]
    url = write_frame(str(tmp_path / "events.parquet"), frame)
    ref = materialize(load_source(DataConfig(source="files", url=url, slice_columns=["region"])), str(root))
    features = make_dataset(ref, "test", batch_size=16, cache=False).element_spec[0]
    keras.utils.set_random_seed(0)
    inputs = {name: keras.Input(shape=spec.shape[1:], dtype=spec.dtype, name=name) for name, spec in features.items()}
    joined = keras.layers.Concatenate()([keras.layers.Reshape((-1,))(x) for x in inputs.values()])
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dense(8)(joined)))
    task = TASKS["binary"]

    # Many chunks, each slice's rows spread over them.
    monkeypatch.setattr(evaluate, "CHUNK_ROWS", 40)
    monkeypatch.setattr(evaluate, "PREDICT_BYTES", 1)
    monkeypatch.setattr(evaluate, "MIN_PREDICT_BATCH", 16)  # predicted 16 rows at a time
    assert len(list(evaluate.predicted_chunks(model, ref))) > 3
    chunked, _ = evaluate.evaluate_model(model, ref, task=task, class_names=ref.class_names)
    y_true = np.concatenate([y for y, _ in evaluate.predicted_chunks(model, ref)])
    y_pred = np.concatenate([p for _, p in evaluate.predicted_chunks(model, ref)])
    whole = evaluate.compute_metrics(y_true, y_pred, task=task, class_names=ref.class_names, split="test")

    assert chunked.num_examples == whole.num_examples == ref.splits["test"] > 150
    assert chunked.values == pytest.approx(whole.values, rel=1e-6) and chunked.confusion == whole.confusion
    codes = load_slices(ref, "test")["region"]
    assert set(chunked.per_slice["region"]) == {"eu", "us", "apac"}
    for i, value in enumerate(ref.slices["region"]):
        subset = task.measure(y_true[codes == i], y_pred[codes == i], class_names=ref.class_names)
        assert chunked.per_slice["region"][value] == pytest.approx(subset.values, rel=1e-6)


def test_candidate_and_baseline_are_measured_in_one_read_with_their_paired_evidence(root, tmp_path, monkeypatch):
    from kerasflow.tasks.config import GateConfig
    from kerasflow.tasks.gate import decide

    frame = event_frame(1200, seed=4)
    frame["region"] = np.array(["eu", "us", "apac"])[np.arange(1200) % 3]
    url = write_frame(str(tmp_path / "events.parquet"), frame)
    ref = materialize(load_source(DataConfig(source="files", url=url, slice_columns=["region"])), str(root))
    features = make_dataset(ref, "test", batch_size=16, cache=False).element_spec[0]

    def model(seed):
        keras.utils.set_random_seed(seed)
        inputs = {n: keras.Input(shape=spec.shape[1:], dtype=spec.dtype, name=n) for n, spec in features.items()}
        joined = keras.layers.Concatenate()([keras.layers.Reshape((-1,))(x) for x in inputs.values()])
        return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dense(8)(joined)))

    candidate, other = model(0), model(1)
    task, names = TASKS["binary"], ref.class_names
    monkeypatch.setattr(evaluate, "CHUNK_ROWS", 40)  # many chunks
    reads = []
    real_load = evaluate.load_batches
    monkeypatch.setattr(evaluate, "load_batches", lambda *a, **k: reads.append(a) or real_load(*a, **k))

    both = evaluate.measure_together(candidate, other, ref, task=task, class_names=names)
    assert len(reads) == 1, "the split is read once for both models"
    alone = [evaluate.evaluate_model(m, ref, task=task, class_names=names)[0] for m in (candidate, other)]
    assert both.candidate.values == pytest.approx(alone[0].values, rel=1e-6)
    assert both.baseline.values == pytest.approx(alone[1].values, rel=1e-6)
    assert both.baseline.per_slice["region"]["eu"] == pytest.approx(alone[1].per_slice["region"]["eu"], rel=1e-6)
    evidence = both.evidence
    assert evidence.rows == ref.splits["test"] and evidence.replicates == 200
    assert set(evidence.changes) == {"accuracy", "loss", "precision", "recall", "auc"}
    for name, difference in evidence.changes.items():
        expected = alone[0].values[name] - alone[1].values[name]
        assert difference.estimate == pytest.approx(expected, abs=1e-5) and difference.se > 0, name
    assert set(evidence.slices["region"]) == {"eu", "us", "apac"}
    eu = evidence.slices["region"]["eu"]
    assert eu["auc"].estimate == pytest.approx(alone[0].per_slice["region"]["eu"]["auc"], abs=1e-5)

    # A candidate equal to production: non-inferior at margin 0, not shown superior.
    same = evaluate.measure_together(candidate, candidate, ref, task=task, class_names=names)
    assert all(d.estimate == 0 and d.se == pytest.approx(0, abs=1e-9) for d in same.evidence.changes.values())
    for change, verdict in (({"max_regression": 0.0}, "pass"), ({"mode": "superiority"}, "inconclusive")):
        config = GateConfig.model_validate({"change": {"auc": change, "accuracy": change}})
        report = decide(same.candidate, same.baseline, config, baseline_version=1, evidence=same.evidence)
        assert [c.verdict for c in report.checks] == [verdict, verdict]

    # A baseline that cannot take the data is the baseline's failure, named as such.
    wrong = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(1)])
    with pytest.raises(evaluate.BaselineFailed):
        evaluate.measure_together(candidate, wrong, ref, task=task, class_names=names)
