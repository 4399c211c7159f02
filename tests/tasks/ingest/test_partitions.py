"""Incremental materialization: a table of many files, stored one file at a time, is the table read whole."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.data import materialize as materialization
from kerasflow.tasks.data.materialize import find_materialized
from kerasflow.tasks.data.pipeline import load_slices, load_split
from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.ingest import partitions
from kerasflow.tasks.ingest.sources import SPLITS, fingerprint, identify, load_source
from kerasflow.tasks.ingest.sources.tables import tabular
from tests.stored import CountingMaterialize, as_sorted_rows, rows_of
from tests.tables import event_frame, write_frame, write_partitions

LOG = logging.getLogger("test_partitions")


def table(prefix, sizes, *, labels=None, seed=0):
    """One Parquet file per size, with a text slice column; ``labels`` gives each file's label values."""
    for number, rows in enumerate(sizes):
        frame = event_frame(rows, seed=seed + number)
        frame["country"] = np.array(["de", "fr", "us", f"x{number}"])[np.arange(rows) % 4]
        if labels is not None:
            frame["label"] = np.array(labels[number])[np.arange(rows) % len(labels[number])]
        write_frame(f"{prefix}/day={number:02d}.parquet", frame)


def whole_and_parts(tmp_path, data):
    identity = identify(data)
    whole = materialization.materialize(load_source(data, identity), str(tmp_path / "whole"))
    parts = partitions.materialize_partitions(data, identity, str(tmp_path / "parts"), logger=LOG)
    return whole, parts


@pytest.mark.parametrize(
    "labels",
    [None, [["cat", "dog"], ["cat"], ["ant", "cat", "eel"], ["dog", "eel"], ["dog"], ["ant"]]],
    ids=["integer labels", "text labels, new classes in later files"],
)
def test_a_table_in_many_files_is_the_table_read_whole(tmp_path, labels):
    # Sizes include a file too small to have a row in every split.
    table(str(tmp_path / "events"), [300, 7, 250, 180, 3, 220], labels=labels)
    data = DataConfig(source="files", url=str(tmp_path / "events" / "*.parquet"), slice_columns=["country"])
    whole, parts = whole_and_parts(tmp_path, data)

    assert parts.builder_path is None and len(parts.parts) == 6
    assert parts.fingerprint == whole.fingerprint == fingerprint(identify(data))
    for field in (
        "splits",
        "class_names",
        "num_classes",
        "slices",
        "feature_names",
        "column_types",
        "feature_shape",
        "labels",
    ):
        assert getattr(parts, field) == getattr(whole, field), field
    if labels is not None:
        assert parts.class_names == ["ant", "cat", "dog", "eel"]
        assert any(part.class_ids not in (None, [0, 1, 2, 3]) for part in parts.parts), "per-file ids were remapped"
    assert parts.slices["country"] == ["de", "fr", "us", "x0", "x1", "x2", "x3", "x5"]  # 3 rows: no x4
    for split in SPLITS:
        # In order: row for row, as every report counts rows.
        whole_x, whole_y = rows_of(whole, split, ordered=True)
        parts_x, parts_y = rows_of(parts, split, ordered=True)
        assert len(parts_y) == whole.splits[split] > 0
        np.testing.assert_array_equal(parts_x, whole_x)
        np.testing.assert_array_equal(parts_y, whole_y)
        # Interleaved for training: the same rows, in another order.
        fast_x, fast_y = rows_of(parts, split, ordered=False)
        np.testing.assert_array_equal(as_sorted_rows(fast_x, fast_y), as_sorted_rows(whole_x, whole_y))
        for column, codes in load_slices(whole, split).items():
            np.testing.assert_array_equal(load_slices(parts, split)[column], codes)
    # What training reads: rows, one at a time, the same count as the split says.
    assert sum(1 for _ in load_split(parts, "train", ordered=False, cache=True)) == whole.splits["train"]


def test_a_new_daily_file_is_the_only_one_materialized(tmp_path):
    prefix = str(tmp_path / "events")
    for day in range(3):
        write_frame(f"{prefix}/day={day:02d}.parquet", event_frame(150, seed=day))
    data = DataConfig(source="files", url=f"{prefix}/*.parquet")
    root = str(tmp_path / "root")
    partitions.materialize_partitions(data, identify(data), root, logger=LOG)

    write_frame(f"{prefix}/day=03.parquet", event_frame(150, seed=3))
    counting = CountingMaterialize()
    grown = partitions.materialize_partitions(data, identify(data), root, logger=LOG, materialize=counting)

    assert counting.fingerprints == [grown.parts[3].fingerprint], "one write: the new day's"
    assert grown.splits == {s: sum(p.splits.get(s, 0) for p in grown.parts) for s in SPLITS}
    assert sum(grown.splits.values()) == 600


def test_one_file_then_two_reuses_the_first(tmp_path):
    prefix = str(tmp_path / "events")
    write_frame(f"{prefix}/day=00.parquet", event_frame(150, seed=0))
    data = DataConfig(source="files", url=f"{prefix}/*.parquet")
    root = str(tmp_path / "root")
    single = materialization.materialize(load_source(data), root)  # one file: stored whole, as ever

    write_frame(f"{prefix}/day=01.parquet", event_frame(150, seed=1))
    counting = CountingMaterialize()
    two = partitions.materialize_partitions(data, identify(data), root, logger=LOG, materialize=counting)

    assert two.parts[0].fingerprint == single.fingerprint and two.parts[0].builder_path == single.builder_path
    assert counting.fingerprints == [two.parts[1].fingerprint]


def test_a_bad_file_is_named_and_publishes_nothing(tmp_path):
    prefix = str(tmp_path / "events")
    write_frame(f"{prefix}/day=00.parquet", event_frame(150, seed=0))
    bad = event_frame(150, seed=1)
    bad.loc[17, "f2"] = np.nan
    write_frame(f"{prefix}/day=01.parquet", bad)
    data = DataConfig(source="files", url=f"{prefix}/*.parquet")
    root = str(tmp_path / "root")

    with pytest.raises(DataValidationError, match=r"day=01\.parquet"):
        partitions.materialize_partitions(data, identify(data), root, logger=LOG)
    assert find_materialized(root, fingerprint(identify(data))) is None, "no table without all its files"
    # The good file is kept for the next attempt: fixing the bad one costs that one file.
    write_frame(f"{prefix}/day=01.parquet", bad.fillna(0.0))
    counting = CountingMaterialize()
    fixed = partitions.materialize_partitions(data, identify(data), root, logger=LOG, materialize=counting)
    assert counting.fingerprints == [fixed.parts[1].fingerprint]


def test_columns_of_the_first_file_are_imposed_on_the_others(tmp_path):
    prefix = str(tmp_path / "events")
    write_frame(f"{prefix}/day=00.parquet", event_frame(150, seed=0))
    reordered = event_frame(150, seed=1)
    write_frame(f"{prefix}/day=01.parquet", reordered[["f3", "label", "f1", "f0", "f2"]])
    data = DataConfig(source="files", url=f"{prefix}/*.parquet")
    whole, parts = whole_and_parts(tmp_path, data)

    assert parts.feature_names == whole.feature_names == ["f0", "f1", "f2", "f3"]
    np.testing.assert_array_equal(rows_of(parts, "train", ordered=True)[0], rows_of(whole, "train", ordered=True)[0])


def test_on_s3_the_new_files_are_fetched_together_and_a_new_day_alone(s3_root, s3_bucket, monkeypatch):
    prefix = f"{s3_bucket}/events"
    for day in range(4):
        write_frame(f"{prefix}/day={day:02d}.parquet", event_frame(120, seed=day))
    data = DataConfig(source="files", url=f"{prefix}/*.parquet")
    fetches = []
    real_download = tabular.download_files

    def counting_download(files, folder):
        fetches.append(sorted(f.url.rsplit("/", 1)[-1] for f in files))
        return real_download(files, folder)

    monkeypatch.setattr(tabular, "download_files", counting_download)
    first = partitions.materialize_partitions(data, identify(data), s3_root, logger=LOG)
    # The columns from the first file's footer, then every file in one concurrent get.
    assert fetches == [["day=00.parquet", "day=01.parquet", "day=02.parquet", "day=03.parquet"]]
    assert find_materialized(s3_root, first.fingerprint) == first

    write_frame(f"{prefix}/day=04.parquet", event_frame(120, seed=4))
    fetches.clear()
    grown = partitions.materialize_partitions(data, identify(data), s3_root, logger=LOG)
    assert fetches == [["day=04.parquet"]], "a new day downloads that day only"
    assert [p.fingerprint for p in grown.parts[:4]] == [p.fingerprint for p in first.parts]
    assert sum(1 for _ in load_split(grown, "train")) == grown.splits["train"]


def test_a_window_moving_on_by_a_day_stores_only_the_new_day(tmp_path):
    prefix = str(tmp_path / "events")
    write_partitions(prefix, [f"2026-11-{d:02d}" for d in range(1, 7)], rows=120)
    root = str(tmp_path / "root")
    url = f"{prefix}/date=*/part-*.parquet"
    monday = DataConfig(source="files", url=url, window={"days": 3, "until": "2026-11-04"})
    first = partitions.materialize_partitions(monday, identify(monday), root, logger=LOG)

    tuesday = DataConfig(source="files", url=url, window={"days": 3, "until": "2026-11-05"})
    counting = CountingMaterialize()
    moved = partitions.materialize_partitions(tuesday, identify(tuesday), root, logger=LOG, materialize=counting)

    assert moved.fingerprint != first.fingerprint
    assert [p.fingerprint for p in moved.parts[:2]] == [p.fingerprint for p in first.parts[1:]], "two days reused"
    assert counting.fingerprints == [moved.parts[2].fingerprint], "one write: the day the window took on"


def timed_file(url: str, first_day: str, days: int, *, seed: int, rows_per_day: int = 24):
    """Events with a ``time`` column, ``rows_per_day`` a day from ``first_day``: a Parquet or CSV file."""
    import pandas as pd

    frame = event_frame(days * rows_per_day, seed=seed)
    hours = pd.to_timedelta(np.arange(days * rows_per_day) * 24 / rows_per_day, unit="h")
    frame["time"] = pd.Timestamp(first_day, tz="UTC") + hours
    if url.endswith(".csv"):
        frame["time"] = frame["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return write_frame(url, frame)


def test_a_time_window_moving_on_by_a_day_stores_the_new_day_and_the_files_at_its_edges(tmp_path):
    prefix = str(tmp_path / "events")
    for day in range(1, 7):  # one file a day, named as the team likes: the window reads their times
        timed_file(f"{prefix}/day-{day}.parquet", f"2026-11-0{day}", 1, seed=day)
    timed_file(f"{prefix}/span.parquet", "2026-11-02", 2, seed=7)  # the 2nd and the 3rd
    timed_file(f"{prefix}/late.csv", "2026-11-04", 2, seed=8)  # a CSV has no footer to tell its days
    root = str(tmp_path / "root")

    def window(until):
        return DataConfig(source="files", url=f"{prefix}/", window={"days": 3, "until": until, "column": "time"})

    monday = window("2026-11-04")  # the 2nd to the 4th
    first = partitions.materialize_partitions(monday, identify(monday), root, logger=LOG)
    tuesday = window("2026-11-05")  # the 3rd to the 5th: span.parquet now straddles its first edge
    counting = CountingMaterialize()
    moved = partitions.materialize_partitions(tuesday, identify(tuesday), root, logger=LOG, materialize=counting)

    names = [url.rsplit("/", 1)[-1] for url, *_ in identify(tuesday)["files"]]
    assert names == ["day-3.parquet", "day-4.parquet", "day-5.parquet", "late.csv", "span.parquet"]
    by_name = dict(zip(names, moved.parts, strict=True))
    stored_first = {part.fingerprint for part in first.parts}
    assert {by_name["day-3.parquet"].fingerprint, by_name["day-4.parquet"].fingerprint} <= stored_first, (
        "the days the two windows share are reused"
    )
    assert sorted(counting.fingerprints) == sorted(
        by_name[name].fingerprint for name in ("day-5.parquet", "late.csv", "span.parquet")
    ), "stored: the new day, and the files whose rows the window cuts (or cannot tell without reading)"
    # The rows the window keeps, as the table read whole under the same window: 3 days of day
    # files, the 3rd of span, the 4th and 5th of late.csv, 24 rows a day.
    whole = materialization.materialize(load_source(tuesday, identify(tuesday)), str(tmp_path / "whole"))
    assert moved.fingerprint == whole.fingerprint and moved.splits == whole.splits
    assert sum(moved.splits.values()) == 24 * 6
    for split in SPLITS:
        np.testing.assert_array_equal(
            as_sorted_rows(*rows_of(moved, split, ordered=True)), as_sorted_rows(*rows_of(whole, split, ordered=True))
        )


def test_files_without_a_row_to_store_are_left_out_and_a_table_of_none_is_one_clear_error(tmp_path):
    prefix = str(tmp_path / "events")
    write_frame(f"{prefix}/a.parquet", event_frame(120, seed=0))
    write_frame(f"{prefix}/b.parquet", event_frame(120, seed=1).iloc[:0])  # an empty day
    data = DataConfig(source="files", url=f"{prefix}/*.parquet")
    ref = partitions.materialize_partitions(data, identify(data), str(tmp_path / "root"), logger=LOG)
    assert len(ref.parts) == 1 and sum(ref.splits.values()) == 120

    # CSV files (no footer) whose times all fall outside the window: read, and nothing kept.
    for name, day in (("c.csv", "2026-10-01"), ("d.csv", "2026-10-05")):
        timed_file(f"{prefix}/old/{name}", day, 1, seed=2)
    old = DataConfig(source="files", url=f"{prefix}/old/", window={"days": 2, "until": "2026-11-04", "column": "time"})
    with pytest.raises(DataValidationError, match=r"no row has a 'time' time from 2026-11-03 to 2026-11-04"):
        partitions.materialize_partitions(old, identify(old), str(tmp_path / "root"), logger=LOG)


def test_a_root_moved_elsewhere_reads_its_own_copies_not_the_old_place(tmp_path):
    import shutil

    table(str(tmp_path / "events"), [300, 250, 180])
    data = DataConfig(source="files", url=str(tmp_path / "events" / "*.parquet"))
    identity = identify(data)
    partitions.materialize_partitions(data, identity, str(tmp_path / "old"), logger=LOG)
    stored = find_materialized(str(tmp_path / "old"), fingerprint(identity))
    expected = as_sorted_rows(*rows_of(stored, "train", ordered=True))
    shutil.move(tmp_path / "old", tmp_path / "new")  # a root moved to another disk, or copied to another bucket

    moved = find_materialized(str(tmp_path / "new"), fingerprint(identity))
    assert moved.uri == str(tmp_path / "new" / "datasets" / moved.fingerprint)
    assert all(part.uri.startswith(str(tmp_path / "new")) for part in moved.parts) and len(moved.parts) == 3
    assert np.array_equal(as_sorted_rows(*rows_of(moved, "train", ordered=True)), expected)
    assert materialization.read_statistics(moved) is not None
