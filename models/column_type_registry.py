"""What a column type is, and the open registry of them: the extension point of table columns.

A :class:`ColumnType` says how its column is stored (``float``, ``integer``, ``string``)
and makes its column's encoding inside the model from the column's input, what the
training split taught it (:class:`ColumnFacts`) and its params. ``register_column_type(name,
storage=...)`` adds a type whose encoding is any such function; an installed package adds
types through the ``kerasflow.column_types`` entry point group (its module registers them
when loaded). A number type whose encoding is the same function of every column can also
encode all its columns of a table at once (``register_stacked_encoding``).

The built-in types register in models/column_types.py, which re-exports these names and is
where kerasflow looks types up, so they are registered first. Nothing here imports Keras.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from kerasflow.models.errors import ConfigError
from kerasflow.models.plugins import PluginRegistry

__all__ = [
    "COLUMN_TYPES",
    "COLUMN_TYPE_REGISTRY",
    "CheckParams",
    "ColumnFacts",
    "ColumnType",
    "Encode",
    "EncodeStacked",
    "Storage",
    "check_params",
    "column_type",
    "is_free_text",
    "register_column_type",
    "register_stacked_encoding",
]

Storage = Literal["float", "integer", "string"]


@dataclass(frozen=True)
class ColumnFacts:
    """What a column's encoding learns from the training split (from its statistics).

    Attributes:
        mean, std: of the values present (numbers).
        vocabulary: the values by falling frequency (categories), at most the type's ``max_tokens``.
        quantiles: the 0th..100th percentiles of the values present (numbers).
        missing: rows without a value.
        idf: each vocabulary entry's inverse document frequency, ``log(1 + texts / (1 + texts holding it))``
            as Keras's ``TextVectorization`` computes it (text); empty when not counted.
    """

    missing: int = 0
    mean: float = 0.0
    std: float = 1.0
    vocabulary: tuple[Any, ...] = ()
    quantiles: tuple[float, ...] = ()
    idf: tuple[float, ...] = ()


# encode(column input (batch,), *, column, facts, **params) -> (encoded (batch, width) tensor, width names)
Encode = Callable[..., tuple[Any, list[str]]]
# encode_stacked(columns (batch, k), *, columns, facts (one per column), **params) -> (batch, k): column by column
EncodeStacked = Callable[..., Any]
# check(column, params) raises ValueError ("received ..., expected ...") for params the type cannot encode with
CheckParams = Callable[[str, Mapping[str, Any]], None]


@dataclass(frozen=True)
class ColumnType:
    """A column type: how its column is stored, and how its encoding is made.

    Args:
        name: the type's name, as a recipe gives it.
        storage: how the column's values are stored and fed: ``float``, ``integer`` or ``string``.
        encode: ``encode(x, *, column, facts, **params) -> (encoded, names)``: the column's input of shape
            ``(batch,)`` encoded to ``(batch, width)``, and a name for each of the ``width`` entries.
        params: the params the type takes, with their defaults.
        categorical: its values are categories (they may be crossed; statistics count them as values).
        encode_stacked: encodes the type's columns of a table at once (number types only); None when the type
            has no stacked encoding.
        check: ``check(column, params)`` raises ValueError for param values the type refuses (an unknown mode),
            so a recipe is refused when it is read, not when its model is built; None: any value is taken.
    """

    name: str
    storage: Storage
    encode: Encode
    params: Mapping[str, Any]  # the params the type takes, with their defaults
    categorical: bool = False  # its values are categories (may be crossed; counted as values in statistics)
    encode_stacked: EncodeStacked | None = None  # encodes the type's columns of a table at once (numbers only)
    check: CheckParams | None = None  # refuses param values the type cannot encode with (ValueError)


# The built-in types register in models/column_types.py, when it is imported; a team's register
# with register_column_type, or from an installed package's ``kerasflow.column_types`` entry point
# (its module registers them when loaded).
COLUMN_TYPE_REGISTRY: PluginRegistry[ColumnType] = PluginRegistry(
    setting="column type",
    group="kerasflow.column_types",
    error=ConfigError,
    accepts=lambda loaded: isinstance(loaded, ColumnType),
)
COLUMN_TYPES: dict[str, ColumnType] = COLUMN_TYPE_REGISTRY.items


def register_column_type(
    name: str,
    *,
    storage: Storage,
    params: Mapping[str, Any] | None = None,
    categorical: bool = False,
    check: CheckParams | None = None,
) -> Callable[[Encode], Encode]:
    """Register ``encode`` as the column type ``name`` (a recipe then says ``data.columns: {col: name}``).

    Args:
        name: the type's name, as a recipe gives it.
        storage: how the column's values are stored and fed: ``float``, ``integer`` or ``string``.
        params: the params the type takes, with their defaults; ``encode`` receives them as keywords.
        categorical: its values are categories (they may be crossed; statistics count them as values).
            A ``string`` type that is not categorical is free text: statistics count its tokens per text,
            and a missing value is the empty text.
        check: ``check(column, params)`` raises ValueError ("received ..., expected ...") for param values the
            type refuses; it receives the params over their defaults.

    Returns:
        A decorator that registers ``encode(x, *, column, facts, **params) -> (encoded, names)`` and returns it
        unchanged; it raises ValueError when another function is registered under ``name``.
    """

    def register(encode: Encode) -> Encode:
        existing = COLUMN_TYPE_REGISTRY.items.get(name)
        if existing is not None and existing.encode is not encode:
            raise ValueError(f"received a second column type {name!r}, expected one encoding per name")
        COLUMN_TYPE_REGISTRY.register(
            name, ColumnType(name, storage, encode, dict(params or {}), categorical, check=check)
        )
        return encode

    return register


def register_stacked_encoding(name: str) -> Callable[[EncodeStacked], EncodeStacked]:
    """Register ``encode_stacked`` for the number type ``name``: its columns of a table encoded as one tensor.

    It receives the columns stacked ``(batch, k)`` (missing values already filled), their
    names and facts, and the params they share (columns of other params form another
    stack), and returns ``(batch, k)``: column i encoded as the type's ``encode`` would.

    Args:
        name: a registered column type stored as ``float``.

    Returns:
        A decorator that registers ``encode_stacked(x, *, columns, facts, **params)`` and returns it unchanged;
        it raises ValueError when ``name`` is not a number type.
    """

    def register(encode_stacked: EncodeStacked) -> EncodeStacked:
        kind = column_type(name)
        if kind.storage != "float":
            raise ValueError(f"received a stacked encoding for {name!r}, a {kind.storage} type; expected a number type")
        COLUMN_TYPE_REGISTRY.register(name, replace(kind, encode_stacked=encode_stacked))
        return encode_stacked

    return register


def column_type(name: str) -> ColumnType:
    """The column type ``name``: built in, registered, or from an installed package.

    Raises:
        ConfigError: no type has that name ("received column type 'x', expected one of [...]").
    """
    found = COLUMN_TYPE_REGISTRY.find(name)
    if found is None:
        raise ConfigError(f"received column type {name!r}, expected one of {COLUMN_TYPE_REGISTRY.names()}")
    return found


def check_params(column: str, type_name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The type's params with ``params`` laid over its defaults; unknown ones refused.

    Args:
        column: the column's name, for the error message.
        type_name: the column type's name.
        params: the params the recipe sets for the column; a None value keeps the default.

    Raises:
        ConfigError: no column type is named ``type_name``.
        ValueError: a param the type does not take, or a value its ``check`` refuses.
    """
    kind = column_type(type_name)
    unknown = sorted(set(params) - set(kind.params))
    if unknown:
        raise ValueError(
            f"received {unknown} for column {column!r} of type {type_name!r}, expected any of {sorted(kind.params)}"
        )
    merged = {**kind.params, **{k: v for k, v in params.items() if v is not None}}
    if kind.check is not None:
        kind.check(column, merged)
    return merged


def is_free_text(kind: ColumnType) -> bool:
    """Whether ``kind`` is free text: stored as ``string`` and not categorical (the ``text`` type).

    Its statistics count tokens per text instead of values, and a missing value is the empty text.
    """
    return kind.storage == "string" and not kind.categorical
