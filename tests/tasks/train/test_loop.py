"""The multi-worker loop computes what Keras's fit computes, in one process (two processes: test_multiworker)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kerasflow.models.private_apis import mirrored_strategy
from kerasflow.tasks.config import TrainConfig
from kerasflow.tasks.data import materialize
from kerasflow.tasks.ingest.sources import fingerprint, identify, load_source
from kerasflow.tasks.train import fit
from kerasflow.tasks.train.callbacks import TerminateOnNaN, TrainingDivergedError
from kerasflow.tasks.train.plan import make_plan

GLOBAL_BATCH = 64  # 32 per replica on two logical CPUs


def digits(root, **overrides) -> tuple[TrainConfig, object]:
    config = TrainConfig.smoke(storage={"root": str(root)}, **overrides)
    identity = identify(config.data)
    ref = materialize.find_materialized(str(root), fingerprint(identity)) or materialize.materialize(
        load_source(config.data, identity), str(root)
    )
    return config, ref


def mirrored_model(config, ref):
    keras.utils.set_random_seed(config.training.seed)
    # kerasflow's MirroredStrategy: its collectives keyed apart from the other tests' models.
    strategy = mirrored_strategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = fit.build_compiled_model(config, ref, replicas=2)
    return strategy, model


def run_loop(config, ref, *, callbacks=()):
    strategy, model = mirrored_model(config, ref)
    plan = make_plan(config, ref, replicas=strategy.num_replicas_in_sync)
    return model, fit.loop_model(model, strategy, ref, callbacks=callbacks, plan=plan)


# The recipe's training definition, beyond the defaults: class weights (sample weights on the
# training batches), label smoothing (one-hot labels), Nadam with weight decay and clipping,
# and cosine decay after a one-epoch warm-up: the loop must train exactly what fit trains.
DEFINED = {
    "epochs": 3,
    "class_weight": {"0": 3.0, "1": 0.5, "7": 2.0},
    "label_smoothing": 0.1,
    "optimizer": "nadam",
    "optimizer_params": {"weight_decay": 0.004, "clipnorm": 1.0},
    "learning_rate": 0.003,
    "schedule": {"kind": "cosine", "warmup_epochs": 1, "min_learning_rate": 0.0001},
}


@pytest.mark.parametrize("training", [{"epochs": 3}, DEFINED], ids=["defaults", "weighted-smoothed-scheduled"])
def test_the_loop_matches_fit_under_mirrored_strategy_weight_for_weight(root, training):
    # The digits CNN with dropout, 3 epochs with validation, same seed and data.
    config, ref = digits(root, training=training)
    plan = make_plan(config, ref, replicas=2)
    _, model = mirrored_model(config, ref)
    assert plan.global_batch == GLOBAL_BATCH
    train_ds, val_ds = (fit.dataset_fn(ref, s, plan)(None) for s in fit.SPLITS)
    fitted = model.fit(train_ds, validation_data=val_ds, epochs=3, verbose=0)
    expected = model.get_weights()

    looped_model, looped = run_loop(config, ref)

    for a, b in zip(expected, looped_model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert looped.history.keys() == fitted.history.keys() == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for name, values in fitted.history.items():
        np.testing.assert_allclose(looped.history[name], values, rtol=1e-6)
    assert fitted.history["val_accuracy"][-1] > 0.5, "it learned: the comparison is not between two untrained models"


def test_the_loop_honours_early_stopping_and_the_nan_guard(root):
    config, ref = digits(root, training={"epochs": 6})
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)  # no epoch improves by 10
    _, history = run_loop(config, ref, callbacks=[stopper])
    assert history.epoch == [0, 1], "stopped after the first epoch that did not improve"

    diverging, ref = digits(root, training={"epochs": 2, "learning_rate": 1e12, "optimizer": "sgd"})
    with pytest.raises(TrainingDivergedError, match="training diverged: loss is nan at epoch 1"):
        run_loop(diverging, ref, callbacks=[TerminateOnNaN(learning_rate=1e12)])
