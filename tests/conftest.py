"""Shared fixtures: a real Prefect test server, two logical CPUs, tiny data.

TensorFlow's CPU is split into two logical devices here, before anything initialises
TensorFlow, so MirroredStrategy can run two real replicas on a machine without GPUs.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_SERVER_UI_ENABLED"] = "false"
os.environ.pop("KERASFLOW_ROOT", None)

import pytest
import tensorflow as tf

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)


@pytest.fixture(scope="session")
def prefect_server():
    """One temporary Prefect server (SQLite) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A fresh storage root; KERASFLOW_ROOT points at it as a user would set it."""
    path = tmp_path / "kerasflow-root"
    monkeypatch.setenv("KERASFLOW_ROOT", str(path))
    return path
