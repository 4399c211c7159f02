"""kerasflow's own Keras layers: what a typed table's encoding needs that Keras has no layer for.

Registered with Keras's serialization registry under the package ``kerasflow``, which the
model loader always trusts (models/io.py), so a saved model that uses them loads under
``safe_mode=True``. Their state is their config (plain numbers): no weights, no code.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerasflow")
class FillMissing(keras.layers.Layer):
    """Replace NaN, column by column, with fixed values (the training split's means).

    Input ``(batch, k)`` floats; ``values`` has one number per column.

    Args:
        values: the fill of each column, in column order.
        **kwargs: passed to ``keras.layers.Layer`` (``name``, ``dtype``).
    """

    def __init__(self, values: list[float], **kwargs: Any):
        super().__init__(**kwargs)
        self.values = [float(v) for v in values]

    def call(self, inputs):
        """The inputs with each NaN replaced by its column's value.

        Args:
            inputs: a ``(batch, k)`` float tensor.
        """
        fill = ops.cast(ops.convert_to_tensor(self.values), inputs.dtype)
        return ops.where(ops.isnan(inputs), fill, inputs)

    def compute_output_shape(self, input_shape):
        """The input's shape.

        Args:
            input_shape: the input's shape, ``(batch, k)``.
        """
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "values": self.values}


@keras.saving.register_keras_serializable(package="kerasflow")
class MissingIndicator(keras.layers.Layer):
    """1.0 where a value is missing (NaN), else 0.0: ``(batch, k)`` in, ``(batch, k)`` out."""

    def call(self, inputs):
        """1.0 where the inputs are NaN, else 0.0, as float32.

        Args:
            inputs: a ``(batch, k)`` float tensor.
        """
        return ops.cast(ops.isnan(inputs), "float32")

    def compute_output_shape(self, input_shape):
        """The input's shape.

        Args:
            input_shape: the input's shape, ``(batch, k)``.
        """
        return input_shape


@keras.saving.register_keras_serializable(package="kerasflow")
class StackColumns(keras.layers.Layer):
    """Several columns, each ``(batch,)``, as one ``(batch, k)`` tensor: one op, not a reshape per column."""

    def call(self, inputs):
        """The columns stacked along a new last axis, as float32.

        Args:
            inputs: a list of ``k`` tensors, each ``(batch,)``.
        """
        return ops.stack([ops.cast(column, "float32") for column in inputs], axis=-1)

    def compute_output_shape(self, input_shape):
        """``(batch, k)`` for ``k`` columns.

        Args:
            input_shape: the shapes of the ``k`` inputs, each ``(batch,)``.
        """
        return (input_shape[0][0], len(input_shape))


@keras.saving.register_keras_serializable(package="kerasflow")
class TakeColumns(keras.layers.Layer):
    """The columns ``indices`` of a ``(batch, n)`` tensor, in that order (what a table's encoding keeps).

    Args:
        indices: positions of the columns to keep, in output order.
        **kwargs: passed to ``keras.layers.Layer`` (``name``, ``dtype``).
    """

    def __init__(self, indices: list[int], **kwargs: Any):
        super().__init__(**kwargs)
        self.indices = [int(i) for i in indices]

    def call(self, inputs):
        """The columns ``indices`` of the inputs, in that order.

        Args:
            inputs: a ``(..., n)`` tensor.
        """
        return ops.take(inputs, self.indices, axis=-1)

    def compute_output_shape(self, input_shape):
        """The input's shape with a last axis of ``len(indices)``.

        Args:
            input_shape: the input's shape, ``(..., n)``.
        """
        return (*input_shape[:-1], len(self.indices))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "indices": self.indices}
