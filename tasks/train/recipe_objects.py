"""The Keras objects a recipe names: loss, metrics, optimizer, schedule, callbacks.

Each is a Keras name (``"huber"``, ``"nadam"``, ``"auc"``) or an import path of the team's
own code (``"mypackage.losses:FocalLoss"``), resolved here and nowhere else, into Keras's
own objects: ``keras.losses.get``, ``keras.metrics.get``, ``keras.optimizers.get``,
``keras.optimizers.schedules.CosineDecay``, ``keras.callbacks.ReduceLROnPlateau``. Nothing
is written by hand, so ``model.fit`` and the multi-worker loop (which calls the model's
own ``train_step``) train with exactly the same objects.

:func:`check_training` runs before any work and turns every mistake into one
``ConfigError`` (exit 2, never retried).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from kerasflow.models import builders
from kerasflow.tasks.config import ConfigError, TrainingConfig


def import_object(reference: str, *, what: str) -> Any:
    """``package.module:name`` -> the object, or a ConfigError naming what is missing.

    Args:
        reference: ``package.module:name``.
        what: the recipe key that gave it, for the message (``training.loss``).

    Raises:
        ConfigError: the reference is malformed, its module cannot be imported, or the module lacks the name.
    """
    try:
        return builders.import_reference(reference, what=what, expected="a Keras name or 'package.module:name'")
    except builders.BuilderError as error:
        raise ConfigError(str(error)) from None


def _keras_or_imported(reference: str, *, what: str, get: Any) -> Any:
    if ":" in reference:
        found = import_object(reference, what=what)
        return found() if inspect.isclass(found) else found
    try:
        return get(reference)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"received {what} {reference!r}: {error}") from None


def custom_loss(training: TrainingConfig) -> Any | None:
    """The recipe's loss as a Keras object, or None for the task's default.

    Raises:
        ConfigError: ``training.loss`` is neither a Keras loss nor an importable one.
    """
    import keras

    if training.loss is None:
        return None
    return _keras_or_imported(training.loss, what="training.loss", get=keras.losses.get)


def extra_metrics(training: TrainingConfig) -> list[Any]:
    """The recipe's metrics, measured beside the task's own.

    Raises:
        ConfigError: an entry is neither a Keras metric nor an importable one.
    """
    import keras

    return [_keras_or_imported(name, what="training.metrics entry", get=keras.metrics.get) for name in training.metrics]


def check_monitored(training: TrainingConfig, *, reported: Sequence[str], task: str) -> None:
    """Refuse a monitor the model will not report (Keras fails only after the first epoch, without the fix).

    Args:
        training: the recipe's ``training`` section (early stopping's and the plateau schedule's monitors).
        reported: the names the compiled model reports each epoch: ``loss`` and its metrics' names;
            each is reported on the validation split too, as ``val_<name>``.
        task: the learning task, named in the error.

    Raises:
        ConfigError: an enabled monitor is none of the reported names.
    """
    names = sorted({*reported, *(f"val_{name}" for name in reported)})
    watched = (
        ("training.early_stopping.monitor", training.early_stopping.monitor, training.early_stopping.enabled),
        ("training.schedule.monitor", training.schedule.monitor, training.schedule.kind == "reduce_on_plateau"),
    )
    for key, monitor, enabled in watched:
        if enabled and monitor not in names:
            raise ConfigError(
                f"received {key}={monitor!r}, which a {task} model does not report; expected one of {names}: set "
                f"{key} to one of them, or add the metric to training.metrics"
            )


def learning_rate_schedule(training: TrainingConfig, *, learning_rate: float, steps_per_epoch: int) -> Any:
    """The optimizer's learning rate: a float, or Keras's CosineDecay with linear warm-up.

    Args:
        training: the recipe's ``training`` section (``schedule``, ``epochs``).
        learning_rate: the peak learning rate (after any scaling by the replicas).
        steps_per_epoch: training steps of one epoch; the schedule counts steps.
    """
    import keras

    schedule = training.schedule
    if schedule.kind != "cosine":
        return learning_rate
    total = max(1, steps_per_epoch * training.epochs)
    warmup = min(total - 1, steps_per_epoch * schedule.warmup_epochs)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else learning_rate,
        decay_steps=max(1, total - warmup),
        alpha=schedule.min_learning_rate / learning_rate,
        warmup_target=learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def optimizer(training: TrainingConfig, *, learning_rate: Any) -> Any:
    """Keras's optimizer of that name, with the recipe's parameters.

    Args:
        training: the recipe's ``training`` section (``optimizer``, ``optimizer_params``).
        learning_rate: a float, or a Keras learning-rate schedule.

    Raises:
        ConfigError: the optimizer refuses ``training.optimizer_params``.
    """
    import keras

    config = {**training.optimizer_params, "learning_rate": learning_rate}
    try:
        return keras.optimizers.get({"class_name": training.optimizer, "config": config})
    except (TypeError, ValueError) as error:
        raise ConfigError(f"received training.optimizer_params {training.optimizer_params}: {error}") from None


def schedule_callbacks(training: TrainingConfig) -> list[Any]:
    """Keras's ReduceLROnPlateau when the schedule asks for it, then the recipe's own callbacks.

    Raises:
        ConfigError: a ``training.callbacks`` entry cannot be imported, or does not return a Keras callback.
    """
    import keras

    callbacks = []
    schedule = training.schedule
    if schedule.kind == "reduce_on_plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=schedule.monitor,
                factor=schedule.factor,
                patience=schedule.patience,
                min_lr=schedule.min_learning_rate,
                verbose=0,
            )
        )
    for reference in training.callbacks:
        factory = import_object(reference, what="training.callbacks entry")
        callback = factory()
        if not isinstance(callback, keras.callbacks.Callback):
            raise ConfigError(
                f"received training.callbacks entry {reference!r}, which returned a {type(callback).__name__}, "
                "expected a keras.callbacks.Callback"
            )
        callbacks.append(callback)
    return callbacks


def check_training(training: TrainingConfig) -> None:
    """Resolve everything the training section names, so a mistake fails before any work.

    Raises:
        ConfigError: naming the first key whose value does not resolve, or two settings that conflict.
    """
    import keras

    cls = type(keras.optimizers.get(training.optimizer))
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs", "learning_rate"}
    unknown = sorted(set(training.optimizer_params) - accepted)
    if unknown:
        raise ConfigError(
            f"received training.optimizer_params {unknown} that {cls.__name__} does not take, "
            f"expected any of {sorted(accepted)}"
        )
    optimizer(training, learning_rate=training.learning_rate)
    custom_loss(training)
    extra_metrics(training)
    schedule_callbacks(training)
    if training.schedule.kind == "cosine" and training.schedule.min_learning_rate >= training.learning_rate:
        raise ConfigError(
            f"received training.schedule.min_learning_rate={training.schedule.min_learning_rate}, "
            f"expected less than training.learning_rate={training.learning_rate}"
        )
    if training.label_smoothing and training.loss is not None:
        raise ConfigError(
            "received training.label_smoothing with training.loss, expected label smoothing only with the "
            "task's default cross-entropy (set it on your own loss instead)"
        )
