"""The training section of the config tree: epochs, batches, optimizer, loss, schedule, callbacks.

Its Keras names and import paths are resolved in kerasflow/tasks/train/recipe_objects.py,
before any work; here they are only shaped and bounded. Re-exported by tasks/config/__init__.py.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from kerasflow.models.registry import validate_name
from kerasflow.tasks.config.runtime import ConfigSection as _Section


class EarlyStoppingConfig(_Section):
    enabled: bool = True
    monitor: str = "val_loss"
    patience: int = Field(3, ge=0)
    min_delta: float = 0.0


# Keras's optimizers by the names keras.optimizers.get knows; their parameters are checked
# against the class's signature before any work (kerasflow/tasks/train/recipe_objects.py).
OPTIMIZERS = (
    "adadelta", "adafactor", "adagrad", "adam", "adamax", "adamw", "ftrl", "lamb", "lion", "nadam", "rmsprop", "sgd",
)  # fmt: skip


class ScheduleConfig(_Section):
    """How the learning rate moves: Keras's own schedules and callbacks, never one written here."""

    kind: Literal["constant", "cosine", "reduce_on_plateau"] = Field(
        "constant",
        description="cosine: keras.optimizers.schedules.CosineDecay with linear warm-up; "
        "reduce_on_plateau: keras.callbacks.ReduceLROnPlateau",
    )
    warmup_epochs: int = Field(0, ge=0, description="cosine: epochs of linear warm-up from 0 to the learning rate")
    min_learning_rate: float = Field(0.0, ge=0, description="cosine: the floor it decays to; plateau: min_lr")
    factor: float = Field(0.5, gt=0, lt=1, description="reduce_on_plateau: the learning rate is multiplied by this")
    patience: int = Field(2, ge=0, description="reduce_on_plateau: epochs without improvement before a reduction")
    monitor: str = Field("val_loss", description="reduce_on_plateau: the metric watched")


# Keras calls back into Python after every step by default, and a callback with a batch
# hook (TensorBoard's, the NaN guard) makes it wait for the step's metrics there: on a
# small model that wait is most of the step (a table of 30 columns: 9.7 s an epoch of
# 1,367 steps, 6.8 s at 32 steps a call; issue 14).
AUTO_STEPS_PER_EXECUTION = 32


class TrainingConfig(_Section):
    """The training definition: epochs, batches, optimizer, loss, metrics, weights, schedule, callbacks."""

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1, description="per replica; the global batch is this times the replicas")
    learning_rate: float = Field(1e-3, gt=0)
    optimizer: Literal[OPTIMIZERS] = "adam"  # type: ignore[valid-type]
    optimizer_params: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments of the optimizer: weight_decay, momentum, clipnorm, ..."
    )
    loss: str | None = Field(
        None, description="a Keras loss name or 'package.module:name'; default: the task's (cross-entropy)"
    )
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="for the task's default cross-entropy loss")
    metrics: list[str] = Field(
        default_factory=list, description="Keras metric names or import paths, measured beside the task's own"
    )
    class_weight: Literal["balanced"] | dict[str, float] | None = Field(
        None, description="'balanced' (n / (classes * count)) or class name -> weight; applied to training batches"
    )
    schedule: ScheduleConfig = ScheduleConfig()
    callbacks: list[str] = Field(
        default_factory=list, description="'package.module:factory' returning a keras.callbacks.Callback"
    )
    warm_start: str = Field(
        "none",
        description="none, an alias (production) or a version number: start from that registered model's weights "
        "when it was built by the same builder with the same params (a first run with no such model starts cold)",
    )
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    shuffle_buffer: int = Field(10_000, ge=1)
    steps_per_execution: int | Literal["auto"] = Field(
        "auto",
        description="training steps run per call into TensorFlow (Keras's compile argument); batch-level callbacks "
        f"see every Nth batch; auto: {AUTO_STEPS_PER_EXECUTION}, at most an epoch's steps; 1: every batch "
        "(several replicas always run one step a call)",
    )
    seed: int = 0

    @field_validator("warm_start")
    @classmethod
    def _warm_start(cls, value: str) -> str:
        if value != "none" and not value.isdigit():
            validate_name(value, what="training.warm_start alias")
        return value

    @field_validator("steps_per_execution")
    @classmethod
    def _positive_steps(cls, value: Any) -> Any:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"received steps_per_execution={value}, expected 'auto' or a whole number >= 1")
        return value

    @field_validator("class_weight")
    @classmethod
    def _positive_weights(cls, value: Any) -> Any:
        if isinstance(value, dict) and any(weight <= 0 for weight in value.values()):
            raise ValueError(f"received class weights {value}, expected every weight > 0")
        return value
