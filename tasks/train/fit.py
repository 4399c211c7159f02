"""Single-host training: build the recipe's model under the strategy and fit it.

Plain functions; the Prefect task in ``tasks/train/__init__.py`` only wires them up.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kerasflow.models import io, private_apis
from kerasflow.models.input_names import is_input_name
from kerasflow.models.number_block import block_columns, model_feed
from kerasflow.tasks import storage
from kerasflow.tasks.config import TrainConfig
from kerasflow.tasks.data import pipeline
from kerasflow.tasks.refs import DatasetRef, TrainedModel
from kerasflow.tasks.train.build import build_compiled_model
from kerasflow.tasks.train.plan import TrainingPlan, inputs_as_built, labels_as_compiled, learning_rate, make_plan

__all__ = [
    "build_compiled_model",
    "dataset_fn",
    "fit_model",
    "inputs_as_built",
    "labels_as_compiled",
    "learning_rate",
    "loop_model",
    "save_trained",
]
from kerasflow.tasks.train.strategy import build_strategy, describe, precision

SPLITS = ("train", "validation")


def dataset_fn(ref: DatasetRef, split: str, plan: TrainingPlan):
    """``dataset_fn(input_context)`` for ``split`` as training reads it, in one process or many.

    With several replicas the last partial global batch of an epoch is dropped, in
    training and in validation, so every replica of every worker runs the same number
    of full steps (collectives need that) and single-host and multi-worker training see
    the same batches. Training reshuffles every epoch, so no row is left out for good;
    validation leaves out at most ``global_batch - 1`` rows, and test metrics are
    computed separately on every row. (Keras 3.15 under MirroredStrategy also fails on
    a partial validation batch read from TFDS files: "input depth must be evenly
    divisible by filter depth" on replica 1.)

    The targets are encoded as the model was compiled for: one-hot labels for label
    smoothing (both splits), and on the training split class weights as sample weights,
    which is what ``fit(class_weight=...)`` does, so the loop applies them identically.
    A typed table's columns are keyed by the model's input names, the numbers as the model takes them
    (``model_feed``: one block, or one input per column for a model registered before the block).

    Args:
        ref: the stored dataset.
        split: ``train`` or ``validation``.
        plan: the training's plan: global batch, replicas, seed, shuffle buffer, cache, targets.
    """
    training = split == "train"
    base = pipeline.dataset_fn(
        ref,
        split,
        batch_size=plan.global_batch,
        shuffle=training,
        seed=plan.seed,
        shuffle_buffer=plan.shuffle_buffer,
        cache=plan.cache,
        drop_remainder=plan.replicas > 1,
        numbers_block=plan.numbers_block,
    )
    # A typed table's columns are read under their own names, the numbers as the model takes them (one block,
    # or one by one for a model registered before the block); the model takes the columns under its input names.
    types = ref.column_types or {}
    by_name = set(types) - set(block_columns(types)) if plan.numbers_block else set(types)
    fed = ref.typed and any(not is_input_name(column) for column in by_name)
    if plan.one_hot_classes is None and (plan.class_weights is None or not training) and not fed:
        return base
    weights = plan.class_weights if training else None

    def build(input_context: Any):
        import tensorflow as tf

        def targets(x, y):
            x = model_feed(x, types=types, block=plan.numbers_block) if fed else x
            out = tf.one_hot(tf.cast(y, tf.int32), plan.one_hot_classes) if plan.one_hot_classes else y
            if weights is None:
                return x, out
            return x, out, tf.gather(tf.constant(weights, tf.float32), tf.cast(y, tf.int32))

        return base(input_context).map(targets, num_parallel_calls=tf.data.AUTOTUNE)

    return build


def loop_model(model: Any, strategy: Any, ref: DatasetRef, *, callbacks: Sequence[Any], plan: TrainingPlan):
    """Train with the loop of ``loop.py`` on the splits as ``fit_model`` reads them; its History.

    The multi-worker path; under MirroredStrategy it computes what ``fit_model`` computes.

    Args:
        model: the compiled model, built under ``strategy``.
        strategy: the tf.distribute strategy it trains under.
        ref: the stored dataset.
        callbacks: Keras callbacks, called as ``fit`` calls them.
        plan: the training's plan (made for ``strategy``'s replicas).
    """
    from kerasflow.tasks.train import loop

    train_fn, validation_fn = (dataset_fn(ref, split, plan) for split in SPLITS)
    return loop.train_loop(
        model,
        strategy,
        train_fn=train_fn,
        validation_fn=validation_fn,
        epochs=plan.epochs,
        steps_per_epoch=ref.splits["train"] // plan.global_batch,
        validation_steps=ref.splits["validation"] // plan.global_batch,
        callbacks=callbacks,
    )


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras right before the model is built.

    Keras 3 draws the seeds of unseeded initializers from Python's global ``random``,
    which other threads of this process also draw from (Prefect's and the storage
    clients' retry jitter, among others). Seeding early and building later let such a
    draw slip in between and change the initial weights: the same data and seed then
    trained a different model, seen once as a gate rejection in the suite.
    """
    import keras

    keras.utils.set_random_seed(seed)


def fit_model(
    config: TrainConfig,
    ref: DatasetRef,
    *,
    run_id: str,
    run_dir: Path,
    callbacks: Sequence[Any],
    warm_start_version: int | None = None,
) -> TrainedModel:
    """Train with Keras's ``model.fit`` under the configured strategy (one process).

    Args:
        config: the recipe's config.
        ref: the stored dataset.
        run_id: the retraining run's id, recorded with the model.
        run_dir: the run's local folder, where the model is written.
        callbacks: Keras callbacks for ``fit`` (:func:`kerasflow.tasks.train.callbacks.standard_callbacks`).
        warm_start_version: the registered version to start from; None to build the model anew.
    """

    strategy = build_strategy(config.runtime)
    plan = make_plan(config, ref, replicas=strategy.num_replicas_in_sync)
    seed_everything(config.training.seed)
    with strategy.scope(), precision(config.runtime):
        model = build_compiled_model(config, ref, plan=plan, warm_start_version=warm_start_version)
    plan = inputs_as_built(model, labels_as_compiled(model, plan))

    train_ds, val_ds = (dataset_fn(ref, split, plan)(None) for split in SPLITS)
    if strategy.num_replicas_in_sync > 1:
        with strategy.scope():
            private_apis.build_before_fit(model, train_ds.element_spec)
    started = time.perf_counter()
    # shuffle=False: the input pipeline shuffles (seeded, every epoch); Keras would only warn
    # on every run that it ignores shuffle=True for a tf.data dataset.
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=plan.epochs,
        callbacks=list(callbacks),
        verbose=0,
        shuffle=False,
    )
    return save_trained(
        model,
        history.history,
        history.epoch,
        config=config,
        ref=ref,
        run_id=run_id,
        run_dir=run_dir,
        strategy=describe(strategy),
        replicas=strategy.num_replicas_in_sync,
        seconds=time.perf_counter() - started,
        warm_started_from=warm_start_version,
    )


def save_trained(
    model: Any,
    history: dict[str, list[float]],
    epochs_run: Sequence[int],
    *,
    config: TrainConfig,
    ref: DatasetRef,
    run_id: str,
    run_dir: Path,
    strategy: str,
    replicas: int,
    seconds: float,
    warm_started_from: int | None = None,
) -> TrainedModel:
    """Write ``model.keras``, ``saved_model/`` and ``metrics.json`` into the run folder.

    Args:
        model: the trained model.
        history: metric name -> one value per epoch run, as Keras's ``History.history``.
        epochs_run: the numbers of the epochs run, 0 up (after a resume, not from 0).
        config: the recipe's config.
        ref: the dataset trained on.
        run_id: the retraining run's id.
        run_dir: the run's local folder.
        strategy: the strategy's description, recorded with the model.
        replicas: replicas in sync (devices times workers).
        seconds: the training's duration, in seconds.
        warm_started_from: the registered version training started from; None when built anew.

    Returns:
        The record of the trained model, its URIs local paths in ``run_dir``.
    """
    first_epoch = epochs_run[0] if epochs_run else config.training.epochs
    run_dir.mkdir(parents=True, exist_ok=True)
    model_path = run_dir / "model.keras"
    sha256 = io.save_model(model, model_path)
    io.export_saved_model(model, run_dir / "saved_model", column_types=ref.column_types)
    curves = {k: [float(v) for v in values] for k, values in history.items()}
    (run_dir / "metrics.json").write_text(json.dumps({"history": curves, "first_epoch": first_epoch}, indent=2))
    return TrainedModel(
        run_id=run_id,
        model_uri=os.fspath(model_path),
        saved_model_uri=os.fspath(run_dir / "saved_model"),
        sha256=sha256,
        dataset_fingerprint=ref.fingerprint,
        epochs_completed=(epochs_run[-1] + 1) if epochs_run else first_epoch,
        initial_epoch=first_epoch,
        history=curves,
        strategy=strategy,
        replicas=replicas,
        global_batch_size=config.training.batch_size * replicas,
        train_seconds=round(seconds, 3),
        warm_started_from=warm_started_from,
    )


def publish_run(trained: TrainedModel, config: TrainConfig, *, write_result: bool = False) -> TrainedModel:
    """Upload the run folder when the root is remote; the returned ref then points there.

    With ``write_result`` the published ref is first written to ``result.json`` in the
    run folder, so it travels with the upload to a launcher on another machine.

    Args:
        trained: the record of the trained model, its URIs local.
        config: the recipe's config (``storage.root``).
        write_result: write the returned record to ``result.json`` in the run folder before the upload.
    """

    root = config.storage.root
    run_dir = storage.run_dir(root, trained.run_id)
    published = trained
    if not storage.is_local(root):
        run_url = storage.run_url(root, trained.run_id)
        uris = {
            "model_uri": storage.join(run_url, "model.keras"),
            "saved_model_uri": storage.join(run_url, "saved_model"),
        }
        published = trained.model_copy(update=uris)
    if write_result:
        (run_dir / "result.json").write_text(published.model_dump_json(indent=2))
    if not storage.is_local(root):
        storage.upload_dir(run_dir, storage.run_url(root, trained.run_id))
    return published
