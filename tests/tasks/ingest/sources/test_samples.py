"""The bundled samples read without scikit-learn's import are scikit-learn's own tables."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from sklearn import datasets

from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.ingest.sources.samples import sample_arrays


def test_digits_read_from_the_bundled_file_are_load_digits_exactly():
    x, y, class_names, feature_names = sample_arrays(DataConfig(source="sample", name="digits"))
    bunch = datasets.load_digits()
    assert x.dtype == np.float32 and x.shape == (1797, 8, 8, 1)
    np.testing.assert_array_equal(x[..., 0], bunch.images.astype("float32"))
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, bunch.target)
    assert class_names == [str(c) for c in bunch.target_names] and feature_names is None


def test_the_digits_fingerprint_does_not_import_scikit_learn():
    code = (
        "import sys\n"
        "from kerasflow.tasks.config import DataConfig\n"
        "from kerasflow.tasks.ingest.sources import identify\n"
        "identify(DataConfig(source='sample', name='digits'))\n"
        "print('sklearn' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_the_other_tables_still_come_from_scikit_learn():
    # diabetes has no target_names (its target is a number): a classifier on it is refused
    x, y, class_names, _ = sample_arrays(DataConfig(source="sample", name="diabetes", labels="numbers"))
    np.testing.assert_array_equal(y, datasets.load_diabetes().target.astype("float32"))
    assert class_names == [] and x.shape == (442, 10)

    x, y, class_names, feature_names = sample_arrays(DataConfig(source="sample", name="breast_cancer"))
    bunch = datasets.load_breast_cancer()
    np.testing.assert_array_equal(x, bunch.data.astype("float32"))
    np.testing.assert_array_equal(y, bunch.target)
    assert class_names == ["malignant", "benign"] and feature_names == list(bunch.feature_names)
