"""Column types of a table, and the encoding each gives its column inside the model.

A typed table's model takes one input per column (``{"amount": float32, "country":
string, ...}``, each of shape ``(batch,)``) and encodes them with Keras's preprocessing
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

The registry is open: ``register_column_type(name, storage=...)`` adds a type whose
encoding is any function of the column's input, its facts and its params. Nothing here
imports Keras until a model is built, so a recipe's types are checked without it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Storage = Literal["float", "integer", "string"]

# A missing category, as stored and as fed to the model (one token of its own).
MISSING_TEXT = "(missing)"
MISSING_INTEGER = -(2**63)
# IntegerLookup's out-of-vocabulary token: its default, -1, is a real value in many tables.
OOV_INTEGER = -(2**63) + 1


@dataclass(frozen=True)
class ColumnFacts:
    """What a column's encoding learns from the training split (from its statistics).

    Attributes:
        mean, std: of the values present (numbers).
        vocabulary: the values by falling frequency (categories), at most the type's ``max_tokens``.
        quantiles: the 0th..100th percentiles of the values present (numbers).
        missing: rows without a value.
    """

    missing: int = 0
    mean: float = 0.0
    std: float = 1.0
    vocabulary: tuple[Any, ...] = ()
    quantiles: tuple[float, ...] = ()


@dataclass(frozen=True)
class TypedColumn:
    """One column of a table with its type and the type's params (``num_bins``, ``max_tokens`` ...)."""

    name: str
    type: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cross:
    """A hashed cross of categorical columns (``HashedCrossing``), one-hot over ``num_bins``."""

    columns: tuple[str, ...]
    num_bins: int


# encode(column input (batch,), *, column, facts, **params) -> (encoded (batch, width) tensor, width names)
Encode = Callable[..., tuple[Any, list[str]]]


@dataclass(frozen=True)
class ColumnType:
    name: str
    storage: Storage
    encode: Encode
    params: Mapping[str, Any]  # the params the type takes, with their defaults
    categorical: bool = False  # its values are categories (may be crossed; counted as values in statistics)


COLUMN_TYPES: dict[str, ColumnType] = {}


def register_column_type(
    name: str, *, storage: Storage, params: Mapping[str, Any] | None = None, categorical: bool = False
) -> Callable[[Encode], Encode]:
    """Register ``encode`` as the column type ``name`` (a recipe then says ``data.columns: {col: name}``)."""

    def register(encode: Encode) -> Encode:
        existing = COLUMN_TYPES.get(name)
        if existing is not None and existing.encode is not encode:
            raise ValueError(f"received a second column type {name!r}, expected one encoding per name")
        COLUMN_TYPES[name] = ColumnType(name, storage, encode, dict(params or {}), categorical)
        return encode

    return register


def column_type(name: str) -> ColumnType:
    try:
        return COLUMN_TYPES[name]
    except KeyError:
        raise ValueError(f"received column type {name!r}, expected one of {sorted(COLUMN_TYPES)}") from None


def check_params(column: str, type_name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The type's params with ``params`` laid over its defaults; unknown ones refused."""
    kind = column_type(type_name)
    unknown = sorted(set(params) - set(kind.params))
    if unknown:
        raise ValueError(
            f"received {unknown} for column {column!r} of type {type_name!r}, expected any of {sorted(kind.params)}"
        )
    return {**kind.params, **{k: v for k, v in params.items() if v is not None}}


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
    """``num_bins - 1`` cut points at equal shares of the values, from their percentiles; repeats dropped."""
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

    The Keras model is fed a dict keyed by the column names themselves (``"area error"``);
    a SavedModel signature's argument names allow fewer characters (``area_error``).
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
    return {"float": "float32", "integer": "int64", "string": "string"}[storage]


@dataclass
class Encoder:
    """The raw inputs of a typed table's model and their encoding (symbolic Keras tensors)."""

    inputs: dict[str, Any]
    encoded: Any
    names: list[str]

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
    """One ``keras.Input`` per column and the concatenation of their encodings.

    ``fill_missing``: a number's NaN becomes its training mean (``FillMissing``), and for a
    column with missing values in training a ``MissingIndicator`` column says where one was
    (a column always present in training has no indicator: its weight could not be learnt);
    otherwise numbers are fed as they are (ingestion refused missing ones, scoring refuses
    them too).
    """
    import keras

    from kerasflow.models.layers import FillMissing, MissingIndicator

    inputs = {
        c.name: keras.Input(shape=(), dtype=input_dtype(column_type(c.type).storage), name=c.name) for c in columns
    }
    parts, names = [], []
    for c in columns:
        kind = column_type(c.type)
        x = inputs[c.name]
        column_facts = facts.get(c.name, ColumnFacts())
        if kind.storage == "float" and fill_missing:
            raw = _as_column(x)
            if column_facts.missing:
                parts.append(MissingIndicator()(raw))
                names.append(f"{c.name}[missing]")
            x = keras.layers.Reshape(())(FillMissing([column_facts.mean])(raw))
        params = check_params(c.name, c.type, c.params)
        encoded, encoded_names = kind.encode(x, column=c.name, facts=column_facts, **params)
        parts.append(encoded)
        names.extend(encoded_names)
    for cross in crosses:
        layer = keras.layers.HashedCrossing(cross.num_bins, output_mode="one_hot")
        parts.append(layer(tuple(inputs[name] for name in cross.columns)))
        names.extend(f"{' x '.join(cross.columns)}[hash {i}]" for i in range(cross.num_bins))
    encoded = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="encoded_features")(parts)
    return Encoder(inputs=inputs, encoded=encoded, names=names)
