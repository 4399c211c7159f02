"""Shared fixtures: a real Prefect test server, a real S3 server, two logical CPUs, tiny data.

TensorFlow's CPU is split into two logical devices here, before anything initialises
TensorFlow, so MirroredStrategy can run two real replicas on a machine without GPUs.
S3 is moto's S3 protocol server on a loopback port; clients find it through the
standard AWS environment variables, as they would find a real endpoint.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_SERVER_UI_ENABLED"] = "false"
# Servers are waited for until they answer, not for a fixed time: a loaded machine makes
# the suite slow, not failed. These are ceilings for a server that never comes up.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "600")
os.environ.setdefault("KERASFLOW_SERVER_STARTUP_SECONDS", "600")
os.environ.pop("KERASFLOW_ROOT", None)
os.environ.pop("KERASFLOW_CACHE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_ENDPOINT_URL_S3", None)
os.environ.pop("AWS_PROFILE", None)
# A suite started in the background by a shell without job control (`nohup make test &`, some CI
# runners) inherits SIGINT ignored, and so does every process it starts: the tests that stop
# `kerasflow serve` with Ctrl-C would wait for a stop that never comes. Here Ctrl-C means what it
# means in a terminal, however the suite was started.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import pytest
import tensorflow as tf

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)


@pytest.fixture(scope="session")
def prefect_server():
    """One temporary Prefect server (SQLite) for the whole session, waited for until it answers.

    ``None``: the harness waits up to PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS (set above),
    polling the health check, instead of a short fixed limit.
    """
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=None):
        yield


class S3Server:
    """moto's ThreadedMotoServer on a fixed loopback port; can be stopped and started again.

    moto keeps its buckets in the test process, so a restarted server serves the same data
    (an outage, not a loss).
    """

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        _conditional_puts_atomic()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def _conditional_puts_atomic() -> None:
    """Make moto create an object under ``If-None-Match: *`` in one step, as S3 does.

    moto 5's ``put_object`` checks that the key is absent and then stores it, unlocked, in
    whichever server thread took the request: two writers racing for one key can both
    succeed. The registry numbers versions and alias moves by exclusive creation, and
    under load the alias-move test once lost a move to that window. Holding one lock
    across a conditional PUT gives moto the guarantee S3 documents.
    """
    from moto.s3.responses import S3Response

    if getattr(S3Response.put_object, "atomic_if_none_match", False):
        return
    unlocked, lock = S3Response.put_object, threading.Lock()

    def put_object(self):
        if self.headers.get("If-None-Match") is None:
            return unlocked(self)
        with lock:
            return unlocked(self)

    put_object.atomic_if_none_match = True
    S3Response.put_object = put_object


@pytest.fixture(scope="session")
def s3_server():
    """One S3 server for the session; clients reach it through AWS_ENDPOINT_URL."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = S3Server()
    server.start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", server.endpoint)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        # Fail fast when the server is down on purpose (botocore's default retries take 7 s).
        patch.setenv("AWS_MAX_ATTEMPTS", "2")
        patch.setenv("AWS_RETRY_MODE", "standard")
        yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh bucket: ``s3://<name>``."""
    import fsspec

    name = f"kf-{uuid.uuid4().hex[:10]}"
    fsspec.filesystem("s3").mkdir(name)
    return f"s3://{name}"


@pytest.fixture
def s3_root(s3_bucket, tmp_path, monkeypatch):
    """A storage root on S3, with its local cache in the test's temporary folder."""
    monkeypatch.setenv("KERASFLOW_CACHE", str(tmp_path / "cache"))
    root = f"{s3_bucket}/kerasflow"
    monkeypatch.setenv("KERASFLOW_ROOT", root)
    return root


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A fresh storage root; KERASFLOW_ROOT points at it as a user would set it."""
    path = tmp_path / "kerasflow-root"
    monkeypatch.setenv("KERASFLOW_ROOT", str(path))
    return path


@pytest.fixture
def no_aws_credentials(monkeypatch):
    """An environment with no AWS credentials anywhere botocore looks, as on a fresh laptop.

    The metadata service is switched off so botocore does not probe 169.254.169.254, and the
    S3 filesystems cached with the session's credentials are dropped, as in a new process.
    """
    import s3fs

    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s3fs.S3FileSystem.clear_instance_cache()
    yield
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def unwritable_folder(tmp_path):
    """An empty folder this process cannot create anything in.

    Its mode bits make it so for a user; root writes past them, so as root the folder gets
    the immutable attribute (``chattr +i``), which binds root too. Where neither holds
    (no chattr, a file system without the attribute) the test is skipped, saying why.
    """
    import shutil
    import subprocess

    folder = tmp_path / "read-only"
    folder.mkdir()
    as_root = os.geteuid() == 0
    if as_root:
        if shutil.which("chattr") is None:
            pytest.skip("running as root, who writes past mode bits, without chattr to make a folder immutable")
        made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True, check=False)
        if made.returncode != 0:
            pytest.skip(f"running as root, who writes past mode bits, and chattr +i failed: {made.stderr.strip()}")
    else:
        folder.chmod(0o555)
    try:
        try:
            (folder / "probe").touch()
        except OSError:
            pass
        else:
            (folder / "probe").unlink()
            pytest.skip(f"{folder} stayed writable to this process (uid {os.geteuid()})")
        yield folder
    finally:
        if as_root:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        else:
            folder.chmod(0o755)


def pytest_collection_modifyitems(config, items):
    """Under the test processes of ``make test``, the modules measured longest go first (tests/module_order.py)."""
    if config.getoption("dist", "no") == "no":
        return
    from tests.module_order import load_seconds, longest_first

    order = longest_first([item.nodeid for item in items], load_seconds())
    items[:] = [items[i] for i in order]
