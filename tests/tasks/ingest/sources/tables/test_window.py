"""Rolling windows over day partitions: which files, which fingerprint, which errors."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.ingest.sources import fingerprint, identify
from kerasflow.tasks.ingest.sources.tables.window import resolve_until
from tests.tables import event_frame, write_frame, write_partitions

DAYS = [f"2026-11-{d:02d}" for d in range(1, 11)]


def windowed(url: str, **window) -> DataConfig:
    return DataConfig(source="files", url=url, window=window)


def days_of(identity: dict) -> list[str]:
    return [re.search(r"date=([\d-]+)/", url).group(1) for url, _, _ in identity["files"]]


def test_a_window_selects_its_days_and_its_fingerprint_covers_only_them(tmp_path):
    write_partitions(str(tmp_path / "events"), DAYS, rows=20)
    data = windowed(f"{tmp_path}/events/date=*/part-*.parquet", days=3, until="2026-11-07")

    assert days_of(identify(data)) == ["2026-11-05", "2026-11-06", "2026-11-07"]
    before = fingerprint(identify(data))
    # A day outside the window rewritten, and a new day after it: the same dataset.
    write_frame(f"{tmp_path}/events/date=2026-11-01/part-0.parquet", event_frame(5, seed=99))
    write_frame(f"{tmp_path}/events/date=2026-11-11/part-0.parquet", event_frame(5, seed=98))
    assert fingerprint(identify(data)) == before
    # A new file inside it: a new dataset.
    write_frame(f"{tmp_path}/events/date=2026-11-06/part-1.parquet", event_frame(5, seed=97))
    assert fingerprint(identify(data)) != before
    assert days_of(identify(data)) == ["2026-11-05", "2026-11-06", "2026-11-06", "2026-11-07"]
    # The same window moved on by a day drops the first day and takes the next.
    assert days_of(identify(windowed(data.url, days=3, until="2026-11-08")))[0] == "2026-11-06"


def test_the_window_ends_on_the_last_complete_day_before_the_scheduled_start():
    data = windowed("s3://bucket/events/", days=7)
    nightly = resolve_until(data, datetime(2026, 11, 8, 2, 0, tzinfo=UTC))
    assert nightly.window.until == date(2026, 11, 7)
    # Scheduled at 00:30 in Berlin is 22:30 UTC the day before: the day before that, in UTC.
    berlin = resolve_until(data, datetime(2026, 11, 8, 0, 30, tzinfo=timezone(timedelta(hours=2))))
    assert berlin.window.until == date(2026, 11, 6)
    fixed = windowed("s3://bucket/events/", days=7, until="2026-10-01")
    assert resolve_until(fixed, datetime(2026, 11, 8, tzinfo=UTC)) is fixed, "a window's own end is kept"
    assert resolve_until(DataConfig(source="files", url="a.csv"), None).window is None


def test_undated_files_an_empty_window_and_a_bad_day_are_one_clear_error_each(tmp_path):
    write_partitions(str(tmp_path / "events"), DAYS[:3], rows=5)
    with pytest.raises(
        DataValidationError, match=r"no partition from 2026-11-08 to 2026-11-09 .*run from 2026-11-01 to"
    ):
        identify(windowed(f"{tmp_path}/events/", days=2, until="2026-11-09"))

    stray = write_frame(f"{tmp_path}/events/extra.parquet", event_frame(5))
    with pytest.raises(DataValidationError) as info:
        identify(windowed(f"{tmp_path}/events/", days=2, until="2026-11-03"))
    assert str(info.value).startswith(f"{stray}: check 'window' failed: 1 file(s) have no date=YYYY-MM-DD folder")

    bad = write_frame(f"{tmp_path}/other/date=2026-11-31/part-0.parquet", event_frame(5))
    with pytest.raises(
        DataValidationError, match=re.escape(f"{bad}: check 'window' failed: partition date='2026-11-31'")
    ):
        identify(windowed(f"{tmp_path}/other/", days=2, until="2026-11-03"))

    with pytest.raises(ValueError, match=r"received data\.window for source 'sample'"):
        DataConfig(source="sample", window={"days": 2})


def test_hour_partitions_under_another_key_are_windowed_by_that_key(tmp_path):
    for day in DAYS[:4]:
        write_frame(f"{tmp_path}/events/day={day}/hour=00/part-0.parquet", event_frame(5))
    data = windowed(f"{tmp_path}/events/", days=2, until="2026-11-04", partition_key="day")
    assert len(identify(data)["files"]) == 2


@pytest.mark.usefixtures("prefect_server")
def test_a_scheduled_retrain_trains_on_its_window_and_records_it(root, tmp_path):
    from kerasflow.flows.recipes import load_recipe
    from kerasflow.flows.train import train_flow
    from kerasflow.models.registry import ModelRegistry

    today = datetime.now(UTC).date()
    days = [str(today - timedelta(days=n)) for n in (4, 3, 2, 1, 0)]
    write_partitions(str(tmp_path / "events"), days, rows=200)
    config = load_recipe(
        "fraud_tabular",
        [
            f"data.url={tmp_path}/events/date=*/part-*.parquet",
            "data.window.days=3",
            "training.epochs=2",
            "training.batch_size=64",
            "gate.value={}",
            "gate.change={}",
        ],
    )

    summary = train_flow(config=config)

    metadata = ModelRegistry(str(root / "registry")).get(summary.model_name, summary.version.version)
    # 3 days of 200 rows before today: today's partial day is not in it.
    assert sum(metadata["dataset"]["splits"].values()) == 600
    assert metadata["config"]["data"]["window"]["until"] == days[3]

    # Scoring a window: yesterday's partition only.
    from kerasflow.flows.predict import predict_flow

    scored = predict_flow(
        model=f"{summary.model_name}@{summary.version.version}",
        output=str(tmp_path / "scores.parquet"),
        data=DataConfig(source="files", url=f"{tmp_path}/events/", window={"days": 1}),
    )
    assert scored.rows == 200


def test_the_windows_end_is_not_part_of_the_training_definition():
    from kerasflow.flows.recipes import load_recipe
    from kerasflow.tasks.lineage import training_definition

    def definition(*overrides):
        return training_definition(load_recipe("fraud_tabular", ["data.url=s3://b/e/", *overrides]))["fingerprint"]

    today, tomorrow = (
        definition("data.window.days=3", "data.window.until=2026-11-07"),
        definition("data.window.days=3", "data.window.until=2026-11-08"),
    )
    assert today == tomorrow, "which files the window holds is the dataset's fingerprint, not the definition's"
    assert definition("data.window.days=4", "data.window.until=2026-11-07") != today


def timed_frame(first_day: str, days: int, *, rows_per_day: int = 10, seed: int = 0):
    """Events with a ``time`` column, ``rows_per_day`` spread over each of ``days`` days."""
    import pandas as pd

    frame = event_frame(days * rows_per_day, seed=seed)
    start = pd.Timestamp(first_day)
    frame["time"] = [
        start + pd.Timedelta(days=d, minutes=h * (24 * 60 // rows_per_day))
        for d in range(days)
        for h in range(rows_per_day)
    ]
    return frame


def test_a_time_column_window_keeps_its_days_rows_from_files_laid_out_any_way(root, tmp_path):
    from kerasflow.tasks.data.materialize import materialize
    from kerasflow.tasks.ingest.sources import load_source

    old = write_frame(f"{tmp_path}/events/old.parquet", timed_frame("2026-11-01", 2))  # all before the window
    write_frame(f"{tmp_path}/events/mid.parquet", timed_frame("2026-11-03", 6, seed=1))  # 3rd to 8th
    late = timed_frame("2026-11-06", 4, seed=2)
    late["time"] = late["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")  # ISO text in a CSV
    write_frame(f"{tmp_path}/events/late.csv", late)
    data = windowed(f"{tmp_path}/events/", days=3, until="2026-11-07", column="time")

    identity = identify(data)
    # The old file's footer puts it outside: not read, not in the fingerprint.
    assert sorted(url.rsplit("/", 1)[-1] for url, _, _ in identity["files"]) == ["late.csv", "mid.parquet"]
    assert identity["time_window"] == {"column": "time", "from": "2026-11-05", "to": "2026-11-07"}
    ref = materialize(load_source(data, identity), str(root))
    # mid: the 5th, 6th and 7th; late: the 6th and 7th, ten rows a day.
    assert sum(ref.splits.values()) == 50
    assert "time" not in ref.feature_names, "the window's column selects rows, it is not learned from"
    # The old file rewritten, still before the window: the same dataset; the window moved: another.
    write_frame(old, timed_frame("2026-10-01", 3, seed=5))
    assert fingerprint(identify(data)) == ref.fingerprint
    moved = windowed(f"{tmp_path}/events/", days=3, until="2026-11-08", column="time")
    assert fingerprint(identify(moved)) != ref.fingerprint


def test_a_time_column_window_refuses_what_is_not_a_time_by_file_and_row(tmp_path):
    from kerasflow.tasks.config import ConfigError
    from kerasflow.tasks.ingest.sources import load_source

    def load(frame, name="events.csv", **window):
        url = write_frame(f"{tmp_path}/{name}", frame)
        data = windowed(url, days=3, until="2026-11-07", column="time", **window)
        return load_source(data, identify(data))

    numbers = timed_frame("2026-11-05", 2)
    numbers["time"] = range(len(numbers))
    with pytest.raises(DataValidationError, match=r"events.csv: check 'window' failed: column 'time' holds numbers"):
        load(numbers)
    garbled = timed_frame("2026-11-05", 2).astype({"time": str})
    garbled.loc[7, "time"] = "yesterday"
    with pytest.raises(
        DataValidationError, match=r"1 row\(s\) of column 'time' have no readable time, first at row 7 \('yesterday'\)"
    ):
        load(garbled)
    # Read in batches (scoring), a row is named by its place in the file, not in its batch.
    from kerasflow.tasks.ingest.sources.tables.window import rows_in_window

    with pytest.raises(DataValidationError, match=r"first at row 1007 \('yesterday'\)"):
        rows_in_window("events.csv", garbled, windowed("x.csv", days=3, column="time").window, first_row=1000)
    with pytest.raises(DataValidationError, match=r"no row has a 'time' time from 2026-11-05 to 2026-11-07"):
        load(timed_frame("2026-12-01", 2).astype({"time": str}))
    with pytest.raises(DataValidationError, match=r"no file holds a 'time' time from 2026-11-05 to 2026-11-07"):
        load(timed_frame("2026-12-01", 2), name="events.parquet")
    with pytest.raises(DataValidationError, match=r"no column 'time' \(data.window.column\)"):
        load(event_frame(20))
    with pytest.raises((ConfigError, ValueError), match=r"data.window.column='label', which is also the label"):
        windowed("x.csv", days=3, column="label")


@pytest.mark.parametrize("bad", ["text in a number column", "no label"])
def test_a_bad_row_kept_by_a_time_window_is_named_by_its_row_in_the_file(tmp_path, bad):
    from kerasflow.tasks.ingest.sources import load_source

    # Ten rows a day, the 1st to the 6th: the window (the 5th to the 7th) keeps rows 40 to 59.
    frame = timed_frame("2026-11-01", 6).astype({"f0": object, "label": "Int64"})
    if bad == "no label":
        frame.loc[47, "label"] = None
        expected = r"check 'label present' failed: 1 row\(s\) have no label in column 'label', first at row 47;"
    else:
        frame.loc[42, "f0"] = "abc"
        expected = r"column 'f0' has 1 non-numeric value\(s\), first at row 42 \('abc'\)"
    url = write_frame(f"{tmp_path}/events.csv", frame.astype({"time": str}))
    data = windowed(url, days=3, until="2026-11-07", column="time")
    with pytest.raises(DataValidationError, match=expected):
        load_source(data, identify(data))


def test_a_model_trained_on_a_time_window_scores_the_rows_of_a_time_window(root, tmp_path):
    from kerasflow.flows.predict import predict_flow
    from kerasflow.flows.recipes import load_recipe
    from kerasflow.flows.train import train_flow
    from kerasflow.models.registry import ModelRegistry

    write_frame(f"{tmp_path}/events/a.parquet", timed_frame("2026-11-01", 6, rows_per_day=60))
    write_frame(f"{tmp_path}/events/b.parquet", timed_frame("2026-11-04", 6, rows_per_day=60, seed=1))
    config = load_recipe(
        "fraud_tabular",
        [
            f"data.url={tmp_path}/events/",
            "data.window={days: 4, until: 2026-11-07, column: time}",
            "training.epochs=1",
            "gate.value={}",
            "gate.change={}",
        ],
    )
    summary = train_flow(config=config)

    metadata = ModelRegistry(str(root / "registry")).get(summary.model_name, summary.version.version)
    # a: the 4th to 6th; b: the 4th to 7th; 60 rows a day.
    assert sum(metadata["dataset"]["splits"].values()) == 7 * 60
    assert "time" not in metadata["dataset"]["feature_names"]
    scored = predict_flow(
        model=f"{summary.model_name}@{summary.version.version}",
        output=str(tmp_path / "scores.parquet"),
        data=DataConfig(
            source="files", url=f"{tmp_path}/events/", window={"days": 1, "until": "2026-11-05", "column": "time"}
        ),
    )
    assert scored.rows == 2 * 60, "the 5th of both files"
