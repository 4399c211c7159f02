"""The ``text`` column type: tokens as TextVectorization sees them, an encoding made from the training facts."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kerasflow.models import io
from kerasflow.models.column_types import ColumnFacts, TypedColumn, build_encoder, check_params, column_type
from kerasflow.models.text_columns import text_tokens
from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.data.text_statistics import TextStats
from kerasflow.tasks.train.table_encoding import column_facts

# Tickets as people write them: capitals (ASCII and not), punctuation inside and between words,
# runs of spaces, tabs and newlines, a vertical tab, a no-break space (not a separator for TensorFlow).
TICKETS = [
    "Refund NOT received, order #123!",
    "",
    "  LOGIN\tfails   since the UPDATE...\nplease help",
    "Ünïcode Straße: don't-stop it's_ok\x0bnext",
    "price\u00a0tag 10.50€ (approx.)",
    "!!! ???",
    "refund refund REFUND",
]


def test_tokens_are_those_keras_text_vectorization_looks_up():
    import tensorflow as tf

    ours = [text_tokens(text) for text in TICKETS]
    assert ours[0] == ["refund", "not", "received", "order", "123"] and ours[1] == [] and ours[5] == []
    # TensorFlow lowers ASCII letters only and splits on ASCII whitespace only.
    assert ours[3][:2] == ["Ünïcode", "straße"] and ours[3][-2:] == ["itsok", "next"]
    assert "price\u00a0tag" in ours[4]
    vocabulary = sorted({token for tokens in ours for token in tokens})
    layer = keras.layers.TextVectorization(vocabulary=vocabulary, output_mode="int", ragged=True)
    ids = layer(tf.constant(TICKETS))
    looked_up = [[vocabulary[i - 2] if i >= 2 else "(oov)" for i in row] for row in ids.to_list()]
    assert looked_up == ours


def encoded(mode: str, stats: TextStats, texts: list[str], **params):
    facts = {"description": column_facts(stats, storage="string")}
    encoder = build_encoder([TypedColumn("description", "text", {"output_mode": mode, **params})], facts)
    model = keras.Model(encoder.inputs, encoder.encoded)
    return np.asarray(model.predict({"description": np.array(texts, dtype=object)}, verbose=0)), encoder, model


def test_the_encoding_is_made_from_the_training_facts_as_keras_adapt_would_make_it():
    import tensorflow as tf

    stats = TextStats()
    stats.add(np.array(TICKETS, dtype=object))
    new = ["refund for order 123", "", "something never seen", "LOGIN login Login"]

    multi_hot, encoder, _ = encoded("multi_hot", stats, new)
    names = encoder.names
    assert names[0] == "description[(other)]" and names[1] == "description[refund]", "by falling document frequency"
    assert multi_hot.dtype == np.float32 and multi_hot.shape == (4, encoder.width)
    row = dict(zip(names, multi_hot[0], strict=True))
    assert row["description[refund]"] == row["description[order]"] == row["description[123]"] == 1
    assert row["description[(other)]"] == 1  # "for" was never seen in training
    assert not multi_hot[1].any(), "the empty text holds no token"
    assert multi_hot[3][names.index("description[login]")] == 1
    count, _, _ = encoded("count", stats, new)
    assert count[3][names.index("description[login]")] == 3

    # tf_idf: the same weights as a TextVectorization adapted on the training texts (its own order of tokens).
    tf_idf, _, _ = encoded("tf_idf", stats, new)
    adapted = keras.layers.TextVectorization(output_mode="tf_idf")
    adapted.adapt(tf.constant(TICKETS))
    theirs = np.asarray(adapted(tf.constant(new)))
    their_names = adapted.get_vocabulary()
    for token in ("refund", "order", "123", "login"):
        np.testing.assert_allclose(
            tf_idf[:, names.index(f"description[{token}]")], theirs[:, their_names.index(token)], rtol=1e-6
        )
    assert len(names) - 1 == len(their_names) - 1 == len(stats.documents)

    capped, capped_encoder, _ = encoded("multi_hot", stats, new, max_tokens=3)
    assert capped_encoder.names == ["description[(other)]", "description[refund]", *capped_encoder.names[2:]]
    assert capped.shape == (4, 4)


def test_a_saved_text_encoding_loads_under_safe_mode_and_scores_the_same(tmp_path):
    stats = TextStats()
    stats.add(np.array(TICKETS, dtype=object))
    new = ["refund for order 123", "", "LOGIN login"]
    for mode in ("multi_hot", "tf_idf"):
        before, _, model = encoded(mode, stats, new)
        path = tmp_path / f"{mode}.keras"
        model.save(path)
        loaded = io.load_model(str(path))
        after = np.asarray(loaded.predict({"description": np.array(new, dtype=object)}, verbose=0))
        np.testing.assert_array_equal(before, after)


def test_a_column_whose_training_texts_hold_no_token_still_encodes():
    stats = TextStats()
    stats.add(np.array(["", "!!!", None], dtype=object))
    values, encoder, _ = encoded("tf_idf", stats, ["anything at all", ""])
    assert encoder.width == 2 and values[:, 1].tolist() == [0, 0]


def test_text_params_are_checked_when_the_recipe_is_read():
    assert check_params("description", "text", {}) == {"output_mode": "multi_hot", "max_tokens": 10_000}
    assert not column_type("text").categorical and column_type("text").storage == "string"
    with pytest.raises(ValueError, match=r"received output_mode='int' for text column 'description'.*multi_hot"):
        DataConfig(source="files", url="t.csv", columns={"description": {"type": "text", "output_mode": "int"}})
    with pytest.raises(ValueError, match=r"received output_mode='bag' .* expected one of \['multi_hot', 'count'"):
        DataConfig(source="files", url="t.csv", columns={"description": {"type": "text", "output_mode": "bag"}})
    with pytest.raises(ValueError, match=r"received max_tokens=50000 .* expected 1 to 20000"):
        DataConfig(source="files", url="t.csv", columns={"description": {"type": "text", "max_tokens": 50_000}})
    with pytest.raises(ValueError, match=r"received \['output_mode'\] for column 'country' of type 'string_cat"):
        DataConfig(
            source="files", url="t.csv", columns={"country": {"type": "string_categorical", "output_mode": "count"}}
        )
    data = DataConfig(source="files", url="t.csv", columns={"d": {"type": "text", "output_mode": "tf_idf"}})
    assert data.columns["d"].params() == {"output_mode": "tf_idf"}  # type: ignore[index]
    assert ColumnFacts().idf == ()
