"""What a builder is told about the data: the input spec of the builder contract.

A builder is ``build(*, input_spec, **params) -> keras.Model``. The spec comes from the
materialized dataset, so a builder never reads data: shapes, dtype, column names, the
class names and the task are all it needs to size its inputs and outputs. Learned
preprocessing (a ``Normalization`` or ``TextVectorization`` left un-adapted on a model
input) is adapted by kerasflow on the training split after the build.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Task = Literal["multiclass", "binary", "regression"]


@dataclass(frozen=True)
class InputSpec:
    """The features a model receives and the outputs it must produce.

    Attributes:
        feature_shape: one example's shape, without the batch axis (``(8, 8, 1)``, ``(30,)``, ``()`` for text).
        feature_dtype: the features' dtype as the input pipeline feeds them (``float32``, ``string``).
        class_names: the labels in class-id order (empty for regression).
        task: ``multiclass``, ``binary`` or ``regression``.
        columns: for tables, the feature column names in the order of the last axis.
    """

    feature_shape: tuple[int, ...]
    feature_dtype: str
    class_names: tuple[str, ...]
    task: Task
    columns: tuple[str, ...] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_outputs(self) -> int:
        """Units of the output layer: one per class, one for a binary probability or a regression target."""
        return self.num_classes if self.task == "multiclass" else 1
