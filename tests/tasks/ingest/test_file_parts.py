"""One file of any size, read in record batches and stored in parts of rows, is the file read whole."""

from __future__ import annotations

import logging
from datetime import date

import fsspec
import numpy as np
import pytest

from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.data import materialize as materialization
from kerasflow.tasks.data.materialize import find_materialized, read_statistics
from kerasflow.tasks.data.pipeline import load_slices
from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.ingest import file_parts, partitions
from kerasflow.tasks.ingest.sources import SPLITS, fingerprint, identify, load_source
from kerasflow.tasks.ingest.sources.tables import table_reading, tabular
from tests.stored import CountingMaterialize, as_sorted_rows, rows_of
from tests.tables import event_frame, write_frame

LOG = logging.getLogger("test_file_parts")
FEATURES = ["f0", "f1", "f2", "f3"]


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):
    """Record batches of 100 rows, so a file of a few hundred rows is read in several."""
    monkeypatch.setattr(tabular, "FRAME_ROWS", 100)


def events(rows: int, *, seed: int = 0):
    """Events whose later rows bring classes and slice values the first rows do not have."""
    frame = event_frame(rows, seed=seed)
    late = np.arange(rows) >= rows // 2
    frame["label"] = np.where(
        late, np.array(["ant", "eel", "cat"])[np.arange(rows) % 3], frame["label"].map({0: "cat", 1: "dog"})
    )
    frame["country"] = np.where(late, np.array(["us", "br"])[np.arange(rows) % 2], "de")
    return frame


def stored_whole_and_in_parts(tmp_path, data, *, part_rows):
    identity = identify(data)
    whole = materialization.materialize(load_source(data, identity), str(tmp_path / "whole"))
    root = str(tmp_path / "parts")
    parts = file_parts.materialize_file(data, identity, root, part_rows=part_rows, logger=LOG)
    return whole, parts, root


def assert_same_rows(parts, whole):
    for field in ("splits", "class_names", "slices", "feature_names", "column_types", "feature_shape", "labels"):
        assert getattr(parts, field) == getattr(whole, field), field
    for split in SPLITS:
        whole_x, whole_y = rows_of(whole, split, ordered=True)
        parts_x, parts_y = rows_of(parts, split, ordered=True)
        np.testing.assert_array_equal(parts_x, whole_x)
        np.testing.assert_array_equal(parts_y, whole_y)
        for column, codes in load_slices(whole, split).items():
            np.testing.assert_array_equal(load_slices(parts, split)[column], codes)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_file_stored_in_parts_is_the_file_read_whole(tmp_path, suffix):
    frame = events(1000)
    data = DataConfig(
        source="files", url=write_frame(str(tmp_path / f"events{suffix}"), frame), slice_columns=["country"]
    )
    whole, parts, root = stored_whole_and_in_parts(tmp_path, data, part_rows=250)

    # 100-row batches gathered until 250 rows are covered: rows 0-299, 300-599, 600-899, 900-999.
    assert whole.builder_path is not None and parts.builder_path is None
    assert [sum(p.splits.values()) for p in parts.parts] == [300, 300, 300, 100]
    assert parts.fingerprint == whole.fingerprint == fingerprint(identify(data))
    assert find_materialized(root, parts.fingerprint) == parts, "the file's dataset is published"
    assert parts.class_names == ["ant", "cat", "dog", "eel"]
    assert parts.parts[0].class_ids == [1, 2], "the first part's cat and dog, mapped to the file's ids"
    assert parts.slices["country"] == ["br", "de", "us"]
    assert_same_rows(parts, whole)
    # And the rows are the file's: every row once, in one split.
    every_x = np.concatenate([rows_of(parts, split, ordered=True)[0] for split in SPLITS])
    np.testing.assert_array_equal(
        as_sorted_rows(every_x, np.zeros(len(every_x))),
        as_sorted_rows(frame[FEATURES].to_numpy(np.float32), np.zeros(len(frame))),
    )
    # The statistics are merged from the parts' and equal the whole's.
    merged, alone = read_statistics(parts), read_statistics(whole)
    for split in SPLITS:
        assert merged.splits[split].rows == alone.splits[split].rows
        assert merged.splits[split].label.values == alone.splits[split].label.values
        for column in FEATURES:
            assert merged.splits[split].columns[column].mean == pytest.approx(alone.splits[split].columns[column].mean)


def test_a_file_that_fits_one_part_is_stored_whole_as_before(tmp_path):
    data = DataConfig(source="files", url=write_frame(str(tmp_path / "events.parquet"), events(300)))
    whole, parts, _ = stored_whole_and_in_parts(tmp_path, data, part_rows=300)

    assert parts.parts is None or parts.parts == []
    assert parts.builder_path is not None and parts.fingerprint == whole.fingerprint
    assert_same_rows(parts, whole)


def test_a_run_that_died_half_way_stores_only_the_parts_it_had_not_published(tmp_path):
    data = DataConfig(source="files", url=write_frame(str(tmp_path / "events.parquet"), events(1000)))
    identity = identify(data)
    root = str(tmp_path / "root")
    first = file_parts.materialize_file(data, identity, root, part_rows=250)
    # As if the run died before its last part and the file's dataset were published.
    fs, base = fsspec.core.url_to_fs(root)
    for dataset in (first.fingerprint, first.parts[-1].fingerprint):
        fs.rm(f"{base}/datasets/{dataset}/ref.json")

    counting = CountingMaterialize()
    again = file_parts.materialize_file(data, identity, root, part_rows=250, materialize=counting)

    assert counting.fingerprints == [first.parts[-1].fingerprint]
    assert [p.fingerprint for p in again.parts] == [p.fingerprint for p in first.parts]
    assert again.splits == first.splits


@pytest.mark.parametrize(
    ("row", "column", "value", "check"),
    [
        (730, "f2", np.nan, "finite features"),
        (655, "label", None, "label present"),
        (812, "label", "owl", "known classes"),
    ],
    ids=["missing feature", "missing label", "unknown class"],
)
def test_a_bad_row_in_a_later_part_is_named_by_its_row_in_the_file_and_the_file_is_not_published(
    tmp_path, row, column, value, check
):
    frame = events(1000)
    frame.loc[row, column] = value
    url = write_frame(str(tmp_path / "events.parquet"), frame)
    data = DataConfig(source="files", url=url, classes=["ant", "cat", "dog", "eel"])
    root = str(tmp_path / "root")

    with pytest.raises(DataValidationError, match=rf"events\.parquet: check '{check}' failed") as refused:
        file_parts.materialize_file(data, identify(data), root, part_rows=250)
    assert f"first at row {row}" in str(refused.value)
    assert find_materialized(root, fingerprint(identify(data))) is None


def test_a_large_file_of_a_table_is_stored_in_parts_and_a_new_file_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(table_reading, "PART_ROWS", 250)
    prefix = tmp_path / "events"
    for day, rows in enumerate([1000, 150, 400]):
        write_frame(str(prefix / f"day={day:02d}.parquet"), events(rows, seed=day))
    data = DataConfig(source="files", url=str(prefix / "*.parquet"), slice_columns=["country"])
    identity = identify(data)
    whole = materialization.materialize(load_source(data, identity), str(tmp_path / "whole"))
    root = str(tmp_path / "parts")
    table = partitions.materialize_partitions(data, identity, root, logger=LOG)

    # The large files' rows in parts (4 and 2), the small file whole, in the files' order.
    assert [sum(p.splits.values()) for p in table.parts] == [300, 300, 300, 100, 150, 300, 100]
    files = [p.file_fingerprint for p in table.parts]
    assert files[4] is None and len({files[0], files[5]}) == 2 and files[:4] == [files[0]] * 4
    assert [p.fingerprint for p in find_materialized(root, files[0]).parts] == [
        p.fingerprint for p in table.parts[:4]
    ], "the large file's own dataset lists its parts"
    assert_same_rows(table, whole)

    write_frame(str(prefix / "day=03.parquet"), events(120, seed=3))
    counting = CountingMaterialize()
    grown = partitions.materialize_partitions(data, identify(data), root, logger=LOG, materialize=counting)
    assert counting.fingerprints == [grown.parts[-1].fingerprint], "one write: the new file's"


def test_a_stored_file_is_not_kept_in_memory_once_written(tmp_path):
    # TFDS keeps what it writes from reachable after writing; an ingest of many files
    # held every one of them until the process ended.
    import gc
    import weakref

    data = DataConfig(source="files", url=write_frame(str(tmp_path / "events.parquet"), events(300)))
    source = load_source(data)
    features = weakref.ref(source.splits["train"].arrays["features"])
    materialization.materialize(source, str(tmp_path / "root"))
    del source
    gc.collect()
    assert features() is None, "the file's rows are still referenced after they were stored"


def test_a_large_file_under_a_time_window_is_stored_in_parts_of_the_rows_it_keeps(tmp_path):
    import pandas as pd

    frame = events(600)
    frame["time"] = pd.Timestamp("2026-11-01", tz="UTC") + pd.to_timedelta(np.arange(600) * 30, unit="min")
    url = write_frame(str(tmp_path / "events.parquet"), frame)  # 48 rows a day, the 1st to the 13th
    data = DataConfig(
        source="files", url=url, slice_columns=["country"], window={"days": 3, "until": "2026-11-09", "column": "time"}
    )
    assert file_parts.applies(data, identify(data))
    whole, parts, _ = stored_whole_and_in_parts(tmp_path, data, part_rows=200)

    assert len(parts.parts) == 2, "the parts holding the 7th to the 9th (rows 288-431); none for the others"
    assert sum(parts.splits.values()) == 3 * 48
    assert_same_rows(parts, whole)
    elsewhere = data.model_copy(update={"window": data.window.model_copy(update={"until": date(2026, 12, 30)})})
    assert file_parts.materialize_file(elsewhere, identify(data), str(tmp_path / "none"), part_rows=200) is None
