"""The training section names Keras's own objects; every mistake is refused before any work."""

from __future__ import annotations

import sys
import textwrap

import keras
import numpy as np
import pytest

from kerasflow.tasks.config import ConfigError, TrainConfig
from kerasflow.tasks.train import recipe_objects
from kerasflow.tasks.train.plan import make_plan
from tests.tasks.train.test_loop import digits


def training(**section):
    return TrainConfig.smoke(training=section).training


@pytest.fixture
def team_callbacks(tmp_path, monkeypatch):
    (tmp_path / "kf_team_callbacks.py").write_text(
        textwrap.dedent(
            """
            import keras

            class Count(keras.callbacks.Callback):
                pass

            def make():
                return Count()

            def wrong():
                return "not a callback"
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "kf_team_callbacks"
    sys.modules.pop("kf_team_callbacks", None)


@pytest.mark.parametrize(
    ("section", "match"),
    [
        (
            {"optimizer_params": {"momentun": 0.9}, "optimizer": "sgd"},
            r"\['momentun'\] that SGD does not take, .*'momentum'",
        ),
        ({"loss": "hubber"}, r"training.loss 'hubber'"),
        ({"loss": "kf_no_such_pkg.losses:Focal"}, r"'kf_no_such_pkg.losses' cannot be imported"),
        ({"metrics": ["auc", "recal"]}, r"training.metrics entry 'recal'"),
        ({"label_smoothing": 0.1, "loss": "huber"}, "label smoothing only with the task's default"),
        ({"schedule": {"kind": "cosine", "min_learning_rate": 0.01}, "learning_rate": 0.001}, "expected less than"),
    ],
)
def test_a_training_section_that_does_not_resolve_is_refused(section, match):
    with pytest.raises(ConfigError, match=match):
        recipe_objects.check_training(training(**section))


def test_unknown_optimizers_and_bad_weights_are_refused_when_the_recipe_is_read():
    with pytest.raises(ConfigError, match=r"training.optimizer: .*'nadam'"):
        TrainConfig.smoke(training={"optimizer": "adamm"})
    with pytest.raises(ConfigError, match="expected every weight > 0"):
        TrainConfig.smoke(training={"class_weight": {"0": 0.0}})


def test_callbacks_by_import_path(team_callbacks):
    callbacks = recipe_objects.schedule_callbacks(training(callbacks=[f"{team_callbacks}:make"]))
    assert [type(c).__name__ for c in callbacks] == ["Count"]
    with pytest.raises(ConfigError, match=r"returned a str, expected a keras.callbacks.Callback"):
        recipe_objects.check_training(training(callbacks=[f"{team_callbacks}:wrong"]))
    plateau = recipe_objects.schedule_callbacks(training(schedule={"kind": "reduce_on_plateau", "patience": 1}))
    assert isinstance(plateau[0], keras.callbacks.ReduceLROnPlateau) and plateau[0].patience == 1


def test_the_optimizer_and_schedule_are_keras_own_with_the_recipes_parameters():
    section = training(
        optimizer="nadam",
        optimizer_params={"weight_decay": 0.01, "clipnorm": 1.0},
        learning_rate=0.01,
        epochs=10,
        schedule={"kind": "cosine", "warmup_epochs": 2, "min_learning_rate": 0.001},
    )
    rate = recipe_objects.learning_rate_schedule(section, learning_rate=0.01, steps_per_epoch=5)
    optimizer = recipe_objects.optimizer(section, learning_rate=rate)
    assert isinstance(optimizer, keras.optimizers.Nadam)
    assert optimizer.weight_decay == 0.01 and optimizer.clipnorm == 1.0
    assert isinstance(rate, keras.optimizers.schedules.CosineDecay)
    values = [float(rate(step)) for step in (0, 5, 10, 30, 50)]
    assert values[0] == 0.0 and values[1] == pytest.approx(0.005) and values[2] == pytest.approx(0.01)
    assert values[2] > values[3] > values[4] == pytest.approx(0.001)  # warm-up over 10 steps, then decay to the floor


def test_balanced_class_weights_come_from_the_training_split(root):
    config, ref = digits(root, training={"class_weight": "balanced"})
    plan = make_plan(config, ref, replicas=1)
    from kerasflow.tasks.train.plan import train_label_counts

    counts = np.array(train_label_counts(ref, num_classes=10))
    assert counts.sum() == ref.splits["train"]
    np.testing.assert_allclose(plan.class_weights, counts.sum() / (10 * counts))
    with pytest.raises(ConfigError, match=r"class_weight for \['eleven'\], expected class names"):
        make_plan(digits(root, training={"class_weight": {"eleven": 2.0}})[0], ref, replicas=1)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"early_stopping": {"enabled": True, "monitor": "val_auc"}},
            r"received training.early_stopping.monitor='val_auc', which a multiclass model does not report; "
            r"expected one of \['accuracy', 'loss', 'val_accuracy', 'val_loss'\]",
        ),
        (
            {"schedule": {"kind": "reduce_on_plateau", "monitor": "val_precision"}},
            r"received training.schedule.monitor='val_precision'",
        ),
    ],
    ids=["early stopping", "plateau schedule"],
)
def test_a_monitor_the_model_does_not_report_is_refused_before_training(root, section, message):
    # fraud_tabular's val_auc on a label of many classes: Keras failed after the first epoch, about mode='max'.
    config, ref = digits(root, training={"epochs": 1, **section})
    with pytest.raises(ConfigError, match=message):
        recipe_objects_model(config, ref)


def test_a_monitor_of_a_recipe_metric_is_taken(root):
    stopping = {"enabled": True, "monitor": "val_auc"}
    config, ref = digits(root, training={"epochs": 1, "metrics": ["AUC"], "early_stopping": stopping})
    assert recipe_objects_model(config, ref).compiled


def recipe_objects_model(config, ref):
    from kerasflow.tasks.train.build import build_compiled_model

    keras.backend.clear_session()  # the recipe's AUC is named "auc", not "auc_1" after an earlier one
    return build_compiled_model(config, ref)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (  # a regression target reports no AUC, whatever its data
            {"data": {"labels": "numbers"}, "training": {"early_stopping": {"enabled": True, "monitor": "val_auc"}}},
            r"early_stopping.monitor='val_auc', which a regression model does not report",
        ),
        (  # three classes named in the recipe: multiclass
            {
                "data": {"classes": ["a", "b", "c"]},
                "training": {"schedule": {"kind": "reduce_on_plateau", "monitor": "val_recall"}},
            },
            r"schedule.monitor='val_recall', which a multiclass model does not report",
        ),
        (  # a misspelt name no classifier reports
            {"training": {"early_stopping": {"enabled": True, "monitor": "val_acuracy"}}},
            r"'val_acuracy', which a binary or multiclass model does not report; expected one of \[.*'val_auc'",
        ),
    ],
    ids=["regression", "classes named", "misspelt"],
)
def test_a_monitor_no_reachable_task_reports_is_refused_before_any_work(overrides, message):
    from kerasflow.tasks.train.build import check_definition

    with pytest.raises(ConfigError, match=message):
        check_definition(TrainConfig.smoke(**overrides))


def test_a_monitor_only_the_datas_task_can_tell_is_checked_once_the_data_is_known(root):
    from kerasflow.tasks.train.build import check_definition, check_monitors

    # val_auc: a binary label reports it; the digits' ten classes (multiclass) do not.
    config, ref = digits(root, training={"epochs": 1, "early_stopping": {"enabled": True, "monitor": "val_auc"}})
    check_definition(config)
    with pytest.raises(ConfigError, match=r"'val_auc', which a multiclass model does not report"):
        check_monitors(config, ref)
    check_monitors(config.with_overrides(["training.early_stopping.monitor=val_accuracy"]), ref)


def test_a_teams_builder_may_compile_its_own_metrics_so_its_monitor_is_checked_once_built(tmp_path, monkeypatch):
    from kerasflow.tasks.train.build import check_definition

    (tmp_path / "kf_team_compiled.py").write_text(
        textwrap.dedent(
            """
            import keras

            def build(input_spec):
                inputs = keras.Input(input_spec.feature_shape)
                model = keras.Model(inputs, keras.layers.Dense(input_spec.num_classes)(keras.layers.Flatten()(inputs)))
                model.compile(loss="sparse_categorical_crossentropy", metrics=[keras.metrics.F1Score(name="f1")])
                return model
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        stopping = {"enabled": True, "monitor": "val_f1"}
        check_definition(
            TrainConfig.smoke(model={"builder": "kf_team_compiled:build"}, training={"early_stopping": stopping})
        )
    finally:
        sys.modules.pop("kf_team_compiled", None)
