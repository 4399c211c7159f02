"""The training plan: one frozen record of what a training does, from the config and the data.

Built once per training (in process, or in every worker from the same job), so that
single-host ``fit`` and the multi-worker loop see the same global batch, steps, learning
rate, class weights and label encoding (DESIGN.md: "Training builds one frozen plan").
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from kerasflow.models.number_block import takes_block
from kerasflow.tasks.config import ConfigError, TrainConfig
from kerasflow.tasks.config.training import AUTO_STEPS_PER_EXECUTION
from kerasflow.tasks.data.pipeline import load_batches
from kerasflow.tasks.data.row_memory import should_cache
from kerasflow.tasks.refs import DatasetRef


@dataclass(frozen=True)
class TrainingPlan:
    """Attributes:
    replicas: replicas in sync (devices times workers).
    global_batch: rows per step across every replica.
    steps_per_epoch: training steps of one epoch (what the learning-rate schedule counts).
    learning_rate: the recipe's, scaled by the replicas when runtime.scale_learning_rate.
    class_weights: one weight per class id for the training batches, or None.
    one_hot_classes: labels are fed one-hot over this many classes (label smoothing), or None.
    steps_per_execution: training steps per call of Keras's train function.
    epochs: passes over the training split.
    seed: the seed of the shuffles (and, through seed_everything, of the initial weights).
    shuffle_buffer: rows the training split is shuffled within, each epoch.
    cache: whether the splits' decoded examples are held in memory after the first epoch.
    numbers_block: a typed table's numbers are fed as one block (models/number_block.py); False for a model
        registered before it, warm started from.
    """

    replicas: int
    global_batch: int
    steps_per_epoch: int
    learning_rate: float
    class_weights: tuple[float, ...] | None = None
    one_hot_classes: int | None = None
    steps_per_execution: int = 1
    epochs: int = 1
    seed: int = 0
    shuffle_buffer: int = 10_000
    cache: bool = False
    numbers_block: bool = True


def make_plan(config: TrainConfig, ref: DatasetRef, *, replicas: int) -> TrainingPlan:
    """The plan of a training of ``config`` on ``ref`` over ``replicas`` replicas.

    Args:
        config: the recipe's config.
        ref: the dataset trained on; its training split's rows give the steps per epoch.
        replicas: replicas in sync (devices times workers).

    Raises:
        ConfigError: ``training.steps_per_execution`` is not ``auto`` or 1 under several replicas, or
            ``training.class_weight`` names a class the dataset does not have.
    """
    training = config.training
    global_batch = training.batch_size * replicas
    rows = ref.splits.get("train", 0)
    # Several replicas drop the last partial batch (tasks/train/fit.py), one keeps it.
    steps = rows // global_batch if replicas > 1 else math.ceil(rows / global_batch)
    num_classes = config.model.num_classes or ref.num_classes
    one_hot = num_classes if training.label_smoothing and num_classes > 2 else None
    return TrainingPlan(
        replicas=replicas,
        global_batch=global_batch,
        steps_per_epoch=max(1, steps),
        learning_rate=learning_rate(config, replicas),
        class_weights=class_weights(config, ref, num_classes=num_classes),
        one_hot_classes=one_hot,
        steps_per_execution=steps_per_execution(
            training.steps_per_execution, steps_per_epoch=max(1, steps), replicas=replicas
        ),
        epochs=training.epochs,
        seed=training.seed,
        shuffle_buffer=training.shuffle_buffer,
        cache=should_cache(ref, config.data.cache, epochs=training.epochs),
    )


def steps_per_execution(setting: int | str, *, steps_per_epoch: int, replicas: int) -> int:
    """training.steps_per_execution as a number: ``auto`` is AUTO_STEPS_PER_EXECUTION, at most an epoch.

    Several replicas run one step a call: Keras 3.15's multi-step train function fails
    under MirroredStrategy ("You must feed a value for placeholder tensor
    'while/cond/Placeholder_1'"), and a replica's step on a GPU is long enough that the
    call costs little beside it.

    Args:
        setting: the recipe's ``training.steps_per_execution``: a number or ``auto``.
        steps_per_epoch: training steps of one epoch; the result is at most this.
        replicas: replicas in sync.

    Raises:
        ConfigError: ``setting`` is neither ``auto`` nor 1 under several replicas.
    """
    if replicas > 1:
        if setting not in ("auto", 1):
            raise ConfigError(
                f"received training.steps_per_execution={setting} with {replicas} replicas, expected 'auto' or 1: "
                "Keras runs one step a call under MirroredStrategy"
            )
        return 1
    wanted = AUTO_STEPS_PER_EXECUTION if setting == "auto" else int(setting)
    return max(1, min(wanted, steps_per_epoch))


def learning_rate(config: TrainConfig, replicas: int) -> float:
    """The recipe's learning rate, times the replicas under the linear scaling rule (opt-in).

    Args:
        config: the recipe's config (``training.learning_rate``, ``runtime.scale_learning_rate``).
        replicas: replicas in sync.
    """
    scale = replicas if config.runtime.scale_learning_rate else 1
    return config.training.learning_rate * scale


def class_weights(config: TrainConfig, ref: DatasetRef, *, num_classes: int) -> tuple[float, ...] | None:
    """The recipe's class weights by class id: given by class name, or balanced from the training split.

    Args:
        config: the recipe's config (``training.class_weight``: None, ``balanced``, or class name -> weight).
        ref: the dataset; its class names, and its training split's counts for ``balanced``.
        num_classes: the classes the model predicts.

    Returns:
        One weight per class id (a class not named weighs 1); None without ``training.class_weight``.

    Raises:
        ConfigError: ``training.class_weight`` names a class the dataset does not have.
    """
    wanted = config.training.class_weight
    if wanted is None:
        return None
    names = list(ref.class_names[:num_classes])
    if wanted == "balanced":
        counts = train_label_counts(ref, num_classes=num_classes)
        total = sum(counts)
        # scikit-learn's "balanced": n / (classes * count); a class absent from training weighs 1.
        return tuple(total / (num_classes * count) if count else 1.0 for count in counts)
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise ConfigError(f"received training.class_weight for {unknown}, expected class names among {names}")
    return tuple(float(wanted.get(name, 1.0)) for name in names)


def train_label_counts(ref: DatasetRef, *, num_classes: int) -> list[int]:
    """Rows of each class in the training split, in one streaming pass.

    Args:
        ref: the dataset.
        num_classes: the classes counted; labels outside ``0..num_classes-1`` are not.
    """
    import numpy as np

    counts = np.zeros(num_classes, dtype=np.int64)
    for labels in load_batches(ref, "train", batch_size=65536, by_column=False).map(lambda x, y: y).as_numpy_iterator():
        counts += np.bincount(np.asarray(labels, dtype=np.int64).reshape(-1), minlength=num_classes)[:num_classes]
    return [int(c) for c in counts]


# Keras losses that take one-hot labels (by their names, underscores dropped, any case).
ONE_HOT_LOSSES = frozenset({"categoricalcrossentropy", "categoricalfocalcrossentropy", "categoricalhinge"})


def inputs_as_built(model: Any, plan: TrainingPlan) -> TrainingPlan:
    """The plan feeding a typed table's numbers as ``model`` takes them: one block, or one input per column.

    A model warm started from a version registered before the numbers block takes its columns one by one.

    Args:
        model: the model about to train.
        plan: the training's plan.
    """
    return dataclasses.replace(plan, numbers_block=takes_block(model))


def labels_as_compiled(model: Any, plan: TrainingPlan) -> TrainingPlan:
    """The plan feeding labels as the builder's own compiled loss takes them: one-hot for a categorical one.

    The Keras guide compiles with ``categorical_crossentropy`` over one-hot labels; stored
    labels are class ids, which that loss refuses ("target and output must have the same
    rank"). A model kerasflow compiled, or a loss of class ids, keeps the plan as it is.

    Args:
        model: the model about to train, compiled.
        plan: the training's plan.
    """
    if plan.one_hot_classes is not None or not getattr(model, "compiled", False):
        return plan
    loss = getattr(model, "loss", None)
    name = loss if isinstance(loss, str) else getattr(loss, "name", None) or getattr(loss, "__name__", "")
    shape = getattr(model, "output_shape", None)
    width = int(shape[-1]) if isinstance(shape, tuple) and shape and isinstance(shape[-1], int) else 0
    if str(name).replace("_", "").lower() in ONE_HOT_LOSSES and width >= 2:
        return dataclasses.replace(plan, one_hot_classes=width)
    return plan
