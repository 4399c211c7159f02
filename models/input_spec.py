"""What a builder is told about the data: the input spec of the builder contract.

A builder is ``build(*, input_spec, **params) -> keras.Model``. The spec comes from the
materialized dataset, so a builder never reads data: shapes, dtype, column names, the
class names and the task are all it needs to size its inputs and outputs. Learned
preprocessing (a ``Normalization`` or ``TextVectorization`` left un-adapted on a model
input) is adapted by kerasflow on the training split after the build.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputSpec:
    """The features a model receives and the outputs it must produce.

    Attributes:
        feature_shape: one example's shape, without the batch axis (``(8, 8, 1)``, ``(30,)``, ``()`` for text).
        feature_dtype: the features' dtype as the input pipeline feeds them (``float32``, ``string``).
        class_names: the labels in class-id order (empty for regression).
        task: the recipe's ``model.task``: ``multiclass``, ``binary``, ``regression`` or a team's own.
        columns: for tables, the feature column names in the order of the last axis.
        num_outputs: units of the output layer the task expects (one per class, one probability, one number).
        output_activation: its activation (``softmax``, ``sigmoid``, or None for a number).
        output_widths: the last-axis widths the model's output may have.
        target_mean, target_std: a regression target's mean and standard deviation on the
            training split, so a builder can put its output on the target's scale
            (``keras.layers.Rescaling(target_std, offset=target_mean)``); None for classifiers.
        column_types: for a typed table, its raw columns and their types (``{"amount":
            "float_normalized", "country": "string_categorical"}``). The builder then receives
            their encoding, one float vector of ``feature_shape`` whose entries ``columns``
            names (``amount``, ``country=de``, ``country=(other)`` ...); kerasflow puts the
            encoding in front of the builder's model, so the saved model takes the raw columns.
    """

    feature_shape: tuple[int, ...]
    feature_dtype: str
    class_names: tuple[str, ...]
    task: str
    num_outputs: int
    output_activation: str | None
    output_widths: tuple[int, ...]
    columns: tuple[str, ...] | None = None
    target_mean: float | None = None
    target_std: float | None = None
    column_types: tuple[tuple[str, str], ...] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)
