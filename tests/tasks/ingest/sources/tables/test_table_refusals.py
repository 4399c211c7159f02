"""Table data that used to fall through ingestion: each refused in one message naming file, column and fix."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.data import materialize as materialization
from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.ingest import partitions
from kerasflow.tasks.ingest.sources import load_source
from kerasflow.tasks.ingest.sources.tables import file_schema
from tests.tables import write_frame


def materialized(tmp_path, data: DataConfig):
    return materialization.materialize(load_source(data), str(tmp_path / "root"))


def nothing_published(tmp_path) -> bool:
    return not list((tmp_path / "root").glob("datasets/*/ref.json"))


def write_csv(path, header: str, lines: list[str]) -> str:
    path.write_text("\n".join([header, *lines]) + "\n")
    return str(path)


# --- numbers written with decimal commas -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "first"),
    [
        ([f'"{i},5"' for i in range(200)], "'0,5'"),  # decimal commas, quoted
        ([f'"{1000 + i * 7:,}.25"' for i in range(200)], "'1,000.25'"),  # thousands separators
        ([f'"{i}"' if i < 3 else f'"1.{i:03d},75"' for i in range(200)], "'1.003,75'"),  # European grouping
    ],
    ids=["decimal comma", "thousands separator", "dot thousands, comma decimals"],
)
def test_numbers_written_with_commas_are_refused_naming_file_column_row_and_fix(tmp_path, values, first):
    url = write_csv(tmp_path / "t.csv", "amount,country,label", [f"{v},de,{i % 2}" for i, v in enumerate(values)])
    with pytest.raises(DataValidationError) as info:
        materialized(tmp_path, DataConfig(source="files", url=url))
    message = str(info.value)
    assert message.startswith(f"{url}: check 'decimal mark' failed: column 'amount'"), message
    assert f"first at row {values.index(next(v for v in values if ',' in v))} ({first})" in message, message
    assert "'.' decimal mark" in message and "data.columns" in message and "string_categorical" in message
    assert nothing_published(tmp_path)


def test_numbers_with_decimal_commas_in_a_parquet_text_column_are_refused_too(tmp_path):
    frame = pd.DataFrame({"amount": [f"{i},25" for i in range(100)], "label": [0, 1] * 50})
    url = write_frame(str(tmp_path / "t.parquet"), frame)
    with pytest.raises(DataValidationError, match=r"check 'decimal mark' failed: column 'amount' .* row 0 \('0,25'\)"):
        materialized(tmp_path, DataConfig(source="files", url=url))
    # A table of many files infers its types from the first file's first rows: the same refusal.
    with pytest.raises(DataValidationError, match=r"t\.parquet: check 'decimal mark' failed: column 'amount'"):
        partitions.table_types(DataConfig(source="files", url=url), url)
    assert nothing_published(tmp_path)


def test_a_column_declared_text_is_kept_as_written_and_text_with_commas_stays_text(tmp_path):
    lines = [f'"{i},5","{i % 3},{i % 5},{i % 7}","a, b",{i % 2}' for i in range(200)]
    url = write_csv(tmp_path / "t.csv", "amount,codes,pair,label", lines)
    columns = {"amount": "string_categorical", "codes": "string_categorical", "pair": "string_categorical"}
    ref = materialized(tmp_path, DataConfig(source="files", url=url, columns=columns))
    assert ref.column_types == columns
    # Inferred: a list of codes and words with commas are text, not numbers.
    url = write_csv(tmp_path / "u.csv", "codes,pair,label", [line.split(",", 2)[-1] for line in lines])
    ref = materialization.materialize(load_source(DataConfig(source="files", url=url)), str(tmp_path / "other"))
    assert ref.column_types == {"codes": "string_categorical", "pair": "string_categorical"}


# --- duplicate column names --------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_a_csv_with_a_repeated_column_name_is_refused_naming_it(tmp_path, suffix):
    text = "f0,f1,f0,label,f1\n" + "".join(f"{i},{i},{-i},{i % 2},{i}\n" for i in range(100))
    path = tmp_path / f"t{suffix}"
    path.write_bytes(gzip.compress(text.encode()) if suffix.endswith(".gz") else text.encode())
    with pytest.raises(DataValidationError) as info:
        materialized(tmp_path, DataConfig(source="files", url=str(path)))
    message = str(info.value)
    assert message.startswith(f"{path}: check 'unique columns' failed: column name(s) ['f0', 'f1'] appear"), message
    assert "f0.1" not in message.split(";")[0] and "rename" in message
    # Read from an open file to type a table of many files: the same refusal, and not 'f0.1'.
    with pytest.raises(DataValidationError, match=r"check 'unique columns' failed: column name\(s\) \['f0', 'f1'\]"):
        partitions.table_types(DataConfig(source="files", url=str(path)), str(path))
    assert nothing_published(tmp_path)


def test_a_csv_header_read_as_pandas_reads_it_is_not_refused(tmp_path):
    # A byte-order mark, unnamed columns (an index written with the frame) and quoted commas in names.
    text = '\ufeff,,"a,b",label\n' + "".join(f"{i},{i},{i}.5,{i % 2}\n" for i in range(50))
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    data = DataConfig(source="files", url=str(path), feature_columns=["a,b"])
    assert partitions.table_types(data, str(path)) == {"a,b": "float_normalized"}
    assert materialized(tmp_path, data).column_types == {"a,b": "float_normalized"}


def test_a_parquet_file_with_a_repeated_column_name_is_refused_naming_it(tmp_path):
    table = pa.table([np.arange(100.0), np.arange(100.0), np.arange(100) % 2], names=["f0", "f0", "label"])
    url = str(tmp_path / "t.parquet")
    pq.write_table(table, url)
    match = rf"^{url}: check 'unique columns' failed: column name\(s\) \['f0'\] appear more than once"
    with pytest.raises(DataValidationError, match=match):
        materialized(tmp_path, DataConfig(source="files", url=url))
    # The first file's first rows, read to type a table of many files: the same refusal, not a TypeError.
    with pytest.raises(DataValidationError, match=match):
        partitions.table_types(DataConfig(source="files", url=url), url)
    assert nothing_published(tmp_path)


# --- nested Parquet columns --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "arrow_type"),
    [
        (pa.array([[1.0, 2.0]] * 100), "list<element: double>"),
        (pa.array([{"a": 1, "b": "x"}] * 100), "struct<a: int64, b: string>"),
        (pa.array([[("k", 1)]] * 100, pa.map_(pa.string(), pa.int64())), "map<string, int64"),
        (pa.array([[1, 2]] * 100, pa.large_list(pa.int8())), "large_list<element: int8>"),
    ],
    ids=["list", "struct", "map", "large list"],
)
def test_a_nested_parquet_feature_is_refused_from_the_schema_before_any_row(tmp_path, monkeypatch, values, arrow_type):
    table = pa.table({"amount": np.arange(100.0), "nested": values, "label": np.arange(100) % 2})
    url = str(tmp_path / "t.parquet")
    pq.write_table(table, url)

    def no_rows(*args, **kwargs):
        raise AssertionError("rows were read before the schema was checked")

    with monkeypatch.context() as patched:
        patched.setattr(pq.ParquetFile, "iter_batches", no_rows)
        patched.setattr(pq, "read_table", no_rows)
        with pytest.raises(DataValidationError) as info:
            materialized(tmp_path, DataConfig(source="files", url=url))
    message = str(info.value)
    assert message.startswith(f"{url}: check 'flat columns' failed: column 'nested' has Arrow type {arrow_type}"), (
        message
    )
    assert "flatten" in message and "data.feature_columns" in message
    assert nothing_published(tmp_path)
    # Left out of the features, the column is ignored like any other extra column.
    ref = materialized(tmp_path, DataConfig(source="files", url=url, feature_columns=["amount"]))
    assert ref.column_types == {"amount": "float_normalized"}


def test_a_dictionary_of_lists_is_nested_too():
    # pyarrow cannot write one to Parquet today; a file another writer made is read with this schema.
    schema = pa.schema(
        {
            "amount": pa.float64(),
            "codes": pa.dictionary(pa.int32(), pa.string()),
            "nested": pa.dictionary(pa.int32(), pa.list_(pa.float64())),
        }
    )
    file_schema.check_flat("t.parquet", schema, ["amount", "codes"])  # a dictionary of text is flat
    with pytest.raises(DataValidationError, match=r"column 'nested' has Arrow type dictionary<values=list<item"):
        file_schema.check_flat("t.parquet", schema, ["amount", "codes", "nested"])


# --- pandas's missing-value markers in a number column -----------------------------------------------------------

MARKERS = ["", "n/a", "NA", "N/A", "null", "NaN", "#N/A", "None"]


def _with_markers(tmp_path) -> tuple[str, int]:
    """A number column missing in 40 of 400 rows: 5 empty cells and 5 of each marker, the first at row 3."""
    lines = [f"{MARKERS[i // 10 % len(MARKERS)] if i % 10 == 3 else f'{i}.5'},{i % 2}" for i in range(400)]
    return write_csv(tmp_path / "t.csv", "amount,label", lines), 40


def test_missing_value_markers_count_as_missing_numbers_like_an_empty_cell(tmp_path):
    url, markers = _with_markers(tmp_path)
    ref = materialized(tmp_path, DataConfig(source="files", url=url, missing="fill"))
    statistics = materialization.read_statistics(ref)
    assert sum(split.columns["amount"].missing for split in statistics.splits.values()) == markers
    assert sum(split.columns["amount"].count for split in statistics.splits.values()) == 400 - markers


def test_missing_value_markers_are_refused_under_missing_error_naming_file_column_and_row(tmp_path):
    url, _ = _with_markers(tmp_path)
    lines = (tmp_path / "t.csv").read_text().splitlines()
    lines[1 + 3] = "n/a,1"  # the first missing value is a marker, not an empty cell
    url = write_csv(tmp_path / "t.csv", lines[0], lines[1:])
    with pytest.raises(DataValidationError) as info:
        materialized(tmp_path / "error", DataConfig(source="files", url=url))
    message = str(info.value)
    assert message.startswith(f"{url}: check 'finite features' failed: 40 row(s) have missing"), message
    assert "first at row 3 (column 'amount')" in message and "data.missing: fill" in message
    assert nothing_published(tmp_path / "error")
