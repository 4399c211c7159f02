"""Regression targets through ingestion and validation: numbers, read as the task asks, checked by row."""

from __future__ import annotations

import os

import numpy as np
import pytest

from kerasflow.tasks.config import ConfigError, DataConfig
from kerasflow.tasks.data.materialize import materialize
from kerasflow.tasks.data.pipeline import load_split
from kerasflow.tasks.failures import DataValidationError, DeterministicFailure
from kerasflow.tasks.ingest.sources import fingerprint, identify, load_source
from kerasflow.tasks.validate import check_dataset
from tests.tables import event_frame, write_frame


def numbers(**fields) -> DataConfig:
    return DataConfig(labels="numbers", **fields)


def _targets(ref, split="train") -> np.ndarray:
    return np.concatenate([y for _, y in load_split(ref, split).batch(1024).as_numpy_iterator()])


def test_a_float_target_column_is_read_as_numbers_and_validated_without_class_checks(tmp_path, root):
    frame = event_frame(300)
    frame["label"] = 3.0 * frame.f0 - frame.f2 + 100.0  # a price, far from 0 and 1
    url = write_frame(str(tmp_path / "prices.csv"), frame)

    ref = materialize(load_source(numbers(source="files", url=url)), str(root))

    assert ref.labels == "numbers" and ref.num_classes == 0 and ref.class_names == []
    targets = _targets(ref)
    assert targets.dtype == np.float32 and 90 < targets.mean() < 110
    assert sum(ref.splits.values()) == 300
    report = check_dataset(ref)
    assert report.passed, report.markdown()
    assert "finite target" in report.checks
    assert not {"label range", "class balance", "classes seen in training"} & set(report.checks)


def test_the_same_column_read_as_numbers_is_another_dataset_than_read_as_classes(tmp_path):
    url = write_frame(str(tmp_path / "events.csv"), event_frame())
    as_classes = identify(DataConfig(source="files", url=url))
    assert "labels" not in as_classes, "classifier fingerprints did not change when regression came"
    assert fingerprint(identify(numbers(source="files", url=url))) != fingerprint(as_classes)


@pytest.mark.parametrize(
    ("value", "check"),
    [
        ("high", "check 'numeric target' failed: 1 row(s) have a target that is not a number"),
        ("inf", "check 'finite target' failed: 1 row(s) have a NaN or infinite target"),
    ],
)
def test_a_target_that_is_not_a_finite_number_is_named_by_file_and_row(tmp_path, value, check):
    frame = event_frame().astype({"label": object})
    frame.loc[17, "label"] = value
    url = write_frame(str(tmp_path / "bad.csv"), frame)
    with pytest.raises(DataValidationError) as info:
        load_source(numbers(source="files", url=url))
    assert str(info.value).startswith(f"{url}: {check}") and "first at row 17" in str(info.value)
    assert isinstance(info.value, DeterministicFailure)


def test_the_diabetes_sample_is_a_regression_and_says_so(root):
    with pytest.raises(ConfigError, match=r"diabetes.* its target is a number; set model.task: regression"):
        load_source(DataConfig(source="sample", name="diabetes"))
    ref = materialize(load_source(numbers(source="sample", name="diabetes")), str(root))
    assert sum(ref.splits.values()) == 442 and ref.feature_shape == (10,) and len(ref.feature_names) == 10
    assert _targets(ref).min() >= 25 and _targets(ref).max() <= 346


def _prepared_tfds(folder, labels: np.ndarray, label_feature) -> str:
    import tensorflow as tf
    import tensorflow_datasets as tfds

    features = np.random.default_rng(0).normal(size=(len(labels), 3)).astype("float32")
    spec = tfds.features.FeaturesDict({"x": tfds.features.Tensor(shape=(3,), dtype=np.float32), "y": label_feature})
    cut = len(labels) * 3 // 4
    builder = tfds.dataset_builders.store_as_tfds_dataset(
        name="kf_targets",
        version="1.0.0",
        features=spec,
        split_datasets={
            "train": tf.data.Dataset.from_tensor_slices({"x": features[:cut], "y": labels[:cut]}),
            "test": tf.data.Dataset.from_tensor_slices({"x": features[cut:], "y": labels[cut:]}),
        },
        data_dir=os.fspath(folder),
    )
    return str(builder.data_dir)


def _tfds_dir_config(url: str, **fields) -> DataConfig:
    splits = {"train": "train[:80%]", "validation": "train[80%:]", "test": "test"}
    return DataConfig(source="files", url=url, feature_key="x", label_key="y", tfds_splits=splits, **fields)


def test_a_prepared_tfds_dataset_with_a_float_target_trains_a_regression_and_a_nan_is_found(tmp_path, root):
    import tensorflow_datasets as tfds

    targets = np.linspace(0.0, 50.0, 40).astype("float32")
    url = _prepared_tfds(tmp_path / "good", targets, tfds.features.Scalar(dtype=np.float32))
    ref = materialize(load_source(_tfds_dir_config(url, labels="numbers")), str(root))
    assert ref.labels == "numbers" and ref.class_names == []
    assert check_dataset(ref).passed

    with pytest.raises(ConfigError, match="a Scalar and not a ClassLabel; a classifier needs class labels"):
        load_source(_tfds_dir_config(url))

    targets[5] = np.nan
    url = _prepared_tfds(tmp_path / "nan", targets, tfds.features.Scalar(dtype=np.float32))
    report = check_dataset(materialize(load_source(_tfds_dir_config(url, labels="numbers")), str(root)))
    failed = [r for r in report.results if r.status == "failed"]
    assert [r.check for r in failed] == ["finite target"]
    assert "split 'train': check 'finite target' failed: 1 row(s)" in failed[0].detail
