"""A wide table of numbers (issue 30 §1): trained as one block, scored by its columns, here and without kerasflow.

300 float columns x 200 rows through train_flow, then scored by ``kerasflow predict``, a
Predictor and the SavedModel in a process without kerasflow; each row's score is computed
here from the training statistics and the model's weights, column by column, so a block
whose columns were out of order would not pass.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import kerasflow
from kerasflow.flows.predict import predict_flow
from kerasflow.flows.recipes import load_recipe
from kerasflow.flows.train import train_flow
from kerasflow.models.input_names import NUMBERS_INPUT
from kerasflow.models.registry import ModelRegistry
from kerasflow.tasks.config import DataConfig
from tests.flows.test_portable_model import assert_same_scores, saved_model_of, score_without_kerasflow
from tests.tables import write_frame

pytestmark = pytest.mark.usefixtures("prefect_server")

COLUMNS = [f"f{i}" for i in range(300)]


def wide_frame(rows: int, *, seed: int) -> pd.DataFrame:
    """``rows`` rows of 300 float columns, each of its own scale and offset, and a label of the first ten."""
    rng = np.random.default_rng(seed)
    scale, offset = np.linspace(0.5, 20.0, len(COLUMNS)), np.linspace(-50.0, 50.0, len(COLUMNS))
    x = (rng.normal(size=(rows, len(COLUMNS))) * scale + offset).astype("float32")
    label = ((x[:, :10] - offset[:10]) / scale[:10]).sum(axis=1) + rng.normal(size=rows) > 0
    return pd.DataFrame(x, columns=COLUMNS).assign(label=label.astype("int64"))


def expected_probability(frame: pd.DataFrame, model, statistics: dict) -> np.ndarray:
    """P(class 1) of each row, column by column: gaps filled with the training mean, normalized, two Dense layers."""
    means = np.array([statistics[c]["mean"] for c in COLUMNS])
    stds = np.array([statistics[c]["std"] or 1.0 for c in COLUMNS])
    x = frame[COLUMNS].to_numpy("float64")
    z = (np.where(np.isnan(x), means, x) - means) / stds
    hidden, output = model.get_layer("fraud_tabular").layers[1:][::2][:2]  # Dense(64), Dense(1): dropout between
    w1, b1 = hidden.get_weights()
    w2, b2 = output.get_weights()
    logits = np.maximum(z @ w1 + b1, 0.0) @ w2 + b2
    return 1.0 / (1.0 + np.exp(-logits.ravel()))


def test_a_wide_table_trains_as_one_block_and_every_client_scores_it_by_its_columns(root, tmp_path):
    url = write_frame(str(tmp_path / "wide.parquet"), wide_frame(200, seed=0))
    overrides = [
        f"data.url={url}",
        "training.epochs=2",
        "training.batch_size=32",
        "training.early_stopping.enabled=false",
    ]
    summary = train_flow(config=load_recipe("fraud_tabular", [*overrides, "gate.value={}", "gate.change={}"]))
    assert summary.outcome == "promoted", summary.message

    registry = ModelRegistry(f"{root}/registry")
    model = registry.load("fraud-tabular", 1)
    # One input of 300 columns and a handful of layers, not 300 inputs.
    assert list(model.input) == [NUMBERS_INPUT] and tuple(model.input[NUMBERS_INPUT].shape) == (None, 300)
    assert len(model.layers) <= 5, [layer.name for layer in model.layers]
    metadata = registry.get("fraud-tabular", 1)
    # metadata.json sorts its keys (f10 before f2): the block's order is the recorded feature names'.
    assert metadata["dataset"]["feature_names"] == COLUMNS and sorted(metadata["dataset"]["column_types"]) == sorted(
        COLUMNS
    )
    statistics = metadata["dataset"]["statistics"]["train"]["columns"]

    incoming = wide_frame(40, seed=5).drop(columns=["label"])
    incoming.iloc[:5, 7] = np.nan  # gaps: filled with the training mean, as training would have
    incoming = incoming.assign(txn_id=[f"t{i}" for i in range(len(incoming))])
    expected = expected_probability(incoming, model, statistics)

    output = tmp_path / "scores.parquet"
    rows = write_frame(str(tmp_path / "incoming.parquet"), incoming)
    data = DataConfig(source="files", url=rows)
    predict_flow(model="fraud-tabular@production", output=str(output), data=data, key_column="txn_id")
    written = pd.read_parquet(output)
    assert list(written["txn_id"]) == list(incoming["txn_id"])
    scored = written["probability"].where(written["class_id"] == 1, 1 - written["probability"]).to_numpy()
    np.testing.assert_allclose(scored, expected, rtol=1e-4, atol=1e-5)

    predictor = kerasflow.load_predictor("fraud-tabular", root=str(root))
    pd.testing.assert_frame_equal(predictor.predict(incoming, key_column="txn_id"), written, atol=1e-6)

    # The SavedModel takes one float32 argument per column, as before the block, and needs no kerasflow.
    served, report = score_without_kerasflow(
        tmp_path,
        saved_model=saved_model_of(root, "fraud-tabular", 1),
        kind="table",
        rows=rows,
        columns={c: c for c in COLUMNS},
    )
    assert report["inputs"] == {c: ["float32", [None]] for c in COLUMNS}
    assert_same_scores(served["object"][:, 0], expected, kind="wide table")
