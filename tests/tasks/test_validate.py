"""The data checks, on datasets materialized by the real ingest code from chosen splits."""

from __future__ import annotations

import numpy as np
import pytest

from kerasflow.tasks.config import ValidationConfig
from kerasflow.tasks.data.materialize import materialize
from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.ingest.sources import SourceData
from kerasflow.tasks.validate import check_dataset


def make_ref(root, splits: dict[str, tuple[np.ndarray, np.ndarray]], *, classes=("no", "yes"), name="t"):
    """Materialize exactly these splits (features (n, 3) float32, labels int64)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    features = tfds.features.FeaturesDict(
        {
            "features": tfds.features.Tensor(shape=(3,), dtype=np.float32),
            "label": tfds.features.ClassLabel(names=classes),
        }
    )
    source = SourceData(
        name=name,
        features=features,
        splits={
            s: tf.data.Dataset.from_tensor_slices({"features": x.astype("float32"), "label": y.astype("int64")})
            for s, (x, y) in splits.items()
        },
        feature_key="features",
        label_key="label",
        class_names=list(classes),
        identity={"source": "test", "name": name, "splits": {s: y.tolist() for s, (_, y) in splits.items()}},
    )
    return materialize(source, str(root))


def table(n: int, *, seed: int, labels=None):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = np.asarray(labels) if labels is not None else (x[:, 0] > 0).astype("int64")
    return x, y


def results(report) -> dict[str, str]:
    return {r.check: r.status for r in report.results}


def test_clean_data_passes_every_check_and_reports_each(root):
    ref = make_ref(root, {"train": table(100, seed=0), "validation": table(30, seed=1), "test": table(30, seed=2)})
    report = check_dataset(ref, global_batch_size=32)
    assert report.passed
    assert results(report) == {
        "feature shape": "passed",
        "not empty": "passed",
        "at least one batch": "passed",
        "finite features": "passed",
        "label range": "passed",
        "classes seen in training": "passed",
        "class balance": "passed",
        "no train/validation leakage": "passed",
        "no train/test leakage": "passed",
    }
    assert sum(report.class_counts.values()) == 100 and set(report.class_counts) == {"no", "yes"}
    assert "| no train/test leakage | passed | 0 example(s) shared with train |" in report.markdown()
    report.raise_for_failures()  # nothing to raise


def test_examples_shared_between_train_and_test_are_leakage(root):
    train = table(100, seed=0)
    test = (
        np.concatenate([table(20, seed=5)[0], train[0][10:13]]),
        np.concatenate([table(20, seed=5)[1], train[1][10:13]]),
    )
    ref = make_ref(root, {"train": train, "validation": table(30, seed=1), "test": test})

    report = check_dataset(ref)
    assert results(report)["no train/test leakage"] == "failed"
    assert results(report)["no train/validation leakage"] == "passed"
    with pytest.raises(
        DataValidationError,
        match=r"split 'test': check 'no train/test leakage' failed: 3 of 23 example\(s\) also occur exactly in train, "
        r"first at row 20",
    ):
        report.raise_for_failures()
    lenient = check_dataset(ref, rules=ValidationConfig(max_shared_fraction=0.15))
    assert lenient.passed


def test_class_imbalance_warns_then_fails_past_the_configured_ratio(root):
    labels = np.array([1] * 4 + [0] * 96)  # 24:1
    ref = make_ref(
        root, {"train": table(100, seed=0, labels=labels), "validation": table(30, seed=1), "test": table(30, seed=2)}
    )
    report = check_dataset(ref)
    assert report.passed and results(report)["class balance"] == "warning"
    assert "skewed: majority/minority 24.0 (no: 96, yes: 4)" in report.markdown()

    strict = check_dataset(ref, rules=ValidationConfig(max_class_imbalance=20))
    with pytest.raises(
        DataValidationError, match=r"majority/minority ratio 24.0 exceeds validation.max_class_imbalance=20"
    ):
        strict.raise_for_failures()


def test_a_class_never_seen_in_training_fails(root):
    ref = make_ref(
        root,
        {
            "train": table(60, seed=0, labels=[0, 1] * 30),
            "validation": table(20, seed=1, labels=[0, 1] * 10),
            "test": table(20, seed=2, labels=[0, 1, 2, 1] * 5),
        },
        classes=("a", "b", "c"),
    )
    report = check_dataset(ref)
    assert results(report)["classes seen in training"] == "failed"
    assert results(report)["class balance"] == "failed", "class c has no training examples"
    with pytest.raises(DataValidationError, match=r"class\(es\) \['c'\] occur in test but never in train") as info:
        report.raise_for_failures()
    assert "(1 more check(s) failed; see the validation report)" in str(info.value)


def test_a_split_smaller_than_one_global_batch_fails(root):
    ref = make_ref(root, {"train": table(40, seed=0), "validation": table(10, seed=1), "test": table(10, seed=2)})
    assert check_dataset(ref, global_batch_size=8).passed
    report = check_dataset(ref, global_batch_size=64)
    with pytest.raises(
        DataValidationError,
        match=r"split 'train': check 'at least one batch' failed: 40 rows, fewer than one global batch of 64",
    ):
        report.raise_for_failures()
    # Under two replicas validation drops its last partial batch, so it needs a whole one too.
    mirrored = check_dataset(ref, global_batch_size=16, replicas=2)
    assert "split 'validation': check 'at least one batch' failed: 10 rows" in mirrored.markdown()


def test_nan_features_and_bad_labels_are_all_reported_with_their_rows(root):
    x, y = table(50, seed=0)
    x[7, 1] = np.nan
    ref = make_ref(root, {"train": (x, y), "validation": table(20, seed=1), "test": table(20, seed=2)})
    report = check_dataset(ref, num_classes=2)
    assert results(report)["finite features"] == "failed"
    assert "check 'finite features' failed: 1 row(s) have NaN or infinite features" in report.markdown()


def test_row_hashes_tell_rows_apart_by_every_byte_and_agree_on_equal_rows():
    from kerasflow.tasks.validate import _row_hashes

    rows = np.random.default_rng(3).normal(size=(2000, 7)).astype("float32")  # 28 B: padded to 32
    hashes = _row_hashes(rows)
    assert hashes.dtype == np.uint64 and len(np.unique(hashes)) == len(rows)
    np.testing.assert_array_equal(_row_hashes(rows.copy()), hashes)
    for column in range(7):  # one ulp in any column, the last word's padding included
        changed = rows.copy()
        changed[11, column] = np.nextafter(changed[11, column], np.float32(np.inf))
        assert _row_hashes(changed)[11] != hashes[11]
    assert _row_hashes(np.zeros((1, 1), "uint8"))[0] != _row_hashes(np.zeros((1, 2), "uint8"))[0], "width counts"
    text = np.array([b"a film", b"a film", b"another"], dtype=object)
    assert _row_hashes(text)[0] == _row_hashes(text)[1] != _row_hashes(text)[2]
    # A typed table's text group: rows of several text values, equal only when every value is.
    texts = np.array(
        [[b"de", b"web"], [b"de", b"web"], [b"de", b"pos"], [b"fr", b"web"], [b"dew", b"eb"]], dtype=object
    )
    grouped = _row_hashes({"strings": texts, "features": np.ones((5, 2), "float32")})
    assert grouped[0] == grouped[1] and len(np.unique(grouped[1:])) == 4
