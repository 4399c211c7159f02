"""A typed table's encoding: every column type, missing values, unseen categories, saved and loaded safely."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from dataclasses import replace

import keras
import numpy as np
import pytest

from kerasflow.models import io
from kerasflow.models.column_types import (
    COLUMN_TYPES,
    MISSING_INTEGER,
    MISSING_TEXT,
    ColumnFacts,
    Cross,
    TypedColumn,
    build_encoder,
    check_params,
    quantile_boundaries,
    register_column_type,
    register_stacked_encoding,
    serving_names,
)
from kerasflow.models.input_names import NUMBERS_INPUT, input_names
from kerasflow.models.number_block import model_feed

COLUMNS = [
    TypedColumn("amount", "float_normalized"),
    TypedColumn("raw", "float"),
    TypedColumn("scaled", "float_rescaled", {"scale": 0.5, "offset": 1.0}),
    TypedColumn("hour", "float_discretized", {"num_bins": 4}),
    TypedColumn("country", "string_categorical"),
    TypedColumn("mcc", "integer_categorical"),
    TypedColumn("device", "string_hashed", {"num_bins": 8}),
    TypedColumn("shop", "integer_hashed", {"num_bins": 4}),
]
FACTS = {
    "amount": ColumnFacts(mean=100.0, std=10.0, missing=3),
    "hour": ColumnFacts(quantiles=tuple(np.linspace(0, 24, 101))),
    "country": ColumnFacts(vocabulary=("de", "fr", MISSING_TEXT)),
    "mcc": ColumnFacts(vocabulary=(5411, -1, MISSING_INTEGER)),
}
ROWS = {
    "amount": np.array([110.0, np.nan, 90.0, 100.0], "float32"),
    "raw": np.array([1.0, 2.0, 3.0, 4.0], "float32"),
    "scaled": np.array([2.0, 4.0, 6.0, 8.0], "float32"),
    "hour": np.array([1.0, 7.0, 13.0, 23.0], "float32"),
    # "zz" and 7 were never seen in training: out of vocabulary, not an error.
    "country": np.array(["de", "zz", MISSING_TEXT, "fr"], dtype=object),
    "mcc": np.array([5411, -1, 7, MISSING_INTEGER], "int64"),
    "device": np.array(["ios", "web", "web", "pos"], dtype=object),
    "shop": np.array([1, 2, 3, 4], "int64"),
}


def fed(encoder, rows):
    """A batch of columns by name as the encoder's model takes it: the numbers as one block."""
    return model_feed(rows, types=encoder.types, block=True)


def encoding_model(**kwargs):
    encoder = build_encoder(COLUMNS, FACTS, **kwargs)
    return keras.Model(encoder.inputs, encoder.encoded), encoder


def test_every_type_encodes_its_column_as_the_training_statistics_say():
    model, encoder = encoding_model(fill_missing=True, crosses=[Cross(("country", "mcc"), 16)])
    encoded = np.asarray(model.predict(fed(encoder, ROWS), verbose=0))
    assert encoded.shape == (4, encoder.width) and np.isfinite(encoded).all()
    column = {name: encoded[:, i] for i, name in enumerate(encoder.names)}
    # A missing number is the training mean (0 once normalized), with its indicator set.
    np.testing.assert_allclose(column["amount"], [1.0, 0.0, -1.0, 0.0], atol=1e-5)
    np.testing.assert_array_equal(column["amount[missing]"], [0, 1, 0, 0])
    assert "raw[missing]" not in column, "no indicator for a column never missing in training"
    np.testing.assert_allclose(column["raw"], ROWS["raw"])
    np.testing.assert_allclose(column["scaled"], ROWS["scaled"] * 0.5 + 1.0)
    # Four bins at the quartiles of 0..24.
    hour_bins = encoded[:, [encoder.names.index(f"hour[bin {i}]") for i in range(4)]]
    np.testing.assert_array_equal(hour_bins.argmax(axis=1), [0, 1, 2, 3])
    # Categories one-hot over their vocabulary; unseen ones are "(other)", a missing one its own token.
    assert column["country=de"].tolist() == [1, 0, 0, 0]
    assert column["country=(other)"].tolist() == [0, 1, 0, 0]
    assert column[f"country={MISSING_TEXT}"].tolist() == [0, 0, 1, 0]
    assert column["mcc=-1"].tolist() == [0, 1, 0, 0], "-1 is a real value, not the out-of-vocabulary token"
    assert column["mcc=(other)"].tolist() == [0, 0, 1, 0]
    assert column["mcc=(missing)"].tolist() == [0, 0, 0, 1]
    for prefix, bins in (("device[hash", 8), ("shop[hash", 4), ("country x mcc[hash", 16)):
        one_hot = encoded[:, [i for i, name in enumerate(encoder.names) if name.startswith(prefix)]]
        assert one_hot.shape[1] == bins and (one_hot.sum(axis=1) == 1).all()


def test_a_saved_encoding_scores_raw_rows_the_same_in_a_clean_process_under_safe_mode(tmp_path):
    _, encoder = encoding_model(fill_missing=True, crosses=[Cross(("country", "device"), 8)])
    outputs = keras.layers.Dense(1, activation="sigmoid")(encoder.encoded)
    model = keras.Model(encoder.inputs, outputs)
    expected = model.predict(fed(encoder, ROWS), verbose=0)
    path = tmp_path / "typed.keras"
    sha = io.save_model(model, path)
    rows = {name: values.tolist() for name, values in fed(encoder, ROWS).items()}
    script = f"""
import json, sys
import numpy as np
from kerasflow.models import io
model = io.load_model({str(path)!r}, expected_sha256={sha!r})
rows = json.loads(sys.stdin.read())
feed = {{k: np.array(v, dtype=object if isinstance(v[0], str) else None) for k, v in rows.items()}}  # the block 2-D
feed = {{k: v.astype("float32") if v.dtype.kind == "f" else v for k, v in feed.items()}}
print(json.dumps(model.predict(feed, verbose=0).tolist()))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], input=json.dumps(rows), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(loaded, expected, rtol=1e-5, atol=1e-6)


def test_columns_named_as_keras_refuses_are_encoded_saved_and_exported_under_safe_input_names(tmp_path):
    import tensorflow as tf

    # A slash (Keras refuses it in a layer's name), a currency sign, a leading digit, two that read alike.
    odd = {"amount": "price (€)", "hour": "2nd", "country": "ß/ü", "device": "a/b", "raw": "a_b"}
    columns = [replace(c, name=odd.get(c.name, c.name)) for c in COLUMNS]
    facts = {odd.get(name, name): value for name, value in FACTS.items()}
    encoder = build_encoder(columns, facts, crosses=[Cross(("ß/ü", "a/b"), 8)], fill_missing=True)
    # What the builder is told keeps the columns' own names.
    assert encoder.names[:2] == ["price (€)[missing]", "price (€)"] and "ß/ü=de" in encoder.names
    model = keras.Model(encoder.inputs, keras.layers.Dense(1)(encoder.encoded))
    columns = {odd.get(name, name): values for name, values in ROWS.items()}
    rows = fed(encoder, columns)
    assert sorted(model.input) == sorted(rows) and "ß_ü_c87643cc" in rows and NUMBERS_INPUT in rows
    expected = model.predict(rows, verbose=0)
    assert np.isfinite(expected).all()
    io.save_model(model, tmp_path / "odd.keras")
    loaded = io.load_model(tmp_path / "odd.keras").predict(rows, verbose=0)
    np.testing.assert_allclose(loaded, expected, rtol=1e-6, atol=1e-6)
    # The SavedModel still takes one argument per column, numbers included, under a signature's names.
    saved = io.export_saved_model(model, tmp_path / "saved_model", column_types=encoder.types)
    served = tf.saved_model.load(str(saved))
    names = input_names(encoder.types)
    signature = dict(zip(encoder.types, serving_names([names[c] for c in encoder.types]), strict=True))
    outputs = served.signatures["serve"](**{signature[name]: tf.constant(values) for name, values in columns.items()})
    np.testing.assert_allclose(next(iter(outputs.values())).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_only_kerasflows_own_registered_layers_are_trusted_and_the_other_checks_still_hold(tmp_path):
    _, encoder = encoding_model(fill_missing=True)
    model = keras.Model(encoder.inputs, keras.layers.Dense(1)(encoder.encoded))
    path = tmp_path / "typed.keras"
    io.save_model(model, path)
    # Another class claiming kerasflow's package is refused: only the registered ones load.
    forged = tmp_path / "forged.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(forged, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "config.json":
                data = data.replace(b'"kerasflow>FillMissing"', b'"kerasflow>Evil"')
            target.writestr(item, data)
    with pytest.raises(io.UnsafeModelError, match="kerasflow>Evil"):
        io.load_model(forged)
    # A Lambda beside the encoding is refused as before.
    lambda_model = keras.Model(encoder.inputs, keras.layers.Lambda(lambda t: t * 2)(encoder.encoded))
    lambda_path = tmp_path / "lambda.keras"
    lambda_model.save(lambda_path)
    with pytest.raises(io.UnsafeModelError, match="lambda"):
        io.load_model(lambda_path)


def test_the_registry_of_types_is_open_and_checks_params():
    assert {"float", "string_categorical", "integer_hashed"} <= set(COLUMN_TYPES)
    with pytest.raises(ValueError, match=r"received \['bins'\] for column 'hour' of type 'float_discretized'"):
        check_params("hour", "float_discretized", {"bins": 3})
    assert check_params("hour", "float_discretized", {}) == {"num_bins": 10}

    @register_column_type("float_log", storage="float")
    def log_encoding(x, *, column, facts):
        return keras.layers.Reshape((1,))(keras.layers.Rescaling(1.0)(x)), [column]

    try:
        encoder = build_encoder([TypedColumn("amount", "float_log")], {})
        assert encoder.names == ["amount"]
    finally:
        COLUMN_TYPES.pop("float_log")


def test_cut_points_and_serving_names():
    assert quantile_boundaries(list(np.linspace(0, 100, 101)), 4) == [25.0, 50.0, 75.0]
    assert quantile_boundaries([5.0] * 101, 4) == [5.0], "a constant column has one cut, not three equal ones"
    assert serving_names(["area error", "area_error", "f/1", "ok"]) == ["area_error", "area_error_2", "f_1", "ok"]


def per_column_only(monkeypatch) -> None:
    """Every type encodes its columns one by one, as before stacked encodings (the reference)."""
    for name, kind in list(COLUMN_TYPES.items()):
        monkeypatch.setitem(COLUMN_TYPES, name, replace(kind, encode_stacked=None))


def test_numbers_encoded_as_one_stack_equal_their_encoding_column_by_column(monkeypatch):
    # Numbers of three stacked types between categories, two columns with gaps, a second
    # float_rescaled column of other params (its own stack), a cross at the end.
    columns = [
        TypedColumn("amount", "float_normalized"),
        TypedColumn("country", "string_categorical"),
        TypedColumn("raw", "float"),
        TypedColumn("scaled", "float_rescaled", {"scale": 0.5, "offset": 1.0}),
        TypedColumn("hour", "float_discretized", {"num_bins": 4}),
        TypedColumn("halved", "float_rescaled", {"scale": 0.5, "offset": 0.0}),
        TypedColumn("age", "float_normalized"),
        TypedColumn("mcc", "integer_categorical"),
    ]
    facts = {**FACTS, "age": ColumnFacts(mean=40.0, std=12.0, missing=1), "raw": ColumnFacts(mean=2.5)}
    rows = {**ROWS, "halved": np.array([1.0, np.nan, 3.0, 4.0], "float32"), "age": np.array([30, 50, np.nan, 41], "f")}
    rows["raw"] = np.array([1.0, 2.0, np.nan, 4.0], "float32")  # missing though never missing in training
    rows = {c.name: rows[c.name] for c in columns}
    cross = [Cross(("country", "mcc"), 8)]

    stacked = build_encoder(columns, facts, crosses=cross, fill_missing=True)
    per_column_only(monkeypatch)
    reference = build_encoder(columns, facts, crosses=cross, fill_missing=True)

    assert stacked.names == reference.names
    assert stacked.names[:3] == ["amount[missing]", "amount", "country=(other)"], "the columns' order"
    assert "age[missing]" in stacked.names and "raw[missing]" not in stacked.names
    expected = keras.Model(reference.inputs, reference.encoded).predict(fed(reference, rows), verbose=0)
    encoded = keras.Model(stacked.inputs, stacked.encoded).predict(fed(stacked, rows), verbose=0)
    np.testing.assert_allclose(encoded, expected, rtol=1e-6, atol=1e-6)
    assert np.isfinite(encoded).all()


def test_a_table_of_many_numbers_is_encoded_by_a_few_layers_not_several_per_column():
    columns = [TypedColumn(f"f{i}", "float_normalized") for i in range(30)]
    facts = {f"f{i}": ColumnFacts(mean=float(i), std=2.0, missing=i % 2) for i in range(30)}
    encoder = build_encoder(columns, facts, fill_missing=True)
    model = keras.Model(encoder.inputs, encoder.encoded)
    assert list(model.input) == [NUMBERS_INPUT], "the 30 columns are one input, not 30"
    assert len(model.layers) <= 6, [layer.name for layer in model.layers]
    assert encoder.names[:3] == ["f0", "f1[missing]", "f1"]
    row = {f"f{i}": np.array([float(i) + 2.0, np.nan], "float32") for i in range(30)}
    encoded = model.predict(fed(encoder, row), verbose=0)
    np.testing.assert_allclose(encoded[0, [encoder.names.index(f"f{i}") for i in range(30)]], 1.0, rtol=1e-5)
    np.testing.assert_allclose(encoded[1, [encoder.names.index(f"f{i}") for i in range(30)]], 0.0, atol=1e-6)


def test_a_teams_number_type_can_encode_its_columns_as_one_stack():
    @register_column_type("float_clipped", storage="float", params={"limit": 1.0})
    def clipped(x, *, column, facts, limit):
        return keras.layers.Reshape((1,))(keras.layers.ReLU(max_value=limit)(x)), [column]

    @register_stacked_encoding("float_clipped")
    def clipped_together(x, *, columns, facts, limit):
        return keras.layers.ReLU(max_value=limit)(x)

    try:
        columns = [TypedColumn("a", "float_clipped", {"limit": 2.0}), TypedColumn("b", "float_clipped")]
        encoder = build_encoder(columns, {})
        model = keras.Model(encoder.inputs, encoder.encoded)
        assert sum(isinstance(layer, keras.layers.ReLU) for layer in model.layers) == 2, "one stack per params"
        rows = {"a": np.array([5.0, -1.0], "f"), "b": np.array([5.0, 0.5], "f")}
        encoded = model.predict(fed(encoder, rows), verbose=0)
        np.testing.assert_allclose(encoded, [[2.0, 1.0], [0.0, 0.5]])
    finally:
        COLUMN_TYPES.pop("float_clipped")
    with pytest.raises(ValueError, match="a string type; expected a number type"):
        register_stacked_encoding("string_categorical")(lambda x, **_: x)
