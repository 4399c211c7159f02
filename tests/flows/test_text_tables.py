"""A support team's tickets table with a free-text description, end to end through the real flows.

Trained with no model named (the zoo's table model takes the text's bag of words), its
statistics recorded by text length, scored from a CSV by ``predict`` and from a DataFrame
by ``load_predictor`` (a missing description, words never seen), skew and drift reported
by the texts' lengths. The SavedModel scoring raw text without kerasflow is in
test_portable_model.py.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

import kerasflow
from kerasflow.flows.predict import predict_flow
from kerasflow.flows.train import train_flow
from kerasflow.models.registry import ModelRegistry
from kerasflow.tasks.config import DataConfig, TrainConfig
from kerasflow.tasks.drift import DataDrifted
from tests.tables import tickets_frame, write_frame

pytestmark = pytest.mark.usefixtures("prefect_server")

COLUMNS = {
    "description": {"type": "text", "output_mode": "tf_idf", "max_tokens": 500},
    "product": "string_categorical",
    "account_days": "float_normalized",
}


def tickets_config(url: str, **data) -> TrainConfig:
    return TrainConfig.smoke(
        data={"source": "files", "url": url, "label_column": "queue", "columns": COLUMNS, **data},
        model={"name": "tickets"},
        training={"epochs": 8},
        gate={"value": {"accuracy": {"min": 0.8}}},
    )


def test_a_tickets_table_trains_with_no_model_named_and_scores_raw_text(root, tmp_path):
    url = write_frame(str(tmp_path / "tickets.csv"), tickets_frame(900, seed=1))
    summary = train_flow(config=tickets_config(url))
    assert summary.outcome == "promoted", summary.message  # accuracy past 0.8 on three queues: the words were read
    registry = ModelRegistry(f"{root}/registry")
    metadata = registry.get("tickets", 1)
    assert metadata["builder"]["reference"] == "tabular_mlp"
    assert metadata["dataset"]["column_types"]["description"] == "text"
    description = metadata["dataset"]["statistics"]["train"]["columns"]["description"]
    assert description["kind"] == "text" and 5 < description["tokens_per_text"]["mean"] < 11

    # New tickets: a missing description, words never seen, shouting, an id to key the scores by.
    incoming = tickets_frame(40, seed=7).drop(columns=["queue"])
    incoming.loc[0, "description"] = None
    incoming.loc[1, "description"] = "Zyxx qwerty flurb"
    incoming.loc[2, "description"] = "REFUND!!! CHARGED TWICE!!!"
    incoming = incoming.assign(ticket_id=[f"T-{i}" for i in range(len(incoming))])
    write_frame(str(tmp_path / "incoming.csv"), incoming)
    output = tmp_path / "scores.parquet"
    data = DataConfig(source="files", url=str(tmp_path / "incoming.csv"))
    scored = predict_flow(model="tickets@production", output=str(output), data=data, key_column="ticket_id")
    written = pd.read_parquet(output)
    assert scored.rows == len(written) == 40 and list(written["ticket_id"]) == list(incoming["ticket_id"])
    assert written.loc[2, "prediction"] == "billing"
    predictor = kerasflow.load_predictor("tickets", root=str(root))
    scores = predictor.predict(incoming, key_column="ticket_id")
    pd.testing.assert_frame_equal(scores, written, check_exact=False, rtol=1e-6, atol=1e-6)
    # A missing text is the empty text: scored as "", not as a word "missing".
    empty = predictor.predict(incoming.assign(description=[""] * len(incoming)))
    assert empty.loc[0, "prediction"] == scores.loc[0, "prediction"]
    pd.testing.assert_series_equal(empty.iloc[0], scores.drop(columns="ticket_id").iloc[0], check_names=False)

    # Skew and drift of a text column are by its length: tickets three times as long are named.
    report = json.loads((tmp_path / "scores.skew.json").read_text())
    (text,) = [c for c in report["columns"] if c["column"] == "description"]
    assert text["distance"] < text["threshold"] and text["measure"] == "jensen_shannon", report  # 40 rows alike
    longer = tickets_frame(900, seed=2, words=24)
    write_frame(str(tmp_path / "longer.csv"), longer.drop(columns=["queue"]))
    predict_flow(
        model="tickets@production",
        output=str(tmp_path / "longer.parquet"),
        data=DataConfig(source="files", url=str(tmp_path / "longer.csv")),
    )
    report = json.loads((tmp_path / "longer.skew.json").read_text())
    drifted = [c for c in report["columns"] if c["distance"] > c["threshold"]]
    assert [c["column"] for c in drifted] == ["description"] and drifted[0]["detail"].startswith("tokens per text")
    url = write_frame(str(tmp_path / "longer-labelled.csv"), longer)
    with pytest.raises(DataDrifted, match=r"description: jensen-shannon .* \(tokens per text: mean"):
        train_flow(config=tickets_config(url).with_overrides(["validation.drift.action=fail"]))
