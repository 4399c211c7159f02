"""A typed table's encoding as training feeds it: the table's columns by their own names, whatever they are."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kerasflow.models.column_types import ColumnFacts, TypedColumn, build_encoder
from kerasflow.tasks.train.table_encoding import column_encoding


def test_the_encoding_takes_a_batch_of_the_tables_columns_by_their_own_names_inside_tf_data():
    # As a builder's un-adapted preprocessing is adapted: the training split's batches mapped through it.
    columns = [
        TypedColumn("ß/ü", "string_categorical"),
        TypedColumn("a/b", "float_normalized"),
        TypedColumn("a_b", "float_normalized"),
    ]
    facts = {
        "ß/ü": ColumnFacts(vocabulary=("x",)),
        "a/b": ColumnFacts(mean=1.0, std=2.0),
        "a_b": ColumnFacts(mean=-1.0, std=0.5),
    }
    encoder = build_encoder(columns, facts)
    batch = {"ß/ü": ["x", "y"], "a/b": [3.0, 1.0], "a_b": [-1.0, 0.0]}
    encoded = next(iter(tf.data.Dataset.from_tensors(batch).map(column_encoding(encoder)))).numpy()
    by_name = {name: encoded[:, i] for i, name in enumerate(encoder.names)}
    np.testing.assert_allclose(by_name["a/b"], [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(by_name["a_b"], [0.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(by_name["ß/ü=x"], [1.0, 0.0])
