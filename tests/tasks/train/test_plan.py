"""The training plan: what a training does, from the config and the data."""

from __future__ import annotations

import pytest

from kerasflow.tasks.config import ConfigError, TrainConfig
from kerasflow.tasks.config.training import AUTO_STEPS_PER_EXECUTION
from kerasflow.tasks.refs import DatasetRef
from kerasflow.tasks.train.plan import make_plan


def table_ref(train_rows: int) -> DatasetRef:
    return DatasetRef(
        fingerprint="0" * 16,
        storage_root="/nowhere",
        uri="/nowhere/datasets/" + "0" * 16,
        source="files",
        splits={"train": train_rows, "validation": 10, "test": 10},
        feature_key="features",
        label_key="label",
        feature_shape=(4,),
        feature_dtype="float32",
        num_classes=2,
        class_names=["no", "yes"],
    )


@pytest.mark.parametrize(
    ("setting", "train_rows", "expected"),
    [
        ("auto", 64 * 1000, AUTO_STEPS_PER_EXECUTION),
        ("auto", 64 * 5, 5),  # never more than an epoch's steps
        (8, 64 * 1000, 8),
        (1, 64 * 1000, 1),
    ],
)
def test_steps_per_execution_is_auto_or_a_number_within_an_epoch(setting, train_rows, expected):
    config = TrainConfig.smoke(training={"batch_size": 64, "steps_per_execution": setting})
    assert make_plan(config, table_ref(train_rows), replicas=1).steps_per_execution == expected


@pytest.mark.parametrize("setting", [0, -3, "many"])
def test_steps_per_execution_refuses_what_is_not_a_step_count(setting):
    with pytest.raises(ConfigError, match=r"training\.steps_per_execution"):
        TrainConfig.smoke(training={"steps_per_execution": setting})


def test_several_replicas_run_one_step_a_call():
    ref = table_ref(64 * 1000)
    assert make_plan(TrainConfig.smoke(training={"batch_size": 32}), ref, replicas=2).steps_per_execution == 1
    with pytest.raises(ConfigError, match=r"steps_per_execution=8 with 2 replicas, expected 'auto' or 1"):
        make_plan(TrainConfig.smoke(training={"batch_size": 32, "steps_per_execution": 8}), ref, replicas=2)


def test_the_plan_carries_everything_the_input_pipeline_reads():
    config = TrainConfig.smoke(
        training={"batch_size": 16, "epochs": 4, "seed": 9, "shuffle_buffer": 123}, data={"cache": "memory"}
    )
    plan = make_plan(config, table_ref(16 * 50), replicas=2)
    assert (plan.global_batch, plan.replicas, plan.epochs, plan.seed, plan.shuffle_buffer, plan.cache) == (
        32, 2, 4, 9, 123, True
    )  # fmt: skip
    assert make_plan(TrainConfig.smoke(data={"cache": "none"}), table_ref(640), replicas=1).cache is False
