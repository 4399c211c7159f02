"""The learning tasks: what each computes, how the gate reads its metrics, and what a recipe may combine."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kerasflow.tasks.config import ConfigError, GateConfig, TrainConfig, parse_config
from kerasflow.tasks.evaluate import compute_metrics
from kerasflow.tasks.gate import decide, higher_is_better
from kerasflow.tasks.learning.learning_tasks import TASKS, LearningTask, RegressionTask, choose_task, register_task

rng = np.random.default_rng(0)


def test_regression_metrics_are_keras_own_on_the_same_predictions():
    y_true = rng.normal(150, 70, 200).astype("float32")
    y_pred = (y_true + rng.normal(0, 40, 200)).astype("float32")
    m = compute_metrics(y_true, y_pred[:, None], task=TASKS["regression"], class_names=[], split="test")
    expected = {}
    for name, metric in {
        "mse": keras.metrics.MeanSquaredError(),
        "mae": keras.metrics.MeanAbsoluteError(),
        "rmse": keras.metrics.RootMeanSquaredError(),
        "r2": keras.metrics.R2Score(),
    }.items():
        metric.update_state(y_true[:, None], y_pred[:, None])
        expected[name] = float(metric.result())
    assert m.values == pytest.approx({**expected, "loss": expected["mse"]}, rel=1e-4)
    assert m.per_class == {} and m.confusion is None
    assert 0.3 < m.values["r2"] < 0.9


@pytest.mark.parametrize(
    ("metric", "candidate", "baseline", "verdict"),
    [
        ("rmse", 55.0, 50.0, "fail"),  # an error may not rise by more than 5%
        ("rmse", 51.0, 50.0, "pass"),
        ("mae", 30.0, 40.0, "pass"),
        ("r2", 0.40, 0.50, "fail"),  # R² may not fall
        ("r2", 0.55, 0.50, "pass"),
    ],
)
def test_the_gate_reads_regression_metrics_in_their_direction(metric, candidate, baseline, verdict):
    config = GateConfig(change={metric: {"max_regression": 0.05, "relative": True}})
    report = decide(_metrics(**{metric: candidate}), _metrics(**{metric: baseline}), config)
    assert [c.verdict for c in report.checks] == [verdict]
    assert higher_is_better("r2") and not higher_is_better("rmse") and not higher_is_better("mse")


def _metrics(**values):
    from kerasflow.tasks.refs import Metrics

    return Metrics(split="test", num_examples=10, values=values)


def test_scoring_columns_follow_the_task():
    numbers = TASKS["regression"].prediction_columns(np.array([[1.5], [2.5]]), class_names=[])
    assert list(numbers) == ["prediction"] and numbers["prediction"].tolist() == [1.5, 2.5]
    classes = TASKS["binary"].prediction_columns(np.array([[0.2], [0.9]]), class_names=["ok", "fraud"])
    assert classes["prediction"].tolist() == ["ok", "fraud"]
    assert classes["p_fraud"].tolist() == pytest.approx([0.2, 0.9])


def test_regression_draws_predicted_versus_actual_and_residuals_not_a_confusion_matrix():
    y = rng.normal(size=50)
    figures = TASKS["regression"].figures(y, y + rng.normal(0, 0.1, 50), class_names=[], title="t")
    assert sorted(figures) == ["predicted_vs_actual.png", "residuals.png"]
    assert all(png.startswith(b"\x89PNG") for png in figures.values())
    confusion = TASKS["multiclass"].figures(np.array([0, 1, 2]), np.eye(3), class_names=["a", "b", "c"], title="t")
    assert sorted(confusion) == ["confusion_matrix.png"]


def test_the_task_is_chosen_from_the_classes_or_named_and_checked():
    assert choose_task(None, num_classes=2).name == "binary"
    assert choose_task(None, num_classes=10).name == "multiclass"
    assert choose_task("multiclass", num_classes=2).name == "multiclass"  # a softmax over two classes
    with pytest.raises(ConfigError, match=r"model.task=.binary. with 3 classes, expected 2"):
        choose_task("binary", num_classes=3)
    with pytest.raises(ConfigError, match="learns from numbers, but the dataset's labels were read as classes"):
        choose_task("regression", num_classes=2, labels="classes")


def test_a_regression_recipe_reads_its_labels_as_numbers_and_refuses_class_settings():
    config = parse_config({"model": {"task": "regression"}})
    assert config.data.labels == "numbers"
    assert TrainConfig().with_overrides(["model.task=regression"]).data.labels == "numbers"
    assert config.with_overrides(["model.task=multiclass"]).data.labels == "classes"
    with pytest.raises(ConfigError) as error:
        parse_config(
            {
                "model": {"task": "regression"},
                "training": {"class_weight": "balanced", "label_smoothing": 0.1},
                "gate": {"per_class": {"recall": {"min": 0.5}}},
            }
        )
    assert "training.class_weight, training.label_smoothing, gate.per_class with model.task='regression'" in str(
        error.value
    )
    with pytest.raises(ConfigError, match=r"data.classes for a regression target"):
        parse_config({"model": {"task": "regression"}, "data": {"classes": ["a", "b"]}})
    with pytest.raises(ConfigError, match=r"model.task: received 'ordinal', expected one of \['binary'"):
        parse_config({"model": {"task": "ordinal"}})


def test_a_team_registers_a_task_of_its_own():
    class QuantileTask(RegressionTask):
        """Predicts the 90th percentile: pinball loss, lower is better."""

        name = "kf_test_quantile"
        lower_is_better = ("loss", "pinball")

    try:
        register_task(QuantileTask())
        config = parse_config({"model": {"task": "kf_test_quantile"}})
        assert config.data.labels == "numbers"
        assert not higher_is_better("pinball")
        assert isinstance(choose_task("kf_test_quantile", num_classes=0, labels="numbers"), LearningTask)
    finally:
        TASKS.pop("kf_test_quantile", None)
