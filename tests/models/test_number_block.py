"""A typed table's numbers as one block: one input whatever the columns, and every model fed as it takes them."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from kerasflow.models.column_types import ColumnFacts, TypedColumn, build_encoder
from kerasflow.models.input_names import NUMBERS_INPUT, input_names
from kerasflow.models.number_block import block_columns, by_column, model_feed, takes_block

TYPES = {"amount": "float_normalized", "country": "string_categorical", "hour": "float_discretized", "a/b": "float"}
ROWS = {
    "amount": np.array([1.0, 2.0, 3.0], "float32"),
    "country": np.array(["de", "fr", "de"], dtype=object),
    "hour": np.array([1.0, 12.0, 23.0], "float32"),
    "a/b": np.array([7.0, 8.0, 9.0], "float32"),
}


def test_a_wide_table_of_numbers_is_one_input_and_a_few_layers_whatever_its_columns():
    columns = [TypedColumn(f"f{i}", "float_normalized") for i in range(300)]
    facts = {f"f{i}": ColumnFacts(mean=float(i), std=2.0) for i in range(300)}
    encoder = build_encoder(columns, facts, fill_missing=True)
    model = keras.Model(encoder.inputs, encoder.encoded)
    assert list(model.input) == [NUMBERS_INPUT] and model.input[NUMBERS_INPUT].shape == (None, 300)
    assert len(model.layers) <= 4, [layer.name for layer in model.layers]
    rows = np.arange(600, dtype="float32").reshape(2, 300)
    np.testing.assert_allclose(model.predict({NUMBERS_INPUT: rows}, verbose=0), (rows - np.arange(300)) / 2.0)


def test_the_block_holds_every_number_column_in_the_tables_order_and_no_column_is_named_as_it():
    assert block_columns(TYPES) == ["amount", "hour", "a/b"]
    assert input_names([NUMBERS_INPUT, "x"])[NUMBERS_INPUT] != NUMBERS_INPUT, "a column so named is renamed"


def test_a_batch_is_fed_as_the_block_to_a_new_model_and_column_by_column_to_one_registered_before():
    fed = model_feed(ROWS, types=TYPES, block=True)
    assert sorted(fed) == ["country", NUMBERS_INPUT]
    np.testing.assert_array_equal(fed[NUMBERS_INPUT], np.stack([ROWS["amount"], ROWS["hour"], ROWS["a/b"]], axis=1))
    # As the read pipeline gives it (the block already stacked), cut back for a model of one input per column.
    old = model_feed(fed | {"country": ROWS["country"]}, types=TYPES, block=False)
    assert sorted(old) == sorted(input_names(TYPES).values())
    for column, name in input_names(TYPES).items():
        np.testing.assert_array_equal(old[name], ROWS[column])
    assert list(by_column(fed, TYPES)) == list(TYPES)
    # Tensors, as inside tf.data's map.
    stacked = model_feed({k: tf.constant(v) for k, v in ROWS.items()}, types=TYPES, block=True)
    np.testing.assert_array_equal(stacked[NUMBERS_INPUT].numpy(), fed[NUMBERS_INPUT])


def test_which_models_take_the_block():
    per_column = {name: keras.Input(shape=(), name=name) for name in ("amount", "hour")}
    old = keras.Model(
        per_column, keras.layers.Concatenate()([keras.layers.Reshape((1,))(x) for x in per_column.values()])
    )
    block = keras.Input(shape=(2,), name=NUMBERS_INPUT)
    new = keras.Model({NUMBERS_INPUT: block}, keras.layers.Dense(1)(block))
    assert takes_block(new) and not takes_block(old)
    assert not takes_block(keras.Sequential([keras.layers.Dense(1)])), "a model never built has no named inputs"
