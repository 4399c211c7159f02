"""A typed table's numbers as one block: the model's one input of every number column, and how it is fed.

A typed table's model takes every column stored as a number (``float``, ``float_normalized``,
``float_discretized``, a team's number type...) as one float32 input of shape ``(batch, k)``,
named :data:`NUMBERS_INPUT`, its columns in the table's order (:func:`block_columns`), and
each other column (categories, text) as an input of its own (models/input_names.py). That is
how the numbers are stored (one group per storage, tasks/data/source_data.py), so the read
pipeline hands the stored group to the model as it is: a table of 3,000 number columns is
one tensor per batch, not 3,000 tensors cut apart and stacked again, and one ``keras.Input``,
not 3,000 (issue 30: 2 epochs of 3,000 columns x 2,000 rows took 139 s, 20 times a plain
Keras script).

Models registered before take one input per column. Whatever feeds a model (training,
evaluation, scoring, the predictor) goes through :func:`model_feed`, which gives each model
what it takes: the block, or the columns one by one. The SavedModel keeps one argument per
column (models/io.py), so a client without kerasflow passes a table by column names as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kerasflow.models.column_types import column_type
from kerasflow.models.input_names import NUMBERS_INPUT, input_names

__all__ = ["NUMBERS_INPUT", "block_columns", "by_column", "model_feed", "takes_block"]


def block_columns(types: Mapping[str, str]) -> list[str]:
    """The columns the numbers block holds, in its order: every column whose type is stored as ``float``.

    The same order as the stored group of numbers (tasks/data/source_data.py ``groups``).

    Args:
        types: column name -> column type name, in the table's order.
    """
    return [name for name, type_name in types.items() if column_type(type_name).storage == "float"]


def takes_block(model: Any) -> bool:
    """Whether ``model`` takes a table's numbers as one block (:data:`NUMBERS_INPUT`), not one input per column.

    Args:
        model: a Keras model (a typed table's, or any other: False for one without named inputs).
    """
    try:
        inputs = model.input
    except (AttributeError, ValueError):  # a Sequential model never built, a subclassed one: no named inputs
        return False
    return isinstance(inputs, dict) and NUMBERS_INPUT in inputs


def _stack(columns: Sequence[Any]) -> Any:
    import numpy as np  # here: models/io.py imports this module, and a recipe's validation must not load NumPy

    if all(isinstance(column, np.ndarray) for column in columns):
        return np.stack([np.asarray(column, dtype=np.float32) for column in columns], axis=-1)
    import tensorflow as tf

    return tf.stack([tf.cast(column, tf.float32) for column in columns], axis=-1)


def by_column(columns: Mapping[str, Any], types: Mapping[str, str]) -> dict[str, Any]:
    """A batch of a typed table with its numbers block cut into columns: column name -> values, in the table's order.

    Args:
        columns: a batch: column name -> values, the numbers either one by one or as the block
            under :data:`NUMBERS_INPUT` (as the read pipeline gives them).
        types: column name -> column type name, every column of the table in order.
    """
    if NUMBERS_INPUT not in columns:
        return {name: columns[name] for name in types if name in columns}
    block = columns[NUMBERS_INPUT]
    place = {name: j for j, name in enumerate(block_columns(types))}
    return {name: block[..., place[name]] if name in place else columns[name] for name in types}


def model_feed(columns: Mapping[str, Any], *, types: Mapping[str, str], block: bool) -> dict[str, Any]:
    """A batch of a typed table as a model takes it: keyed by its input names, the numbers as a block or not.

    Works on NumPy arrays and on tensors (inside ``tf.data``'s ``map``) alike.

    Args:
        columns: a batch: column name -> values, the numbers either one by one or as the block under
            :data:`NUMBERS_INPUT`; every feature column of the table.
        types: column name -> column type name, every feature column of the table in order.
        block: the model takes the numbers as one block (:func:`takes_block`); False: one input per column,
            as models registered before the block took them.

    Returns:
        Input name -> values.
    """
    names = input_names(types)
    if not block:
        return {names[name]: values for name, values in by_column(columns, types).items()}
    numbers = block_columns(types)
    held = set(numbers)
    feed = {names[name]: columns[name] for name in types if name not in held}
    if numbers:
        stacked = NUMBERS_INPUT in columns
        feed[NUMBERS_INPUT] = columns[NUMBERS_INPUT] if stacked else _stack([columns[name] for name in numbers])
    return feed
