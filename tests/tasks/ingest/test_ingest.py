"""Ingest on a local disk and on a real S3 protocol server: fingerprints, publication, reuse."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import fsspec
import numpy as np
import pytest

from kerasflow.tasks import storage
from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.data import materialize as materialize_module
from kerasflow.tasks.data.materialize import REF_FILE, find_materialized, materialize
from kerasflow.tasks.data.pipeline import load_split
from kerasflow.tasks.failures import DataValidationError, DeterministicFailure
from kerasflow.tasks.ingest.sources import fingerprint, identify, load_source
from tests.tables import event_frame, write_frame, write_partitions
from tests.tfds_fakes import prepare_fake_tfds


def files_config(url: str, **extra) -> DataConfig:
    return DataConfig(source="files", url=url, **extra)


def listing(url: str) -> list[str]:
    fs, path = storage.filesystem(url)
    return sorted(p.rsplit("/", 1)[-1] for p in fs.ls(path, detail=False))


def test_the_fingerprint_follows_the_files_not_the_run(tmp_path):
    prefix = str(tmp_path / "events")
    write_partitions(prefix, ["2026-11-01", "2026-11-02"])
    data = files_config(f"{prefix}/date=*/part-*.parquet")
    first = fingerprint(identify(data))

    assert fingerprint(identify(data)) == first, "same files, same fingerprint"
    write_partitions(prefix, ["2026-11-01", "2026-11-02", "2026-11-03"])[2:]
    with_new_day = fingerprint(identify(data))
    assert with_new_day != first, "a new partition is new data"
    write_frame(f"{prefix}/date=2026-11-03/part-0.parquet", event_frame(150, seed=9))
    assert fingerprint(identify(data)) not in (first, with_new_day), "a rewritten partition is new data"
    assert fingerprint(identify(files_config(data.url, seed=1))) != fingerprint(identify(data)), "another split cut"


def test_s3_partitions_materialize_once_and_read_back_on_another_machine(s3_root, s3_bucket, tmp_path, monkeypatch):
    write_partitions(f"{s3_bucket}/events", ["2026-11-01", "2026-11-02", "2026-11-03"])
    data = files_config(f"{s3_bucket}/events/date=*/part-*.parquet")
    identity = identify(data)
    assert [row[0] for row in identity["files"]] == [
        f"{s3_bucket}/events/date=2026-11-0{d}/part-0.parquet" for d in (1, 2, 3)
    ]
    assert all(row[2].strip('"') for row in identity["files"]), "S3 files are identified by their ETag"

    ref = materialize(load_source(data, identity), s3_root)

    assert ref.uri == f"{s3_root}/datasets/{ref.fingerprint}"
    assert sum(ref.splits.values()) == 600 and ref.feature_shape == (4,)
    assert find_materialized(s3_root, ref.fingerprint) == ref
    published = listing(ref.uri)
    assert REF_FILE in published and len(published) == 2, f"one marker and one attempt, found {published}"

    # Another machine: an empty cache downloads the published files and reads every row.
    monkeypatch.setenv("KERASFLOW_CACHE", str(tmp_path / "other-machine"))
    rows = sum(1 for _ in load_split(ref, "train"))
    assert rows == ref.splits["train"]
    assert (tmp_path / "other-machine").exists()


def test_two_ingestions_of_the_same_new_data_leave_one_materialization(s3_root, s3_bucket, monkeypatch):
    write_partitions(f"{s3_bucket}/events", ["2026-11-01"])
    data = files_config(f"{s3_bucket}/events/date=*/part-*.parquet")
    # Both writers pass the "already published?" check before either uploads: a real race.
    both_ready = threading.Barrier(2, timeout=60)
    upload = storage.upload_dir

    def upload_when_both_ready(local, url):
        both_ready.wait()
        upload(local, url)

    monkeypatch.setattr(storage, "upload_dir", upload_when_both_ready)
    refs, errors = [], []

    def ingest_once():
        try:
            refs.append(materialize(load_source(data), s3_root))
        except Exception as error:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=ingest_once) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert len(refs) == 2 and refs[0] == refs[1], "the loser returns the winner's ref"
    published = listing(refs[0].uri)
    assert published == sorted([REF_FILE, refs[0].builder_path.split("/")[0]]), "the loser removed its attempt"
    assert sum(1 for _ in load_split(refs[0], "test")) == refs[0].splits["test"]


def test_a_materialization_that_died_half_way_is_never_reused(root, tmp_path, monkeypatch):
    data = DataConfig(source="sample", name="breast_cancer")
    fp = fingerprint(identify(data))
    real_store = materialize_module._store

    def store_then_die(source, staging, **kwargs):
        real_store(source, staging, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(materialize_module, "_store", store_then_die)
    with pytest.raises(OSError, match="disk full"):
        materialize(load_source(data), str(root))
    assert find_materialized(str(root), fp) is None
    assert [p.name for p in (root / "datasets" / fp).iterdir()] == [], "the failed attempt cleaned up"
    # A writer killed outright (SIGKILL) cannot clean up: its files stay, unnamed by any marker.
    killed = root / "datasets" / fp / "attempt-killed" / "breast_cancer" / "1.0.0"
    killed.mkdir(parents=True)
    (killed / "dataset_info.json").write_text("{}")
    assert find_materialized(str(root), fp) is None

    monkeypatch.undo()
    ref = materialize(load_source(data), str(root))
    assert find_materialized(str(root), fp) == ref
    assert not ref.builder_path.startswith("attempt-killed")
    assert sum(1 for _ in load_split(ref, "validation")) == ref.splits["validation"]


@pytest.mark.parametrize(
    ("name", "write", "message"),
    [
        (
            "corrupt.parquet",
            lambda url: fsspec.open(url, "wb").__enter__().write(b"PAR1 not really parquet"),
            r"check 'readable' failed: cannot be read as Parquet",
        ),
        (
            "missing.csv",
            lambda url: write_frame(url, event_frame().drop(columns=["f3"])),
            r"check 'columns' failed: missing column\(s\) \['f3'\]",
        ),
        (
            "nan.parquet",
            lambda url: write_frame(url, event_frame().assign(f2=lambda f: f.f2.mask(f.index == 41))),
            r"check 'finite features' failed: 1 row\(s\) .* first at row 41 \(column 'f2'\)",
        ),
        (
            "unseen.parquet",
            lambda url: write_frame(url, event_frame().assign(label=lambda f: f.label.mask(f.index == 7, 5))),
            r"check 'known classes' failed: 1 row\(s\) have label\(s\) \['5'\] not in data.classes \['0', '1'\], "
            r"first at row 7",
        ),
    ],
)
def test_bad_files_on_s3_are_named_with_the_check_and_the_row(s3_bucket, name, write, message):
    good = write_frame(f"{s3_bucket}/events/a-good.parquet", event_frame())
    bad = f"{s3_bucket}/events/{name}"
    handle = write(bad)
    if hasattr(handle, "close"):
        handle.close()
    data = files_config(f"{s3_bucket}/events/*", feature_columns=["f0", "f1", "f2", "f3"], classes=[0, 1])
    assert good
    with pytest.raises(DataValidationError, match=message) as info:
        load_source(data)
    assert str(info.value).startswith(f"{bad}: ")


def test_extra_columns_are_ignored_and_listed_or_refused(tmp_path):
    url = write_frame(str(tmp_path / "events.parquet"), event_frame().assign(user_id=np.arange(200)))
    source = load_source(files_config(url, feature_columns=["f0", "f1", "f2", "f3"]))
    assert source.ignored_columns == ["user_id"] and source.feature_names == ["f0", "f1", "f2", "f3"]
    with pytest.raises(DataValidationError, match=r"extra column\(s\) \['user_id'\] outside the recipe's schema"):
        load_source(files_config(url, feature_columns=["f0", "f1", "f2", "f3"], extra_columns="error"))


def test_no_matching_file_is_one_clear_error(s3_bucket):
    with pytest.raises(DataValidationError, match=r"check 'files exist' failed: no file matches"):
        identify(files_config(f"{s3_bucket}/nothing/*.parquet"))


def test_a_tfds_data_dir_on_s3_is_synced_and_read(s3_root, s3_bucket, tmp_path):
    prepared = prepare_fake_tfds("mnist", tmp_path / "tfds", splits={"train": 40, "test": 20})
    storage.upload_dir(tmp_path / "tfds", f"{s3_bucket}/tfds")
    assert prepared.exists()
    data = DataConfig(
        source="tfds",
        name="mnist",
        data_dir=f"{s3_bucket}/tfds",
        tfds_splits={"train": "train[:75%]", "validation": "train[75%:]", "test": "test"},
    )
    ref = materialize(load_source(data), s3_root)
    assert ref.splits == {"train": 30, "validation": 10, "test": 20}
    assert ref.feature_shape == (28, 28, 1)


def test_a_prepared_tfds_folder_at_an_s3_url_is_a_files_source(s3_root, s3_bucket, tmp_path):
    builder_dir = prepare_fake_tfds("mnist", tmp_path / "tfds", splits={"train": 40, "test": 20})
    url = f"{s3_bucket}/prepared/mnist/{builder_dir.name}"
    storage.upload_dir(builder_dir, url)
    data = DataConfig(
        source="files", url=url, tfds_splits={"train": "train[:75%]", "validation": "train[75%:]", "test": "test"}
    )
    identity = identify(data)
    assert identity["tfds_dir"] == url and any(row[0].endswith("dataset_info.json") for row in identity["files"])

    ref = materialize(load_source(data, identity), s3_root)

    assert ref.splits == {"train": 30, "validation": 10, "test": 20} and ref.feature_shape == (28, 28, 1)
    assert fingerprint(identify(data)) == ref.fingerprint, "unchanged folder, unchanged fingerprint"


def test_a_truncated_csv_gz_is_named_once_not_retried(tmp_path):
    import gzip

    whole = gzip.compress(event_frame().to_csv(index=False).encode())
    url = str(tmp_path / "events.csv.gz")
    (tmp_path / "events.csv.gz").write_bytes(whole[: len(whole) // 2])  # an upload cut off half-way
    with pytest.raises(DataValidationError) as info:
        load_source(files_config(url))
    message = str(info.value)
    assert message.startswith(f"{url}: check 'readable' failed: cannot be read as CSV (EOFError")
    assert "rewrite it, or move it out of data.url" in message
    assert isinstance(info.value, DeterministicFailure), "a retry reads the same truncated bytes"


def test_soft_labels_are_refused_by_name_and_whole_floats_are_the_classes(tmp_path):
    frame = event_frame()
    as_floats = write_frame(str(tmp_path / "floats.csv"), frame.assign(label=frame.label.astype(float)))
    assert Path(as_floats).read_text().splitlines()[1].endswith((",0.0", ",1.0")), "the CSV really holds 0.0/1.0"
    for classes in (None, [0, 1]):
        source = load_source(files_config(as_floats, classes=classes))
        assert source.class_names == ["0", "1"]
        labels = np.concatenate([block["label"] for _, block in source.splits["train"]])
        assert set(labels.tolist()) == {0, 1} and labels.dtype == np.int64

    soft = frame.assign(label=frame.label.astype(float))
    soft.loc[[12, 40], "label"] = [0.16, 0.93]
    url = write_frame(str(tmp_path / "soft.csv"), soft)
    for classes in (None, [0, 1]):
        with pytest.raises(DataValidationError) as info:
            load_source(files_config(url, classes=classes))
        assert str(info.value).startswith(
            f"{url}: check 'class labels' failed: 2 row(s) have labels that are not whole numbers "
            "(soft labels or probabilities), first at row 12 (0.16)"
        )


def _split_of_each_row(source, key: str = "features") -> dict[bytes, str]:
    """Each stored row (its feature bytes, or its key) -> the split it was put in."""
    found = {}
    for role, dataset in source.splits.items():
        for _, block in dataset:
            for row in block[key]:
                found[row.tobytes()] = role
    return found


def test_adding_partitions_never_moves_a_row_between_splits(tmp_path):
    # The replay: 48 equal partitions, then a 49th. Under a seeded permutation of
    # the whole table 36% of the new test split had been training rows.
    prefix = str(tmp_path / "events")
    days = [f"2026-{1 + d // 28:02d}-{1 + d % 28:02d}" for d in range(49)]
    write_partitions(prefix, days[:48], rows=40)
    data = files_config(f"{prefix}/date=*/part-*.parquet")
    before = _split_of_each_row(load_source(data))
    write_partitions(prefix, days, rows=40)[48:]
    grown = load_source(data)
    after = _split_of_each_row(grown)

    assert len(before) == 48 * 40 and len(after) == 49 * 40, "every row is distinct and stored once"
    moved = {row: (role, after[row]) for row, role in before.items() if after[row] != role}
    assert moved == {}, f"{len(moved)} row(s) changed split when a partition was added"
    counts = grown.counts
    assert abs(counts["test"] / len(after) - 0.15) < 0.03 and abs(counts["validation"] / len(after) - 0.15) < 0.03
    assert grown.identity["split"] == {
        "rule": "row-hash-v1",
        "by": "row content",
        "seed": 0,
        "fractions": {"validation": 0.15, "test": 0.15},
    }
    other_seed = _split_of_each_row(load_source(files_config(data.url, seed=1)))
    assert sum(other_seed[row] != after[row] for row in after) > len(after) / 5, "the seed is part of the rule"


def test_a_split_key_keeps_each_key_in_one_split_as_data_grows(tmp_path):
    def partition(day: int, rows: int = 60):
        frame = event_frame(rows, seed=day)
        frame["customer"] = [f"c{(day * 7 + i) % 97}" for i in range(rows)]  # customers recur across days
        return write_frame(str(tmp_path / f"events/day={day:02d}.parquet"), frame)

    for day in range(10):
        partition(day)
    data = files_config(str(tmp_path / "events"), split_key="customer")
    source = load_source(data)
    assert source.feature_names == ["f0", "f1", "f2", "f3"], "the key is not a feature"
    assert source.identity["split"]["by"] == "column customer"
    assert fingerprint(source.identity) != fingerprint(identify(files_config(data.url))), "the rule is in the identity"

    import pandas as pd

    frames = pd.concat([pd.read_parquet(p) for p in sorted((tmp_path / "events").iterdir())], ignore_index=True)
    customer_of = {
        np.asarray(row, dtype=np.float32).tobytes(): c
        for row, c in zip(frames[["f0", "f1", "f2", "f3"]].to_numpy(), frames["customer"], strict=True)
    }
    split_of_customer: dict[str, set[str]] = {}
    for row, role in _split_of_each_row(source).items():
        split_of_customer.setdefault(customer_of[row], set()).add(role)
    assert all(len(roles) == 1 for roles in split_of_customer.values()), "a customer's rows share one split"

    partition(10)
    grown = _split_of_each_row(load_source(data))
    assert all(grown[row] == role for row, role in _split_of_each_row(source).items())

    frame = event_frame(20).assign(customer=None)
    url = write_frame(str(tmp_path / "nokey.parquet"), frame)
    with pytest.raises(DataValidationError, match=r"check 'split key present' failed: 20 row\(s\) .* first at row 0"):
        load_source(files_config(url, split_key="customer"))


@pytest.mark.timeout(60)
def test_a_tfds_download_that_cannot_reach_its_host_fails_once_quickly_naming_it(tmp_path):
    import time

    import tests.tfds_offline.offline_digits  # noqa: F401 - registers kerasflow_offline_digits
    from kerasflow.tasks.failures import retry_unless_deterministic

    data = DataConfig(
        source="tfds",
        name="kerasflow_offline_digits",
        data_dir=str(tmp_path / "tfds"),
        tfds_splits={"train": "train", "test": "test"},
    )
    started = time.monotonic()
    with pytest.raises(DeterministicFailure) as info:
        load_source(data)
    assert time.monotonic() - started < 10, "no DNS retries"
    assert str(info.value) == (
        "cannot reach kerasflow-offline.invalid (its name does not resolve) to download TFDS dataset "
        "'kerasflow_offline_digits', which is not prepared under data.data_dir; prepare it where there is network "
        "(`tfds build kerasflow_offline_digits --data_dir DIR`), copy DIR to this machine or to s3://…, and set "
        "data.data_dir to it"
    )

    class Failed:
        def result(self):
            raise info.value

    assert retry_unless_deterministic(None, None, Failed()) is False, "Prefect does not retry it"


@pytest.mark.parametrize("name", ["mnist", "imdb_reviews"])
def test_a_tfds_dataset_is_stored_with_the_statistics_of_what_was_stored(root, tmp_path, name):
    import tensorflow_datasets as tfds

    prepare_fake_tfds(name, tmp_path / "tfds", splits={"train": 40, "test": 20})
    data = DataConfig(
        source="tfds",
        name=name,
        data_dir=str(tmp_path / "tfds"),
        feature_key="image" if name == "mnist" else "text",
        tfds_splits={"train": "train[:75%]", "validation": "train[75%:]", "test": "test"},
    )
    ref = materialize(load_source(data), str(root))

    statistics = materialize_module.read_statistics(ref)
    assert statistics is not None and set(statistics.splits) == {"train", "validation", "test"}
    source = tfds.builder(name, data_dir=str(tmp_path / "tfds"))
    for split, spec in data.tfds_splits.items():
        rows = list(tfds.as_numpy(source.as_dataset(split=spec, shuffle_files=False)))
        stats = statistics.splits[split]
        assert stats.rows == ref.splits[split] == len(rows)
        names = source.info.features["label"].names
        assert dict(stats.label.values) == dict(Counter(names[int(r["label"])] for r in rows))
        if name == "mnist":
            assert dict(stats.columns["image_size"].values) == {"28x28": len(rows)}
        else:
            lengths = [len(r["text"].decode()) for r in rows]
            column = stats.columns["text_length"]
            assert (column.count, column.min, column.max) == (len(rows), min(lengths), max(lengths))
            assert column.mean == pytest.approx(np.mean(lengths))
