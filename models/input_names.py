"""A table column's name inside the model: the name of its ``keras.Input`` and its key in the model's inputs.

Keras refuses a layer name holding ``/`` ("cannot contain character `/`"), and a table's
columns are named by people (``ß/ü``, ``price (€)``, ``a/b``). A functional model called
with a dict matches its entries to inputs by key, and Keras wants each key to be its
input's name, so a typed table's model is keyed by these names, and whatever feeds it
(training, evaluation, scoring, the predictor) renames its columns with
:func:`model_inputs`, the one function training and scoring share. Everything a person
reads or gives (the recorded signature, statistics, messages, a file's or a DataFrame's
columns) keeps the columns' own names.

A name Keras accepts is kept as it is, so a model registered before this mapping existed
(every one of its columns a name Keras accepted) is fed as it always was. A name Keras
refuses becomes its letters, digits, ``_``, ``.`` and ``-`` (a run of anything else, ``/``
included, as one ``_``) and eight hex digits of the name's SHA-256: ``ß/ü`` is
``ß_ü_c87643cc``; deterministic, readable, and never the name of another column (a longer
hash when it would be). The SavedModel export names its signature's inputs after these
names, in the characters a signature allows (``serving_names``).

A typed table's number columns go in as one block named :data:`NUMBERS_INPUT`
(models/number_block.py), a name no column keeps: a column so named is renamed as one Keras refuses.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import TypeVar

__all__ = ["NUMBERS_INPUT", "input_names", "is_input_name", "model_inputs"]

# The input of a typed table's model holding all its number columns as one block (models/number_block.py).
NUMBERS_INPUT = "kerasflow.numbers"

Value = TypeVar("Value")

# Hex digits of the SHA-256 a renamed column ends with; more only when that name is taken.
HASH_DIGITS = 8


def is_input_name(name: str) -> bool:
    """Whether Keras accepts ``name`` as a layer's name, so a column of that name keeps it in the model.

    Args:
        name: a column's name.

    Returns:
        True for a non-empty name without ``/`` other than :data:`NUMBERS_INPUT`, the numbers block's.
    """
    return bool(name) and "/" not in name and name != NUMBERS_INPUT


def _renamed(column: str, digits: int) -> str:
    readable = re.sub(r"[^\w.\-]+", "_", column).strip("_") or "column"
    return f"{readable}_{hashlib.sha256(column.encode()).hexdigest()[:digits]}"


def input_names(columns: Iterable[str]) -> dict[str, str]:
    """Each column's input name in a typed table's model: its own name when Keras accepts it, else a safe one.

    The result depends on the set of columns only, not their order, so training (the
    dataset's columns) and scoring (the recorded signature's) name them alike.

    Args:
        columns: the table's feature column names, as the table has them.

    Returns:
        Column name -> input name, in the columns' order; no two columns share an input name.

    Examples:
        >>> input_names(["amount", "a/b", "a_b"])
        {'amount': 'amount', 'a/b': 'a_b_c14cddc0', 'a_b': 'a_b'}
    """
    columns = list(dict.fromkeys(columns))
    taken = {column for column in columns if is_input_name(column)}
    renamed = {}
    # In sorted order, so the longer hash a clash calls for goes to the same column whatever the table's order.
    for column in sorted(c for c in columns if not is_input_name(c)):
        digits = HASH_DIGITS
        name = _renamed(column, digits)
        while name in taken and digits < 64:
            digits += HASH_DIGITS
            name = _renamed(column, digits)
        number = 1
        while name in taken:  # a column literally named as another's full hash: unheard of, still kept apart
            number += 1
            name = f"{_renamed(column, 64)}_{number}"
        taken.add(name)
        renamed[column] = name
    return {column: renamed.get(column, column) for column in columns}


def model_inputs(columns: Mapping[str, Value]) -> dict[str, Value]:
    """A typed table's columns keyed as its model takes them: by :func:`input_names` of their names.

    Works on arrays and on tensors (inside ``tf.data``'s ``map``) alike; columns whose names
    Keras accepts keep them, so a model registered before the renaming is fed as it always was.

    Args:
        columns: column name -> its values (a batch of the table), every feature column of the model.
    """
    names = input_names(columns)
    return {names[column]: values for column, values in columns.items()}
