"""A fraud team's transactions table, end to end: numbers, text categories, gaps and 1-2 % fraud.

Trained, gated, registered and scored through the real flows; from local files and from S3.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kerasflow.flows.predict import predict_flow
from kerasflow.flows.recipes import load_recipe
from kerasflow.flows.train import train_flow
from kerasflow.models.number_block import model_feed
from kerasflow.models.registry import ModelRegistry
from kerasflow.tasks.config import ConfigError, DataConfig, TrainConfig
from kerasflow.tasks.drift import DataDrifted
from kerasflow.tasks.failures import DataValidationError
from tests.tables import transactions_frame, write_frame

pytestmark = pytest.mark.usefixtures("prefect_server")

# The team names its columns and types; hour is bucketed, a merchant category crossed with the channel.
DECLARED = [
    "data.columns={amount: float_normalized, hour: {type: float_discretized, num_bins: 6}, "
    "country: string_categorical, merchant_category: string_categorical, channel: string_categorical, "
    "customer_age: float_normalized}",
    "data.crosses=[{columns: [merchant_category, channel], num_bins: 32}]",
]


def new_transactions(rows: int = 400) -> pd.DataFrame:
    """Tomorrow's transactions: no label, an id, a country never seen in training, and gaps."""
    frame = transactions_frame(rows, seed=11).drop(columns=["label"])
    frame.loc[:9, "country"] = "xx"
    frame.loc[10:14, "amount"] = np.nan
    return frame.assign(txn_id=[f"t{i}" for i in range(rows)])


def test_a_transactions_table_trains_gates_registers_and_scores_raw_rows(root, tmp_path):
    url = write_frame(str(tmp_path / "transactions.parquet"), transactions_frame(6000, seed=2))
    config = load_recipe("fraud_tabular", [f"data.url={url}", "training.epochs=20", *DECLARED])
    summary = train_flow(config=config)
    assert summary.outcome == "promoted", summary.message
    assert summary.metrics["auc"] >= 0.8  # the recipe's own gate, on 1.3 % fraud

    registry = ModelRegistry(f"{root}/registry")
    metadata = registry.get("fraud-tabular", 1)
    dataset = metadata["dataset"]
    assert dataset["column_types"]["hour"] == "float_discretized" and dataset["missing"] == "fill"
    train = dataset["statistics"]["train"]
    assert train["columns"]["country"]["missing"] > 0 and train["columns"]["country"]["unique"] == 9
    assert train["columns"]["customer_age"]["missing"] > 0 and train["columns"]["amount"]["min"] > 0
    assert set(train["label"]["top"][0]) and train["label"]["top"][0][0] == "0"

    output = tmp_path / "scores.parquet"
    incoming = new_transactions()
    write_frame(str(tmp_path / "incoming.csv"), incoming)
    scored = predict_flow(
        model="fraud-tabular@production",
        output=str(output),
        data=DataConfig(source="files", url=str(tmp_path / "incoming.csv")),
        key_column="txn_id",
    )
    frame = pd.read_parquet(output)
    assert scored.rows == len(frame) == 400 and list(frame["txn_id"]) == list(incoming["txn_id"])
    # The saved model scores the raw columns itself: strings, an unseen country, missing numbers.
    model = registry.load("fraud-tabular", 1)
    feed = {
        "amount": incoming["amount"].to_numpy("float32"),
        "hour": incoming["hour"].to_numpy("float32"),
        "customer_age": incoming["customer_age"].to_numpy("float32"),
        **{c: incoming[c].fillna("(missing)").to_numpy(object) for c in ("country", "merchant_category", "channel")},
    }
    # The numbers go in as one block (models/number_block.py) in the table's order (metadata.json sorts its keys:
    # the feature names keep it), the categories one input each.
    types = {column: dataset["column_types"][column] for column in dataset["feature_names"]}
    direct = model.predict(model_feed(feed, types=types, block=True), verbose=0).ravel()
    np.testing.assert_allclose(
        frame["probability"].where(frame["class_id"] == 1, 1 - frame["probability"]), direct, rtol=1e-5, atol=1e-6
    )
    assert np.isfinite(direct).all()

    # The scored rows look like the training data: the skew report beside the scores says so.
    report = json.loads((tmp_path / "scores.skew.json").read_text())
    assert sorted(c["column"] for c in report["columns"]) == sorted(dataset["column_types"])
    assert not [c for c in report["columns"] if c["distance"] > c["threshold"]], report
    # A day whose amounts tripled: scored, and the report names the column.
    skewed = incoming.assign(amount=incoming["amount"] * 3)
    write_frame(str(tmp_path / "skewed.csv"), skewed)
    day = DataConfig(source="files", url=str(tmp_path / "skewed.csv"))
    predict_flow(model="fraud-tabular@production", output=str(tmp_path / "skewed.parquet"), data=day)
    report = json.loads((tmp_path / "skewed.skew.json").read_text())
    assert [c["column"] for c in report["columns"] if c["distance"] > c["threshold"]] == ["amount"]
    # Asked to fail on skew: no scores written, the report is.
    with pytest.raises(DataDrifted, match=r"^skew: 1 of 6 column\(s\) drifted from fraud-tabular v1's training data"):
        predict_flow(
            model="fraud-tabular@production", output=str(tmp_path / "refused.parquet"), data=day, fail_on_skew=True
        )
    assert not (tmp_path / "refused.parquet").exists() and (tmp_path / "refused.skew.json").exists()

    # A number column holding text is refused by name and row, before anything is written.
    broken = incoming.assign(amount=incoming["amount"].astype(object))
    broken.loc[20, "amount"] = "twelve"
    write_frame(str(tmp_path / "broken.csv"), broken)
    with pytest.raises(DataValidationError, match=r"broken.csv: check 'numeric' failed: column 'amount' .* row 20"):
        predict_flow(
            model="fraud-tabular@production",
            output=str(tmp_path / "broken-scores.parquet"),
            data=DataConfig(source="files", url=str(tmp_path / "broken.csv")),
        )
    assert not (tmp_path / "broken-scores.parquet").exists()


def test_a_transactions_table_on_s3_in_daily_files_trains_and_scores(s3_root, s3_bucket):
    # 5 % fraud, so the test split holds about 30 frauds: an AUC of a handful is a seed's luck.
    frame = transactions_frame(4000, seed=5, fraud_rate=0.05)
    for day, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):
        write_frame(f"{s3_bucket}/transactions/date=2026-11-0{day + 1}/part-0.parquet", frame.iloc[rows])
    config = load_recipe(
        "fraud_tabular",
        [f"data.url={s3_bucket}/transactions/date=*/part-*.parquet", "training.epochs=12", "gate.value={}"],
    )
    summary = train_flow(config=config)
    assert summary.outcome == "promoted", summary.message
    metadata = ModelRegistry(f"{s3_root}/registry").get("fraud-tabular", 1)
    assert metadata["dataset"]["column_types"]["country"] == "string_categorical"
    assert metadata["metrics"]["values"]["auc"] > 0.7

    write_frame(f"{s3_bucket}/incoming/part-0.parquet", new_transactions(100))
    scored = predict_flow(
        model="fraud-tabular@production",
        output=f"{s3_bucket}/scores/today.parquet",
        data=DataConfig(source="files", url=f"{s3_bucket}/incoming/part-0.parquet"),
        key_column="txn_id",
    )
    assert scored.rows == 100


def test_the_fraud_recipe_on_a_label_of_many_classes_is_refused_after_ingest_before_any_training(root, tmp_path):
    # fraud_tabular watches val_auc, which a binary label reports; 300 classes are multiclass (no AUC). Keras
    # failed after ingest and the first epoch with a raw ValueError about mode='max'.
    frame = transactions_frame(900, seed=3).assign(label=[f"c{i % 300}" for i in range(900)])
    url = write_frame(str(tmp_path / "many.parquet"), frame)
    with pytest.raises(ConfigError, match=r"early_stopping.monitor='val_auc', which a multiclass model does not"):
        train_flow(
            config=load_recipe("fraud_tabular", [f"data.url={url}", "model.num_classes=null", "training.epochs=1"])
        )
    assert list((root / "datasets").glob("*/ref.json")), "ingested"
    assert not (root / "runs").exists() and not (root / "registry").exists(), "nothing validated, trained or kept"


def test_a_table_recipe_naming_no_model_trains_the_zoos_table_model(root, tmp_path):
    # It got the quickstart's digits_cnn: a Conv2D rank error after ingest and 39 s.
    url = write_frame(str(tmp_path / "t.parquet"), transactions_frame(1500, seed=5))
    data = {"source": "files", "url": url, "missing": "fill"}
    summary = train_flow(config=TrainConfig.smoke(data=data, model={"name": "tx"}))
    assert summary.outcome == "promoted", summary.message
    assert ModelRegistry(f"{root}/registry").get("tx", 1)["builder"]["reference"] == "tabular_mlp"


# Column names as real tables have them: a slash (which Keras refuses in a layer's name), a
# currency sign and spaces, a leading digit, and two that read alike once the slash is replaced.
ODD_NAMES = {"country": "ß/ü", "amount": "price (€)", "merchant_category": "a/b", "channel": "a_b", "hour": "2nd"}
ODD_DECLARED = [
    'data.columns={"price (€)": float_normalized, "2nd": {type: float_discretized, num_bins: 4}, '
    '"ß/ü": string_categorical, "a/b": {type: string_hashed, num_bins: 16}, "a_b": string_categorical, '
    "customer_age: float_normalized}",
    'data.crosses=[{columns: ["a/b", "a_b"], num_bins: 8}]',
]


def test_columns_of_any_name_train_and_are_scored_by_their_own_names(root, tmp_path):
    import tensorflow as tf

    import kerasflow
    from kerasflow.models.column_types import serving_names

    frame = transactions_frame(600, seed=2, fraud_rate=0.3).rename(columns=ODD_NAMES)
    url = write_frame(str(tmp_path / "transactions.parquet"), frame)
    overrides = [f"data.url={url}", "training.epochs=1", "gate.value={}", *ODD_DECLARED]
    summary = train_flow(config=load_recipe("fraud_tabular", overrides))
    assert summary.outcome == "promoted", summary.message

    # What the user sees keeps the columns' own names: the recorded signature, the statistics.
    registry = ModelRegistry(f"{root}/registry")
    dataset = registry.get("fraud-tabular", 1)["dataset"]
    columns = ["price (€)", "2nd", "ß/ü", "a/b", "a_b", "customer_age"]
    assert sorted(dataset["column_types"]) == sorted(dataset["statistics"]["train"]["columns"]) == sorted(columns)

    # Scored from a file whose columns keep their names, and from a DataFrame: the same scores.
    incoming = new_transactions(50).rename(columns=ODD_NAMES)
    write_frame(str(tmp_path / "incoming.csv"), incoming)
    output = tmp_path / "scores.parquet"
    data = DataConfig(source="files", url=str(tmp_path / "incoming.csv"))
    scored = predict_flow(model="fraud-tabular@production", output=str(output), data=data, key_column="txn_id")
    written = pd.read_parquet(output)
    assert scored.rows == len(written) == 50 and list(written["txn_id"]) == list(incoming["txn_id"])
    predictor = kerasflow.load_predictor("fraud-tabular", root=str(root))
    assert sorted(predictor.columns) == sorted(columns)
    scores = predictor.predict(incoming, key_column="txn_id")
    pd.testing.assert_frame_equal(scores, written, check_exact=False, rtol=1e-6, atol=1e-6)
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['ß/ü'\] the model was trained on"):
        predictor.predict(incoming.drop(columns=["ß/ü"]))

    # The SavedModel for TF Serving scores the same rows, each column under its serving name.
    served = tf.saved_model.load(str(root / "registry" / "fraud-tabular" / "versions" / "1" / "saved_model"))
    feed = {
        "price (€)": incoming["price (€)"].to_numpy("float32"),
        "2nd": incoming["2nd"].to_numpy("float32"),
        "customer_age": incoming["customer_age"].to_numpy("float32"),
        **{c: incoming[c].fillna("(missing)").to_numpy(object) for c in ("ß/ü", "a/b", "a_b")},
    }
    from kerasflow.models.input_names import input_names

    names = input_names(columns)
    serving = dict(zip(names.values(), serving_names(list(names.values())), strict=True))
    outputs = served.signatures["serve"](**{serving[names[c]]: tf.constant(feed[c]) for c in columns})
    probability = next(iter(outputs.values())).numpy().ravel()
    expected = scores["probability"].where(scores["class_id"] == 1, 1 - scores["probability"])
    np.testing.assert_allclose(probability, expected, rtol=1e-5, atol=1e-6)
