"""Column types of a table, and the encoding each gives its column inside the model.

A typed table's model takes its number columns as one block (``"kerasflow.numbers"``:
float32 ``(batch, number columns)``, models/number_block.py) and every other column as an
input of its own (``{"country": string, ...}``, each of shape ``(batch,)``, named after its
column, or safely when Keras refuses the name: models/input_names.py) and encodes them with Keras's preprocessing
layers into one float vector, which the recipe's builder receives
(:func:`build_encoder`). The layers are made already adapted, from the training split's
statistics (:class:`ColumnFacts`: means, vocabularies, quantiles), so the saved model
scores raw rows and nothing is adapted twice.

The types are Keras ``FeatureSpace``'s names. ``FeatureSpace`` itself is not used: a
model holding its encoding saved and reloaded scores a row whose category is the empty
string differently (the reloaded ``StringLookup`` drops ``""`` from its vocabulary), and
it has no answer for missing numbers. Here a missing category is the token
:data:`MISSING_TEXT` (or :data:`MISSING_INTEGER`), a vocabulary entry of its own, and a
missing number is filled with the training mean beside a 0/1 indicator (``data.missing:
fill``). A category never seen in training is out of vocabulary, never an error.

The types are an open registry (models/column_type_registry.py: what a type is, registering
one, finding one, a team's types by entry point), re-exported here; the built-in types
register below, so importing this module registers them. Nothing here imports Keras until
a model is built, so a recipe's types are checked without it.

A number type whose encoding is the same function of every column (a mean and a
deviation each, a scale) can also encode all its columns of a table at once
(``register_stacked_encoding``): the table's numbers are stacked into one tensor, filled
and normalized by one layer each, instead of five layers per column. A table of 30
float columns took 182 layers and 4.2 ms a training step of 1024 rows (issue 14).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kerasflow.models.column_type_registry import (
    COLUMN_TYPE_REGISTRY,
    COLUMN_TYPES,
    ColumnFacts,
    ColumnType,
    Storage,
    check_params,
    column_type,
    is_free_text,
    register_column_type,
    register_stacked_encoding,
)
from kerasflow.models.input_names import NUMBERS_INPUT, input_names

# Importing it registers the ``text`` type (free text, TextVectorization): its own module, models/text_columns.py.
from kerasflow.models.text_columns import TEXT_TYPE as TEXT_TYPE

__all__ = [
    "COLUMN_TYPES",
    "COLUMN_TYPE_REGISTRY",
    "MISSING_INTEGER",
    "MISSING_TEXT",
    "OOV_INTEGER",
    "TEXT_TYPE",
    "ColumnFacts",
    "ColumnType",
    "Cross",
    "Encoder",
    "Storage",
    "TypedColumn",
    "build_encoder",
    "check_params",
    "column_type",
    "input_dtype",
    "is_free_text",
    "quantile_boundaries",
    "register_column_type",
    "register_stacked_encoding",
    "serving_names",
]

# A missing category, as stored and as fed to the model (one token of its own).
MISSING_TEXT = "(missing)"
MISSING_INTEGER = -(2**63)
# IntegerLookup's out-of-vocabulary token: its default, -1, is a real value in many tables.
OOV_INTEGER = -(2**63) + 1


@dataclass(frozen=True)
class TypedColumn:
    """One column of a table with its type and the type's params (``num_bins``, ``max_tokens`` ...).

    Args:
        name: the column's name in the table.
        type: the column type's name (``float_normalized``, ``string_categorical``...).
        params: the type's params the recipe sets; the type's defaults fill the rest.
    """

    name: str
    type: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cross:
    """A hashed cross of categorical columns (``HashedCrossing``), one-hot over ``num_bins``.

    Args:
        columns: the names of the categorical columns crossed.
        num_bins: the hash bins, the width of the one-hot output.
    """

    columns: tuple[str, ...]
    num_bins: int


def _as_column(x):
    import keras

    return keras.layers.Reshape((1,))(x)


@register_column_type("float", storage="float")
def _float(x, *, column: str, facts: ColumnFacts) -> tuple[Any, list[str]]:
    return _as_column(x), [column]


@register_column_type("float_normalized", storage="float")
def _float_normalized(x, *, column: str, facts: ColumnFacts) -> tuple[Any, list[str]]:
    import keras

    layer = keras.layers.Normalization(mean=[facts.mean], variance=[max(facts.std, 1e-12) ** 2])
    return layer(_as_column(x)), [column]


@register_column_type("float_rescaled", storage="float", params={"scale": 1.0, "offset": 0.0})
def _float_rescaled(x, *, column: str, facts: ColumnFacts, scale: float, offset: float) -> tuple[Any, list[str]]:
    import keras

    return keras.layers.Rescaling(scale, offset=offset)(_as_column(x)), [column]


@register_stacked_encoding("float")
def _floats(x, *, columns: list[str], facts: list[ColumnFacts]) -> Any:
    return x


@register_stacked_encoding("float_normalized")
def _floats_normalized(x, *, columns: list[str], facts: list[ColumnFacts]) -> Any:
    import keras

    variances = [max(f.std, 1e-12) ** 2 for f in facts]
    return keras.layers.Normalization(mean=[f.mean for f in facts], variance=variances)(x)


@register_stacked_encoding("float_rescaled")
def _floats_rescaled(x, *, columns: list[str], facts: list[ColumnFacts], scale: float, offset: float) -> Any:
    import keras

    return keras.layers.Rescaling(scale, offset=offset)(x)


@register_column_type("float_discretized", storage="float", params={"num_bins": 10})
def _float_discretized(x, *, column: str, facts: ColumnFacts, num_bins: int) -> tuple[Any, list[str]]:
    import keras

    boundaries = quantile_boundaries(facts.quantiles, num_bins)
    layer = keras.layers.Discretization(bin_boundaries=boundaries, output_mode="one_hot")
    return layer(x), [f"{column}[bin {i}]" for i in range(len(boundaries) + 1)]


@register_column_type("integer_categorical", storage="integer", params={"max_tokens": None}, categorical=True)
def _integer_categorical(x, *, column: str, facts: ColumnFacts, max_tokens: int | None) -> tuple[Any, list[str]]:
    import keras

    vocabulary = [int(v) for v in facts.vocabulary[:max_tokens] if int(v) != OOV_INTEGER]
    layer = keras.layers.IntegerLookup(
        vocabulary=vocabulary or [MISSING_INTEGER], output_mode="one_hot", oov_token=OOV_INTEGER
    )
    return layer(x), [f"{column}=(other)", *(f"{column}={_token(v)}" for v in vocabulary or [MISSING_INTEGER])]


@register_column_type("string_categorical", storage="string", params={"max_tokens": None}, categorical=True)
def _string_categorical(x, *, column: str, facts: ColumnFacts, max_tokens: int | None) -> tuple[Any, list[str]]:
    import keras

    oov = "[UNK]"
    vocabulary = [str(v) for v in facts.vocabulary[:max_tokens] if str(v) not in ("", oov)]
    layer = keras.layers.StringLookup(vocabulary=vocabulary or [MISSING_TEXT], output_mode="one_hot", oov_token=oov)
    return layer(x), [f"{column}=(other)", *(f"{column}={v}" for v in vocabulary or [MISSING_TEXT])]


def _hashed(x, *, column: str, num_bins: int) -> tuple[Any, list[str]]:
    import keras

    # Fed (batch, 1): on (batch,) Keras 3.15's Hashing declares a one-hot output of shape (num_bins,).
    layer = keras.layers.Hashing(num_bins, output_mode="one_hot")
    return layer(_as_column(x)), [f"{column}[hash {i}]" for i in range(num_bins)]


@register_column_type("string_hashed", storage="string", params={"num_bins": 32}, categorical=True)
def _string_hashed(x, *, column: str, facts: ColumnFacts, num_bins: int) -> tuple[Any, list[str]]:
    return _hashed(x, column=column, num_bins=num_bins)


@register_column_type("integer_hashed", storage="integer", params={"num_bins": 32}, categorical=True)
def _integer_hashed(x, *, column: str, facts: ColumnFacts, num_bins: int) -> tuple[Any, list[str]]:
    return _hashed(x, column=column, num_bins=num_bins)


def _token(value: Any) -> str:
    return "(missing)" if value == MISSING_INTEGER else str(value)


def quantile_boundaries(quantiles: Sequence[float], num_bins: int) -> list[float]:
    """``num_bins - 1`` cut points at equal shares of the values, from their percentiles; repeats dropped.

    Args:
        quantiles: the 0th..100th percentiles of a column's values (101 values); empty when unknown.
        num_bins: the bins wanted.

    Returns:
        The cut points in increasing order; ``[0.0]`` when there are none.
    """
    if not quantiles:
        return [0.0]
    cuts = []
    for i in range(1, num_bins):
        position = 100.0 * i / num_bins
        low = math.floor(position)
        high = min(low + 1, len(quantiles) - 1)
        share = position - low
        cuts.append(float(quantiles[low] * (1 - share) + quantiles[high] * share))
    return sorted(set(cuts)) or [0.0]


def serving_names(columns: Sequence[str]) -> list[str]:
    """Each column's name in an exported SavedModel's ``serve`` signature: legal there (``[A-Za-z0-9_.-]``), unique.

    The Keras model is fed a dict keyed by the columns' input names (models/input_names.py:
    the column's own name, ``"area error"``, when Keras accepts it); a SavedModel signature's
    argument names allow fewer characters (``area_error``).

    Args:
        columns: the model's input names, in order.

    Returns:
        One name per column, in the same order; a name taken before gets ``_2``, ``_3``...
    """
    names, taken = [], set()
    for column in columns:
        name = re.sub(r"[^A-Za-z0-9_.\-]", "_", column)
        if not name or not re.match(r"[A-Za-z0-9.]", name):
            name = f"c_{name}"
        unique, number = name, 1
        while unique in taken:
            number += 1
            unique = f"{name}_{number}"
        taken.add(unique)
        names.append(unique)
    return names


def input_dtype(storage: Storage) -> str:
    """The dtype of the ``keras.Input`` of a column stored as ``storage``: ``float32``, ``int64`` or ``string``."""
    return {"float": "float32", "integer": "int64", "string": "string"}[storage]


@dataclass
class Encoder:
    """The raw inputs of a typed table's model and their encoding (symbolic Keras tensors).

    Args:
        inputs: the ``keras.Input`` of the numbers block (``NUMBERS_INPUT``: every number column, in the
            columns' order) and one per other column, by its input name (models/input_names.py: the column's
            own name when Keras accepts it); the model is fed a batch of columns by ``model_feed``
            (models/number_block.py).
        encoded: the encoding, one float tensor of shape ``(batch, width)``.
        names: what each of the ``width`` entries is (``amount``, ``country=de``...).
        types: column name -> type name, every column in the table's order (what ``model_feed`` needs).
    """

    inputs: dict[str, Any]
    encoded: Any
    names: list[str]
    types: dict[str, str] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return len(self.names)


def build_encoder(
    columns: Sequence[TypedColumn],
    facts: Mapping[str, ColumnFacts],
    *,
    crosses: Sequence[Cross] = (),
    fill_missing: bool = False,
) -> Encoder:
    """The inputs of a table's columns and the concatenation of their encodings, in the columns' order.

    The number columns are one ``keras.Input`` of shape ``(batch, k)``, ``NUMBERS_INPUT``, in
    the columns' order (a table of 3,000 numbers is one input, not 3,000); every other column
    is an input of its own, named by ``input_names`` (a name Keras refuses, ``a/b``, becomes a
    safe one); the names of the encoding's entries keep the columns' own names.

    ``fill_missing``: a number's NaN becomes its training mean (``FillMissing``), and for a
    column with missing values in training a ``MissingIndicator`` column says where one was
    (a column always present in training has no indicator: its weight could not be learnt);
    otherwise numbers are fed as they are (ingestion refused missing ones, scoring refuses
    them too). The numbers of a type with a stacked encoding are encoded together, and one
    ``TakeColumns`` puts every entry back in the columns' order: the builder sees
    ``[amount[missing], amount, country=..., ...]`` whichever way each was computed.

    Args:
        columns: the table's typed columns, in the order their encodings are concatenated.
        facts: column name -> what its encoding learns from the training split; a column not in it gets
            the defaults.
        crosses: hashed crosses of categorical columns, encoded after the columns.
        fill_missing: fill a number's NaN with its training mean, with a missing indicator where training
            had missing values.
    """
    import keras

    from kerasflow.models.layers import FillMissing, MissingIndicator, TakeColumns

    names_in_model = input_names(c.name for c in columns)
    # Every number column is a column of one block input (models/number_block.py): one Input, and one tensor
    # per batch, whatever the number of columns; the others are an input each.
    numbers = [c.name for c in columns if column_type(c.type).storage == "float"]
    place = {name: j for j, name in enumerate(numbers)}
    block = keras.Input(shape=(len(numbers),), dtype="float32", name=NUMBERS_INPUT) if numbers else None
    inputs = {
        c.name: keras.Input(shape=(), dtype=input_dtype(column_type(c.type).storage), name=names_in_model[c.name])
        for c in columns
        if c.name not in place
    }
    facts_of = {c.name: facts.get(c.name, ColumnFacts()) for c in columns}
    blocks: list[Any] = []  # encoded tensors (batch, width), concatenated in this order
    keys: list[tuple] = []  # what each entry of the concatenation is, by (column, slot)
    wanted: list[tuple] = []  # those keys in the columns' order, and their names
    names: list[str] = []
    stacks: dict[tuple, list[TypedColumn]] = {}
    for c in columns:
        kind = column_type(c.type)
        params = check_params(c.name, c.type, c.params)
        column_facts = facts_of[c.name]
        indicated = kind.storage == "float" and fill_missing and column_facts.missing > 0
        if indicated:
            wanted.append((c.name, "missing"))
            names.append(f"{c.name}[missing]")
        if kind.encode_stacked is not None:
            stacks.setdefault((c.type, tuple(sorted(params.items()))), []).append(c)
            wanted.append((c.name, 0))
            names.append(c.name)
            continue
        # A number encoded on its own (a type without a stacked encoding) is its column of the block, (batch,).
        x = keras.layers.Reshape(())(TakeColumns([place[c.name]])(block)) if c.name in place else inputs[c.name]
        if kind.storage == "float" and fill_missing:
            raw = _as_column(x)
            if indicated:
                blocks.append(MissingIndicator()(raw))
                keys.append((c.name, "missing"))
            x = keras.layers.Reshape(())(FillMissing([column_facts.mean])(raw))
        encoded, encoded_names = kind.encode(x, column=c.name, facts=column_facts, **params)
        blocks.append(encoded)
        keys.extend((c.name, j) for j in range(len(encoded_names)))
        wanted.extend((c.name, j) for j in range(len(encoded_names)))
        names.extend(encoded_names)
    for (type_name, params), stacked in stacks.items():
        positions = [place[c.name] for c in stacked]
        x = block if positions == list(range(len(numbers))) else TakeColumns(positions)(block)
        if fill_missing:
            if any(facts_of[c.name].missing for c in stacked):
                blocks.append(MissingIndicator()(x))
                keys.extend((c.name, "missing") for c in stacked)
            x = FillMissing([facts_of[c.name].mean for c in stacked])(x)
        encode = column_type(type_name).encode_stacked
        stacked_facts = [facts_of[c.name] for c in stacked]
        blocks.append(encode(x, columns=[c.name for c in stacked], facts=stacked_facts, **dict(params)))
        keys.extend((c.name, 0) for c in stacked)
    for i, cross in enumerate(crosses):
        layer = keras.layers.HashedCrossing(cross.num_bins, output_mode="one_hot")
        blocks.append(layer(tuple(inputs[name] for name in cross.columns)))
        keys.extend(("cross", i, j) for j in range(cross.num_bins))
        wanted.extend(("cross", i, j) for j in range(cross.num_bins))
        names.extend(f"{' x '.join(cross.columns)}[hash {j}]" for j in range(cross.num_bins))
    encoded = blocks[0] if len(blocks) == 1 else keras.layers.Concatenate(name="encoded_features")(blocks)
    position = {key: i for i, key in enumerate(keys)}
    order = [position[key] for key in wanted]
    if order != list(range(len(keys))):
        encoded = TakeColumns(order, name="encoded_in_column_order")(encoded)
    feeds = {NUMBERS_INPUT: block} if block is not None else {}
    return Encoder(
        inputs={**feeds, **{names_in_model[c]: x for c, x in inputs.items()}},
        encoded=encoded,
        names=names,
        types={c.name: c.type for c in columns},
    )
