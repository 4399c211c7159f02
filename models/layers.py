"""kerasflow's own Keras layers: what a typed table's encoding needs that Keras has no layer for.

Registered with Keras's serialization registry under the package ``kerasflow``, which the
model loader always trusts (models/io.py), so a saved model that uses them loads under
``safe_mode=True``. Their state is their config (plain floats): no weights, no code.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerasflow")
class FillMissing(keras.layers.Layer):
    """Replace NaN, column by column, with fixed values (the training split's means).

    Input ``(batch, k)`` floats; ``values`` has one number per column.
    """

    def __init__(self, values: list[float], **kwargs: Any):
        super().__init__(**kwargs)
        self.values = [float(v) for v in values]

    def call(self, inputs):
        fill = ops.cast(ops.convert_to_tensor(self.values), inputs.dtype)
        return ops.where(ops.isnan(inputs), fill, inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "values": self.values}


@keras.saving.register_keras_serializable(package="kerasflow")
class MissingIndicator(keras.layers.Layer):
    """1.0 where a value is missing (NaN), else 0.0: ``(batch, k)`` in, ``(batch, k)`` out."""

    def call(self, inputs):
        return ops.cast(ops.isnan(inputs), "float32")

    def compute_output_shape(self, input_shape):
        return input_shape
