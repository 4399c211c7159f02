"""Batch scoring with registered models: the digits test split, and new tables on S3."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from prefect import flow

from kerasflow.flows.predict import predict_flow
from kerasflow.flows.recipes import load_recipe
from kerasflow.flows.train import train_flow
from kerasflow.models.registry import ModelRegistry
from kerasflow.tasks import storage
from kerasflow.tasks.config import DataConfig, TrainConfig
from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.ingest import ingest
from kerasflow.tasks.score import check_signature, score
from tests.flows.cli.test_cli import run
from tests.tables import event_frame, write_frame, write_partitions

pytestmark = pytest.mark.usefixtures("prefect_server")


@flow(name="test-score")
def score_in_a_flow(model_ref: str, **options):
    """The score task as the predict flow runs it, with options the flow does not pass (``rows``)."""
    return score(model_ref, **options)


@flow(name="test-ingest")
def ingest_in_a_flow(data: DataConfig, root: str):
    return ingest(data, root=root)


def read_parquet(url: str) -> pd.DataFrame:
    fs, path = storage.filesystem(url)
    with fs.open(path, "rb") as f:
        return pd.read_parquet(f)


def test_digits_test_split_scored_with_production_matches_its_registered_accuracy(root, tmp_path):
    summary = train_flow(config=TrainConfig.smoke(storage={"root": str(root)}))
    output = tmp_path / "scores" / "digits.parquet"

    scored = predict_flow(model="digits@production", output=str(output))

    frame = pd.read_parquet(output)
    metadata = ModelRegistry(f"{root}/registry").get("digits", 1)
    assert scored.rows == len(frame) == metadata["dataset"]["splits"]["test"]
    assert list(frame.columns[:4]) == ["row", "prediction", "class_id", "probability"]
    assert {f"p_{d}" for d in range(10)} <= set(frame.columns)
    assert set(frame["model_name"]) == {"digits"} and set(frame["model_version"]) == {1}
    np.testing.assert_allclose(frame[[f"p_{d}" for d in range(10)]].sum(axis=1), 1.0, atol=1e-5)
    # The same model on the same split: the scored predictions reproduce the evaluation.
    accuracy = float((frame["prediction"] == frame["label"]).mean())
    assert accuracy == pytest.approx(summary.metrics["accuracy"], abs=1e-9)
    assert not list(output.parent.glob(".*partial")), "no partial file left beside the output"

    # Streamed 64 rows at a time: the same table, in row groups of 64.
    dataset = ingest_in_a_flow(TrainConfig.smoke().data, str(root))
    batched = tmp_path / "batched.parquet"
    score_in_a_flow("digits@1", root=str(root), output=str(batched), dataset=dataset, split="test", rows=64)
    pd.testing.assert_frame_equal(pd.read_parquet(batched), frame)
    assert pq.ParquetFile(batched).metadata.row_group(0).num_rows == 64

    # The command line: same scoring by version number, one line of summary.
    code, out = run("predict", "digits@1", "--output", str(tmp_path / "cli.parquet"), "--root", str(root))
    assert code == 0, out
    assert f"scored {len(frame)} row(s) with digits v1 -> {tmp_path / 'cli.parquet'}" in out
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "cli.parquet"), frame)

    # As the nightly scoring deployment runs it: no output named, one file a day under the root.
    before = datetime.now(UTC)
    dated = predict_flow(model="digits@production")
    days = {f"{when:%Y-%m-%d}" for when in (before, datetime.now(UTC))}  # a run may straddle midnight
    assert dated.output in {f"{root}/scores/digits/{day}.parquet" for day in days}
    pd.testing.assert_frame_equal(pd.read_parquet(dated.output), frame)


def test_new_events_on_s3_are_scored_with_their_keys(s3_root, s3_bucket):
    write_partitions(f"{s3_bucket}/events", ["2026-11-01", "2026-11-02"])
    config = load_recipe(
        "fraud_tabular",
        [f"data.url={s3_bucket}/events/date=*/part-*.parquet", "training.epochs=8", "training.batch_size=32"],
    )
    assert train_flow(config=config).outcome == "promoted"
    # Tomorrow's events: no label yet, an id to join the scores back on, columns reordered.
    new = event_frame(50, seed=7).drop(columns=["label"]).assign(txn_id=[f"t{i}" for i in range(50)])
    write_frame(f"{s3_bucket}/incoming/date=2026-11-03/part-0.parquet", new[["txn_id", "f3", "f2", "f1", "f0"]])

    scored = predict_flow(
        model="fraud-tabular@production",
        output=f"{s3_bucket}/scores/2026-11-03.parquet",
        data=DataConfig(source="files", url=f"{s3_bucket}/incoming/date=2026-11-03/*.parquet"),
        key_column="txn_id",
    )

    frame = read_parquet(f"{s3_bucket}/scores/2026-11-03.parquet")
    assert scored.rows == 50 and list(frame["txn_id"]) == [f"t{i}" for i in range(50)]
    assert set(frame["prediction"]) <= {"0", "1"} and set(frame["model_version"]) == {1}
    # Columns are matched by name, not position: f0 + f1 > 0 is the learned rule.
    agreement = float((frame["class_id"] == (new["f0"] + new["f1"] > 0).astype(int)).mean())
    assert agreement > 0.8

    # Streamed: the same rows as three files (Parquet and CSV) scored 8 rows at a time give
    # the same table, its row numbers running on across files and batches.
    parts = [new.iloc[:17], new.iloc[17:34], new.iloc[34:]]
    for i, (part, suffix) in enumerate(zip(parts, ["parquet", "csv", "parquet"], strict=True)):
        write_frame(f"{s3_bucket}/split/part-{i}.{suffix}", part)
    streamed = score_in_a_flow(
        "fraud-tabular@production",
        root=s3_root,
        output=f"{s3_bucket}/scores/streamed.parquet",
        data=DataConfig(source="files", url=f"{s3_bucket}/split/"),
        key_column="txn_id",
        rows=8,
    )
    assert streamed.rows == 50
    pd.testing.assert_frame_equal(read_parquet(f"{s3_bucket}/scores/streamed.parquet"), frame, check_exact=False)

    # No rows at all: an empty table with the scores' columns, not an error.
    write_frame(f"{s3_bucket}/empty/part-0.parquet", new.iloc[:0])
    empty = score_in_a_flow(
        "fraud-tabular@production",
        root=s3_root,
        output=f"{s3_bucket}/scores/empty.parquet",
        data=DataConfig(source="files", url=f"{s3_bucket}/empty/part-0.parquet"),
        key_column="txn_id",
    )
    nothing = read_parquet(f"{s3_bucket}/scores/empty.parquet")
    assert empty.rows == 0 and len(nothing) == 0 and list(nothing.columns) == list(frame.columns)


def test_a_table_without_the_models_columns_fails_before_writing(s3_root, s3_bucket):
    write_partitions(f"{s3_bucket}/events", ["2026-11-01", "2026-11-02"])
    config = load_recipe(
        "fraud_tabular",
        [f"data.url={s3_bucket}/events/date=*/part-*.parquet", "training.epochs=8", "training.batch_size=32"],
    )
    train_flow(config=config)
    bad = write_frame(f"{s3_bucket}/incoming/part-0.parquet", event_frame(10).drop(columns=["f3"]))
    output = f"{s3_bucket}/scores/bad.parquet"
    with pytest.raises(
        DataValidationError, match=r"check 'input signature' failed: missing column\(s\) \['f3'\]"
    ) as info:
        predict_flow(model="fraud-tabular", output=output, data=DataConfig(source="files", url=bad))
    assert str(info.value).startswith(f"{bad}: ")
    assert not storage.filesystem(output)[0].exists(output)

    # A bad value in a later batch of a later file: the file and its own row are named, and
    # the rows scored before it are not left behind.
    good = write_frame(f"{s3_bucket}/late/part-0.parquet", event_frame(20, seed=3))
    late = event_frame(30, seed=4).astype({"f2": object})
    late.loc[21, "f2"] = "oops"
    later = write_frame(f"{s3_bucket}/late/part-1.csv", late)
    with pytest.raises(DataValidationError) as info:
        score_in_a_flow(
            "fraud-tabular",
            root=s3_root,
            output=output,
            data=DataConfig(source="files", url=f"{s3_bucket}/late/"),
            rows=8,
        )
    assert str(info.value).startswith(f"{later}: check 'numeric' failed: column 'f2' has 1 non-numeric value(s), ")
    assert "first at row 21 ('oops')" in str(info.value)
    assert good and not storage.filesystem(output)[0].exists(output)


def test_examples_of_another_shape_are_refused_by_the_signature():
    metadata = {"name": "digits", "version": 3, "dataset": {"feature_shape": [8, 8, 1], "feature_dtype": "float32"}}
    check_signature(metadata, np.zeros((5, 8, 8, 1)), source="ok")
    with pytest.raises(DataValidationError, match=r"examples have shape \(28, 28, 1\), digits v3 expects \(8, 8, 1\)"):
        check_signature(metadata, np.zeros((5, 28, 28, 1)), source="mnist")


def test_predict_refuses_every_output_that_would_destroy_what_kerasflow_or_a_team_keeps(root, tmp_path):
    """The attack of issue 28: --output aimed at the registry, a dataset, the input, a key the scores overwrite."""
    from kerasflow.models.io import sha256_file
    from kerasflow.tasks.config import ConfigError

    train_flow(config=TrainConfig.smoke(storage={"root": str(root)}))
    registry = ModelRegistry(f"{root}/registry")
    version = registry.get("digits", 1)
    kept = {
        "the model": root / "registry/digits/versions/1/model.keras",
        "its metadata": root / "registry/digits/versions/1/metadata.json",
        "the alias record": root / "registry/digits/aliases/production/1.json",
        "the dataset's ref.json": root / f"datasets/{version['dataset']['fingerprint']}/ref.json",
    }
    before = {what: sha256_file(path) for what, path in kept.items()}
    for what, path in kept.items():
        with pytest.raises(ConfigError, match="inside the storage root's"):
            predict_flow(model="digits@production", output=str(path))
        assert sha256_file(path) == before[what], f"{what} was changed"

    # A table of the digits' pixels with an id: the input itself, and keys the scores would overwrite.
    table = tmp_path / "incoming.csv"
    pd.DataFrame({"id": [1, 2], **{f"pixel_{i}": [0.0, 1.0] for i in range(64)}}).to_csv(table, index=False)
    data = DataConfig(source="files", url=str(table))
    with pytest.raises(ConfigError, match="which is the input file"):
        predict_flow(model="digits", output=str(table), data=data)
    for key in ("prediction", "p_1", "row", "label", "model_version"):
        with pytest.raises(ConfigError, match=f"received --key '{key}', which is also a column the scores write"):
            predict_flow(model="digits", output=str(tmp_path / "out.parquet"), data=data, key_column=key)
    assert table.read_bytes().startswith(b"id,pixel_0")

    # A folder is refused before any row is read, naming no internal file.
    folder = tmp_path / "scores.parquet"
    folder.mkdir()
    with pytest.raises(ConfigError, match="which is a directory") as info:
        predict_flow(model="digits@production", output=str(folder))
    assert "partial" not in str(info.value) and list(folder.iterdir()) == []

    # A team's own file stays unless overwrite is asked for; the command says so in one line, exit 2.
    notes = tmp_path / "notes.parquet"
    notes.write_text("a team's notes")
    code, out = run("predict", "digits", "--output", str(notes), "--root", str(root))
    assert code == 2 and "error: received --output" in out and "kerasflow did not write as scores" in out, out
    assert "Traceback" not in out and notes.read_text() == "a team's notes"
    predict_flow(model="digits@production", output=str(notes), overwrite=True)
    assert len(pd.read_parquet(notes)) == version["dataset"]["splits"]["test"]
    registry.load("digits", "production")  # still verified against its sha256
