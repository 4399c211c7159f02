"""Typed tables at ingestion: column types (declared or inferred), missing values, statistics, partitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kerasflow.models.column_types import MISSING_INTEGER, MISSING_TEXT
from kerasflow.tasks.config import ConfigError, DataConfig, parse_config
from kerasflow.tasks.data import materialize as materialization
from kerasflow.tasks.data.pipeline import load_batches
from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.ingest import partitions
from kerasflow.tasks.ingest.sources import identify, load_source
from kerasflow.tasks.validate import check_dataset
from tests.tables import transactions_frame, write_frame

LOG = __import__("logging").getLogger("test")


def materialized(tmp_path, data: DataConfig):
    return materialization.materialize(load_source(data), str(tmp_path / "root"))


def columns_of(ref, split: str) -> dict[str, np.ndarray]:
    found: dict[str, list] = {}
    for x, _ in load_batches(ref, split, batch_size=4096).as_numpy_iterator():
        for name, values in x.items():
            found.setdefault(name, []).append(values)
    return {name: np.concatenate(parts) for name, parts in found.items()}


def test_types_are_inferred_from_the_table_and_said_in_the_report(tmp_path):
    frame = transactions_frame(600, seed=1)
    url = write_frame(str(tmp_path / "t.parquet"), frame)
    ref = materialized(tmp_path, DataConfig(source="files", url=url, missing="fill"))
    assert ref.column_types == {
        "amount": "float_normalized",
        "hour": "float_normalized",
        "country": "string_categorical",
        "merchant_category": "string_categorical",
        "channel": "string_categorical",
        "customer_age": "float_normalized",
    }
    report = check_dataset(ref)
    assert report.passed
    detail = next(r.detail for r in report.results if r.check == "column types")
    assert "country: string_categorical" in detail and "inferred (numbers float_normalized" in detail
    # Every row is in one split, and a column's values come back as they were (missing ones as their token).
    rows = {split: columns_of(ref, split) for split in ("train", "validation", "test")}
    countries = np.concatenate([rows[s]["country"] for s in rows]).astype(str)
    assert sorted(countries) == sorted(frame["country"].fillna(MISSING_TEXT))
    ages = np.concatenate([rows[s]["customer_age"] for s in rows])
    assert np.isnan(ages).sum() == frame["customer_age"].isna().sum() > 0


def test_declared_types_store_integers_and_text_and_statistics_are_recorded_per_split(tmp_path):
    frame = pd.DataFrame(
        {
            "amount": [10.0, 20.0, np.nan, 40.0] * 50,
            "mcc": pd.array([5411, None, 7995, -1] * 50, dtype="Int64"),
            "country": ["de", None, "fr", "de"] * 50,
            "label": [0, 1, 0, 1] * 50,
        }
    )
    url = write_frame(str(tmp_path / "t.parquet"), frame)
    columns = {"amount": "float_normalized", "mcc": "integer_categorical", "country": "string_hashed"}
    ref = materialized(tmp_path, DataConfig(source="files", url=url, columns=columns, missing="fill"))
    assert ref.column_types == columns
    train = columns_of(ref, "train")
    assert train["mcc"].dtype == np.int64 and set(train["mcc"].tolist()) <= {5411, 7995, -1, MISSING_INTEGER}
    assert MISSING_INTEGER in set(train["mcc"].tolist())
    statistics = materialization.read_statistics(ref)
    assert sum(s.rows for s in statistics.splits.values()) == 200
    stats = statistics.splits["train"]
    assert stats.rows == ref.splits["train"]
    assert stats.columns["amount"].missing == int(np.isnan(train["amount"]).sum())
    assert stats.columns["mcc"].missing == int((train["mcc"] == MISSING_INTEGER).sum())
    assert set(stats.columns["mcc"].values) <= {"5411", "7995", "-1"}
    assert stats.columns["country"].missing == int((train["country"] == MISSING_TEXT.encode()).sum())
    assert set(stats.label.values) <= {"0", "1"} and sum(stats.label.values.values()) == stats.rows


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            # Nearly all numbers: a number column with bad values, not a text column.
            {"amount": (["12.5"] * 19 + ["unknown"]) * 10},
            r"check 'numeric' failed: column 'amount' has 10 non-numeric value\(s\), first at row 19 \('unknown'\)",
        ),
        (
            {"amount": [1.0, np.nan] * 100},
            r"check 'finite features' failed: 100 row\(s\) have missing, NaN or infinite features, first at row 1 "
            r"\(column 'amount'\); .* or set data.missing: fill",
        ),
    ],
    ids=["text in a number column", "missing number without data.missing: fill"],
)
def test_bad_values_are_one_error_naming_the_file_row_and_fix(tmp_path, change, message):
    frame = pd.DataFrame({"amount": [1.0, 2.0] * 100, "country": ["de", "fr"] * 100, "label": [0, 1] * 100})
    frame = frame.assign(**change)
    url = write_frame(str(tmp_path / "t.csv"), frame)
    with pytest.raises(DataValidationError, match=message):
        materialized(tmp_path, DataConfig(source="files", url=url))
    assert not list((tmp_path / "root").glob("datasets/*/ref.json")), "nothing published"


def test_an_integer_category_that_is_not_an_integer_is_refused(tmp_path):
    frame = pd.DataFrame({"mcc": [5411.0, 12.5] * 20, "label": [0, 1] * 20})
    url = write_frame(str(tmp_path / "t.parquet"), frame)
    data = DataConfig(source="files", url=url, columns={"mcc": "integer_categorical"})
    with pytest.raises(DataValidationError, match=r"check 'integer' failed: column 'mcc' .* first at row 1 \(12.5\)"):
        materialized(tmp_path, data)


def test_recipe_mistakes_in_column_types_are_config_errors():
    base = {"source": "files", "url": "/data/t.parquet"}
    for data, expected in [
        ({"columns": {"amount": "float_normalised"}}, "received column type 'float_normalised', expected one of"),
        ({"columns": {"amount": {"type": "float", "num_bins": 3}}}, "received ['num_bins'] for column 'amount'"),
        ({"columns": {"a": "float"}, "crosses": [{"columns": ["a", "a"]}]}, "expected categorical columns"),
        ({"columns": {"label": "float"}}, "received the label column 'label' in data.columns"),
        ({"columns": {"a": "float"}, "feature_columns": ["a"]}, "received both data.columns and data.feature_columns"),
    ]:
        with pytest.raises(ConfigError) as info:
            parse_config({"data": {**base, **data}})
        assert expected in str(info.value), info.value
    with pytest.raises(ConfigError, match="only with source 'files'"):
        parse_config({"data": {"source": "sample", "missing": "fill"}})


def test_a_typed_table_in_many_files_is_the_table_read_whole(tmp_path):
    frame = transactions_frame(900, seed=3)
    for number, rows in enumerate([slice(0, 400), slice(400, 405), slice(405, 900)]):
        write_frame(str(tmp_path / "events" / f"day={number}.parquet"), frame.iloc[rows])
    data = DataConfig(source="files", url=str(tmp_path / "events" / "*.parquet"), missing="fill")
    identity = identify(data)
    whole = materialization.materialize(load_source(data, identity), str(tmp_path / "whole"))
    parts = partitions.materialize_partitions(data, identity, str(tmp_path / "parts"), logger=LOG)
    assert len(parts.parts) == 3 and parts.column_types == whole.column_types and parts.splits == whole.splits
    for split in ("train", "test"):
        expected, found = columns_of(whole, split), columns_of(parts, split)
        for name in whole.column_types:
            np.testing.assert_array_equal(found[name], expected[name])
    whole_stats = materialization.read_statistics(whole).to_json()
    assert (
        materialization.read_statistics(parts).to_json()["splits"]["train"]["rows"]
        == whole_stats["splits"]["train"]["rows"]
    )
    parts_train = materialization.read_statistics(parts).splits["train"]
    whole_train = materialization.read_statistics(whole).splits["train"]
    assert parts_train.columns["country"].values == whole_train.columns["country"].values
    assert parts_train.columns["amount"].buckets == whole_train.columns["amount"].buckets


@pytest.mark.parametrize("kind", ["string_categorical", "string_hashed"])
def test_a_category_too_long_to_be_one_is_refused_at_ingest_naming_column_and_row(tmp_path, kind):
    # 200,000-character values exhausted memory at ingest; 12,000 of 8 KB made a model kerasflow refused.
    notes = ["short"] * 300
    notes[123] = "x" * 8192
    frame = pd.DataFrame({"amount": np.arange(300.0), "note": notes, "label": [0, 1] * 150})
    url = write_frame(str(tmp_path / "t.parquet"), frame)
    data = DataConfig(source="files", url=url, columns={"amount": "float", "note": kind})
    with pytest.raises(
        DataValidationError,
        match=rf"check 'category length' failed: column 'note' \({kind}\) has 1 value\(s\) longer than 4096 "
        r"characters, first at row 123 \(8192 characters\)",
    ):
        materialized(tmp_path, data)
    assert not list((tmp_path / "root").glob("datasets/*/ref.json")), "nothing published"
