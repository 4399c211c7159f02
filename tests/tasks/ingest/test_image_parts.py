"""An image folder larger than one part is stored in runs of images, and reads as the folder stored whole."""

from __future__ import annotations

import logging

import fsspec
import numpy as np

from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.config.runtime import IngestRunConfig
from kerasflow.tasks.data import materialize as materialization
from kerasflow.tasks.data.materialize import find_materialized, read_statistics
from kerasflow.tasks.data.source_data import SIZE_COLUMN
from kerasflow.tasks.ingest import image_parts
from kerasflow.tasks.ingest.sources import SPLITS, fingerprint, identify, load_source
from kerasflow.tasks.ingest.storing import find_or_store
from tests.stored import CountingMaterialize, rows_of
from tests.tables import write_image_folders

LOG = logging.getLogger("test_image_parts")


def folder(tmp_path, *, per_class=10):
    write_image_folders(str(tmp_path / "photos"), per_class=per_class)
    return DataConfig(source="images", url=str(tmp_path / "photos"), image_size=(16, 16))


def folder_bytes(identity):
    return sum(size for _, size, _ in identity["files"])


def test_a_folder_stored_in_parts_is_the_folder_stored_whole(tmp_path):
    data = folder(tmp_path)
    identity = identify(data)
    whole = materialization.materialize(load_source(data, identity), str(tmp_path / "whole"))
    root = str(tmp_path / "parts")
    part_bytes = folder_bytes(identity) // 4
    parts = image_parts.materialize_images(data, identity, root, logger=LOG, part_bytes=part_bytes)

    assert whole.builder_path is not None and len(parts.parts) >= 4
    assert all(sum(p.splits.values()) < 30 for p in parts.parts), "no part holds the folder"
    assert parts.fingerprint == whole.fingerprint == fingerprint(identity)
    assert find_materialized(root, parts.fingerprint) == parts, "the folder's dataset is published"
    for field in ("splits", "class_names", "num_classes", "feature_shape", "feature_dtype", "image_size", "source"):
        assert getattr(parts, field) == getattr(whole, field), field
    for split in SPLITS:  # image for image, in the same order
        whole_x, whole_y = rows_of(whole, split, ordered=True)
        parts_x, parts_y = rows_of(parts, split, ordered=True)
        np.testing.assert_array_equal(parts_x, whole_x)
        np.testing.assert_array_equal(parts_y, whole_y)
    merged, alone = read_statistics(parts), read_statistics(whole)
    for split in SPLITS:
        assert merged.splits[split].rows == alone.splits[split].rows
        assert merged.splits[split].label.values == alone.splits[split].label.values
        assert merged.splits[split].columns[SIZE_COLUMN].values == alone.splits[split].columns[SIZE_COLUMN].values


def test_runs_of_images_hold_at_most_a_part_and_an_image_larger_than_a_part_is_alone():
    files = [[f"f{i}", size, ""] for i, size in enumerate([40, 50, 20, 300, 10, 90, 5])]
    runs = image_parts.image_runs(files, part_bytes=100)
    assert [[f[0] for f in run] for run in runs] == [["f0", "f1"], ["f2"], ["f3"], ["f4", "f5"], ["f6"]]
    assert [f for run in runs for f in run] == files


def test_ingest_stores_a_folder_larger_than_a_part_in_parts_and_a_rerun_stores_only_what_is_missing(
    tmp_path, monkeypatch
):
    data = folder(tmp_path)
    identity = identify(data)
    monkeypatch.setattr(image_parts, "PART_BYTES", folder_bytes(identity) // 3)
    root = str(tmp_path / "root")
    first = find_or_store(data, identity, root, logger=LOG, runtime=IngestRunConfig())
    assert len(first.parts) >= 3
    # As if the run died before its last part and the folder's dataset were published.
    fs, base = fsspec.core.url_to_fs(root)
    for dataset in (first.fingerprint, first.parts[-1].fingerprint):
        fs.rm(f"{base}/datasets/{dataset}/ref.json")

    counting = CountingMaterialize()
    again = image_parts.materialize_images(data, identity, root, materialize=counting)

    assert counting.fingerprints == [first.parts[-1].fingerprint]
    assert [p.fingerprint for p in again.parts] == [p.fingerprint for p in first.parts]
    assert again.splits == first.splits


def test_a_folder_under_a_limit_is_stored_whole(tmp_path):
    data = folder(tmp_path, per_class=4).model_copy(update={"limit": 6})
    identity = identify(data)
    assert not image_parts.applies(data, identity, part_bytes=1)
    assert image_parts.applies(data.model_copy(update={"limit": None}), identity, part_bytes=1)
