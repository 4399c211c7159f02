"""A column's name inside the model: kept when Keras takes it, else safe, deterministic and unlike any other."""

from __future__ import annotations

import keras
import numpy as np

from kerasflow.models.input_names import input_names, is_input_name, model_inputs

# Names tables have that Keras takes as they are: models registered with them are fed as before.
KEPT = ["amount", "area error", "price (€)", "2nd", "ß", ".hidden", "a_b", "Größe", "x" * 300]
# Names Keras refuses ("cannot contain character `/`"), or could not name a layer by.
REFUSED = ["ß/ü", "a/b", "/", "a//b", ""]


def test_a_name_keras_takes_is_kept_and_one_it_refuses_gets_a_safe_readable_one():
    names = input_names([*KEPT, *REFUSED])
    assert all(names[column] == column for column in KEPT)
    assert names["ß/ü"] == "ß_ü_c87643cc" and names["a/b"] == "a_b_c14cddc0"
    assert names["/"].startswith("column_") and names[""].startswith("column_")
    assert all(is_input_name(name) for name in names.values())
    for name in names.values():  # Keras takes every one as an input's name
        assert keras.Input(shape=(), name=name).name == name


def test_the_names_are_the_same_for_the_same_columns_in_any_order_and_call():
    columns = [*KEPT, *REFUSED]
    first = input_names(columns)
    assert input_names(columns) == first
    assert input_names(list(reversed(columns))) == first
    assert list(first) == columns, "in the columns' order"
    assert input_names(first.values()) == {name: name for name in first.values()}, "input names are kept"


def test_no_two_columns_share_a_name_even_a_column_named_as_anothers_safe_name():
    # "a/b" would be a_b_c14cddc0, which this table already has: it gets a longer hash.
    columns = ["a/b", "a_b", "a_b_c14cddc0", "a:b", "a b", "a.b", "a-b", "a//b", "a/ b"]
    names = input_names(columns)
    assert len(set(names.values())) == len(columns), names
    assert names["a_b_c14cddc0"] == "a_b_c14cddc0" and names["a/b"].startswith("a_b_c14cddc0")
    assert names["a/b"] != "a_b_c14cddc0"


def test_model_inputs_keys_a_tables_columns_by_their_input_names():
    columns = {"ß/ü": np.array(["x"], object), "amount": np.array([1.0], "float32")}
    fed = model_inputs(columns)
    assert list(fed) == ["ß_ü_c87643cc", "amount"]
    assert fed["ß_ü_c87643cc"] is columns["ß/ü"] and fed["amount"] is columns["amount"]
