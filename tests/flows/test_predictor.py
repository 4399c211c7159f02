"""A registered model used from Python (issue 30 §4): ``kerasflow.load_model`` and a predictor scoring DataFrames.

The predictor is held to ``kerasflow predict``: the same rows, in a file for the flow and in
memory for the predictor, give the same columns and values; a frame missing a column is
refused as the file is.
"""

from __future__ import annotations

import contextlib
import threading

import keras
import numpy as np
import pandas as pd
import pytest

import kerasflow
from kerasflow.flows.predict import predict_flow
from kerasflow.flows.recipes import load_recipe
from kerasflow.flows.train import train_flow
from kerasflow.models import io
from kerasflow.models.registry import ModelRegistry, RegistryError
from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.failures import DataValidationError
from tests.tables import transactions_frame


def test_load_model_is_the_registered_model_verified_as_the_registry_loads_it(root, tmp_path):
    registry = ModelRegistry(f"{root}/registry")
    model_file = tmp_path / "candidate.keras"
    io.save_model(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")]), model_file)
    registry.register("digits", model_file=model_file, metadata={}, idempotency_key="a")
    registry.set_alias("digits", "production", 1, reason="first", actor="test")
    rows = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    expected = registry.load("digits", "production").predict(rows, verbose=0)

    # NAME alone is NAME@production; the root defaults to $KERASFLOW_ROOT, as for the command.
    for ref, options in (("digits", {}), ("digits@production", {"root": str(root)}), ("digits@1", {})):
        loaded = kerasflow.load_model(ref, **options)
        np.testing.assert_allclose(loaded.predict(rows, verbose=0), expected, rtol=0, atol=0)
    with pytest.raises(RegistryError, match="model 'digits' has no alias 'staging'"):
        kerasflow.load_model("digits@staging")
    with pytest.raises(io.ModelLoadError, match="trusted package 'no_such_team_package' cannot be imported"):
        kerasflow.load_model("digits", trusted_packages=["no_such_team_package"])
    # A model of arrays (no recorded feature columns) scores files, not frames; refused before it is fetched.
    with pytest.raises(DataValidationError, match="digits: its metadata names no feature columns"):
        kerasflow.load_predictor("digits")

    stored = root / "registry" / "digits" / "versions" / "1" / "model.keras"
    stored.write_bytes(stored.read_bytes() + b"tampered")
    with pytest.raises(io.ModelIntegrityError, match="changed or corrupted") as info:
        kerasflow.load_model("digits@production")
    assert "digits v1" in str(info.value)


@pytest.fixture(scope="module")
def trained(prefect_server, tmp_path_factory):
    """A storage root holding a table model trained briefly: numbers, text categories and gaps."""
    folder = tmp_path_factory.mktemp("predictor")
    table = folder / "transactions.parquet"
    transactions_frame(800, seed=2, fraud_rate=0.3).to_parquet(table, index=False)
    root = str(folder / "root")
    overrides = [f"data.url={table}", f"storage.root={root}", "training.epochs=2", "gate={value: {accuracy: {min: 0}}}"]
    summary = train_flow(config=load_recipe("fraud_tabular", overrides))
    assert summary.outcome == "promoted", summary.message
    return root


def new_rows(rows: int = 60) -> pd.DataFrame:
    """Rows to score: an id, a country never seen in training, missing numbers and text; no label."""
    frame = transactions_frame(rows, seed=11).drop(columns=["label"])
    frame.loc[:4, "country"] = "xx"
    frame.loc[5:8, "amount"] = np.nan
    frame.loc[9:11, "merchant_category"] = None
    return frame.assign(txn_id=[f"t{i}" for i in range(rows)])


@contextlib.contextmanager
def no_prefect_api():
    """Fail what, in this thread, would talk to a Prefect API or start a server (Prefect's own workers may)."""
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient
    from prefect.server.api.server import SubprocessASGIServer

    with pytest.MonkeyPatch.context() as patch:
        for target in (PrefectClient, SyncPrefectClient, SubprocessASGIServer):

            def guarded(self, *args, _original=target.__init__, _target=target, **kwargs):
                if threading.current_thread() is threading.main_thread():
                    raise AssertionError(f"the predictor made a {_target.__name__}")
                _original(self, *args, **kwargs)

            patch.setattr(target, "__init__", guarded)
        yield


def test_a_predictor_scores_a_frame_as_kerasflow_predict_scores_the_same_rows_in_a_file(trained, tmp_path):
    frame = new_rows()
    with no_prefect_api():
        predictor = kerasflow.load_predictor("fraud-tabular@production", root=trained)
        # Another index, the columns in another order, one more column: matched by name, the index kept.
        shuffled = frame[["txn_id", *reversed(predictor.columns)]].set_axis(range(100, 100 + len(frame)))
        scores = predictor.predict(shuffled.assign(note="ignored"), key_column="txn_id")
        unkeyed = predictor.predict(frame)
        empty = predictor.predict(frame.iloc[:0], key_column="txn_id")
    assert (predictor.name, predictor.version) == ("fraud-tabular", 1)

    incoming = tmp_path / "incoming.csv"
    frame.to_csv(incoming, index=False)
    output = tmp_path / "scores.parquet"
    predict_flow(
        model="fraud-tabular@production",
        output=str(output),
        data=DataConfig(source="files", url=str(incoming)),
        key_column="txn_id",
        root=trained,
    )
    written = pd.read_parquet(output)

    assert list(scores.columns) == list(written.columns)
    assert list(scores.index) == list(shuffled.index)
    pd.testing.assert_frame_equal(scores.reset_index(drop=True), written, check_exact=False, rtol=1e-6, atol=1e-6)
    # Without a key, and for no rows: the command's columns all the same.
    assert list(unkeyed.columns) == [c for c in written.columns if c != "txn_id"]
    assert len(empty) == 0 and list(empty.columns) == list(written.columns)


def test_a_frame_missing_a_signature_column_is_refused_as_the_command_refuses_a_file(trained, tmp_path):
    frame = new_rows(10).drop(columns=["country"])
    incoming = tmp_path / "incoming.csv"
    frame.to_csv(incoming, index=False)
    with pytest.raises(DataValidationError) as from_file:
        predict_flow(
            model="fraud-tabular",
            output=str(tmp_path / "scores.parquet"),
            data=DataConfig(source="files", url=str(incoming)),
            root=trained,
        )

    predictor = kerasflow.load_predictor("fraud-tabular", root=trained)
    with pytest.raises(DataValidationError) as from_frame:
        predictor.predict(frame)

    assert "check 'input signature' failed: missing column(s) ['country'] the model was trained on" in str(
        from_frame.value
    )
    assert str(from_frame.value) == str(from_file.value).replace(str(incoming), "DataFrame", 1)
    assert not (tmp_path / "scores.parquet").exists()
