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

import numpy as np

from models import io, zoo
from tasks.config import TrainConfig
from tasks.ingest.pipeline import load_split, make_dataset
from tasks.refs import DatasetRef, TrainedModel
from tasks.train.strategy import build_strategy, describe


def model_params(config: TrainConfig, ref: DatasetRef) -> dict[str, Any]:
    """The builder's keyword arguments: what the data implies, then the recipe's own.

    Shapes and class counts come from the data so a recipe need not repeat them; models
    with learned preprocessing get it from the training split (vocabulary, feature
    statistics). Explicit recipe params win.
    """
    family = config.model.family
    num_classes = config.model.num_classes or ref.num_classes
    derived: dict[str, Any]
    if family == "imdb_text":
        texts = load_split(ref, "train").map(lambda x, y: x).batch(1024)
        max_tokens = int(config.model.params.get("max_tokens", 10_000))
        derived = {"vocabulary": zoo.text_vocabulary(texts, max_tokens=max_tokens)}
    elif family == "fraud_tabular":
        features = np.concatenate([x for x, _ in load_split(ref, "train").batch(4096).as_numpy_iterator()])
        derived = {
            "num_features": int(features.shape[1]),
            "mean": features.mean(axis=0).tolist(),
            "variance": features.var(axis=0).tolist(),
        }
    else:
        derived = {"input_shape": list(ref.feature_shape), "num_classes": num_classes}
    return {**derived, **config.model.params}


def build_compiled_model(config: TrainConfig, ref: DatasetRef, params: dict[str, Any]):
    """The recipe's model, compiled with the task's loss and metrics (call under a scope)."""
    model = zoo.build(config.model.family, **params)
    return zoo.compile_model(
        model,
        num_classes=config.model.num_classes or ref.num_classes,
        learning_rate=config.training.learning_rate,
        optimizer=config.training.optimizer,
    )


def fit_model(
    config: TrainConfig,
    ref: DatasetRef,
    *,
    run_id: str,
    run_dir: Path,
    callbacks: Sequence[Any],
) -> TrainedModel:
    """Train under the configured strategy; write ``model.keras`` and ``metrics.json``."""
    import keras

    keras.utils.set_random_seed(config.training.seed)
    strategy = build_strategy(config.runtime)
    global_batch = config.training.batch_size * strategy.num_replicas_in_sync
    params = model_params(config, ref)
    with strategy.scope():
        model = build_compiled_model(config, ref, params)

    train_ds = make_dataset(
        ref,
        "train",
        batch_size=global_batch,
        shuffle=True,
        seed=config.training.seed,
        shuffle_buffer=config.training.shuffle_buffer,
        cache=config.data.cache,
    )
    # Keras 3.15 under MirroredStrategy fails on a partial last validation batch read from
    # TFDS files ("input depth must be evenly divisible by filter depth" on replica 1; the
    # same tensors from memory work). With several replicas validation drops that batch:
    # at most global_batch - 1 examples per epoch. Test metrics are computed separately,
    # on every example.
    val_ds = make_dataset(
        ref,
        "validation",
        batch_size=global_batch,
        cache=config.data.cache,
        drop_remainder=strategy.num_replicas_in_sync > 1,
    )
    started = time.perf_counter()
    history = model.fit(
        train_ds, validation_data=val_ds, epochs=config.training.epochs, callbacks=list(callbacks), verbose=0
    )
    seconds = time.perf_counter() - started
    first_epoch = history.epoch[0] if history.epoch else config.training.epochs

    run_dir.mkdir(parents=True, exist_ok=True)
    model_path = run_dir / "model.keras"
    sha256 = io.save_model(model, model_path)
    io.export_saved_model(model, run_dir / "saved_model")
    curves = {k: [float(v) for v in values] for k, values in history.history.items()}
    (run_dir / "metrics.json").write_text(json.dumps({"history": curves, "first_epoch": first_epoch}, indent=2))
    return TrainedModel(
        run_id=run_id,
        model_uri=os.fspath(model_path),
        saved_model_uri=os.fspath(run_dir / "saved_model"),
        sha256=sha256,
        dataset_fingerprint=ref.fingerprint,
        epochs_completed=(history.epoch[-1] + 1) if history.epoch else first_epoch,
        initial_epoch=first_epoch,
        history=curves,
        strategy=describe(strategy),
        replicas=strategy.num_replicas_in_sync,
        global_batch_size=global_batch,
        train_seconds=round(seconds, 3),
    )
