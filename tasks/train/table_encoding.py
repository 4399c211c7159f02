"""A typed table's encoding, in front of the builder's model.

The encoding (models/column_types.py) is made from the training split's statistics,
recorded when the dataset was materialized (tasks/data/statistics.py): a ``Normalization``'s
mean and variance, a lookup's vocabulary by frequency, a ``Discretization``'s cut points,
the fill value of a missing number. So it costs no pass over the data, and every worker
of a multi-worker training builds the same one from the same file. The builder receives
the encoded vector (its input spec says what each entry is); the model kerasflow trains
and saves takes the raw columns and holds both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kerasflow.models.column_types import (
    MISSING_INTEGER,
    MISSING_TEXT,
    ColumnFacts,
    Cross,
    Encoder,
    TypedColumn,
    build_encoder,
    column_type,
)
from kerasflow.models.number_block import model_feed
from kerasflow.tasks.config import ConfigError, DataConfig
from kerasflow.tasks.data.materialize import read_statistics
from kerasflow.tasks.data.statistics import CategoricalStats, NumericStats, SplitStatistics
from kerasflow.tasks.data.text_statistics import TextStats
from kerasflow.tasks.refs import DatasetRef

PERCENTILES = [i / 100 for i in range(101)]


def training_statistics(ref: DatasetRef) -> SplitStatistics:
    """The training split's statistics of ``ref``; a dataset without them cannot be encoded.

    Raises:
        ConfigError: the dataset has no statistics of its training split.
    """

    statistics = read_statistics(ref)
    if statistics is None or "train" not in statistics.splits:
        raise ConfigError(
            f"dataset {ref.fingerprint} has no statistics of its training split, which a typed table's encoding "
            "is made from; it was materialized by an older kerasflow: run again with --force after removing it "
            "(kerasflow datasets gc)"
        )
    return statistics.splits["train"]


def column_facts(stats: NumericStats | CategoricalStats, *, storage: str) -> ColumnFacts:
    """What a column's encoding needs from its statistics.

    Args:
        stats: the column's statistics on the training split.
        storage: how the column is stored (``float``, ``integer``, ``string``); an integer vocabulary is of ints.
    """
    if isinstance(stats, TextStats):  # tokens by the texts holding them, and their inverse document frequencies
        tokens = [token for token, _ in stats.top()]
        return ColumnFacts(vocabulary=tuple(tokens), idf=tuple(stats.idf(tokens)))
    if isinstance(stats, NumericStats):
        return ColumnFacts(
            missing=stats.missing,
            mean=stats.mean,
            std=stats.std or 1.0,
            quantiles=tuple(stats.quantiles(PERCENTILES)),
        )
    ranked = stats.top()
    if stats.missing:  # a missing category is a value of its own, ranked by its count
        ranked = sorted([*ranked, (None, stats.missing)], key=lambda item: (-item[1], item[0] or ""))
    if storage == "integer":
        vocabulary = tuple(MISSING_INTEGER if value is None else int(value) for value, _ in ranked)
    else:
        vocabulary = tuple(MISSING_TEXT if value is None else value for value, _ in ranked)
    return ColumnFacts(missing=stats.missing, vocabulary=vocabulary)


def typed_columns(data: DataConfig, ref: DatasetRef) -> list[TypedColumn]:
    """The dataset's columns with their types, and the params data.columns gives them.

    Args:
        data: the recipe's ``data`` section, whose ``columns`` give the types' params.
        ref: the dataset, whose ``column_types`` give the columns and types, in order.
    """
    declared = data.columns or {}
    return [
        TypedColumn(name, type_name, declared[name].params() if name in declared else {})  # type: ignore[union-attr]
        for name, type_name in (ref.column_types or {}).items()
    ]


def crosses(data: DataConfig, ref: DatasetRef) -> list[Cross]:
    """data.crosses, each over categorical columns of the dataset.

    Args:
        data: the recipe's ``data`` section.
        ref: the dataset, whose ``column_types`` give the columns' types.

    Raises:
        ConfigError: a cross names a column that is not a categorical feature column.
    """
    types = ref.column_types or {}
    found = []
    for cross in data.crosses:
        for column in cross.columns:
            if column not in types or not column_type(types[column]).categorical:
                raise ConfigError(
                    f"received data.crosses over {cross.columns}, expected categorical columns of the table "
                    f"({column!r} is {types.get(column, 'not a feature column')}); its columns: {types}"
                )
        found.append(Cross(tuple(cross.columns), cross.num_bins))
    return found


def encoder_for(data: DataConfig, ref: DatasetRef) -> Encoder:
    """The raw inputs of ``ref``'s columns and their encoding, made from its training statistics.

    Args:
        data: the recipe's ``data`` section (column params, crosses, ``missing``).
        ref: the typed table's dataset.

    Raises:
        ConfigError: the dataset has no training statistics, or a cross names a column that is not a
            categorical feature column.
    """
    stats = training_statistics(ref)
    columns = typed_columns(data, ref)
    facts = {
        c.name: column_facts(stats.columns[c.name], storage=column_type(c.type).storage)
        for c in columns
        if c.name in stats.columns
    }
    return build_encoder(columns, facts, crosses=crosses(data, ref), fill_missing=data.missing == "fill")


def encoding_model(encoder: Encoder) -> Any:
    """The encoding alone, as a model: raw columns in, the builder's input out."""
    import keras

    return keras.Model(encoder.inputs, encoder.encoded, name="encoding")


def column_encoding(encoder: Encoder) -> Callable[[dict[str, Any]], Any]:
    """The encoding as a function of a batch of the table's columns under their own names, as the data is read.

    The encoding takes them under its input names, which differ where Keras refuses a column's
    name (``a/b``), and the numbers as one block (``model_feed``, models/number_block.py).

    Args:
        encoder: the table's raw inputs and their encoding.
    """
    encoding = encoding_model(encoder)
    return lambda columns: encoding(model_feed(columns, types=encoder.types, block=True))


def assemble(encoder: Encoder, body: Any) -> Any:
    """The model kerasflow trains and saves: raw columns -> encoding -> the builder's model.

    A model the builder compiled keeps its compilation.

    Args:
        encoder: the table's raw inputs and their encoding.
        body: the builder's model, which takes the encoded vector.
    """
    import keras

    model = keras.Model(encoder.inputs, body(encoder.encoded), name=body.name)
    if getattr(body, "compiled", False):
        model.compile_from_config(body.get_compile_config())
    return model
