"""A root kerasflow cannot use is refused before any work, in one message naming it and the fix.

S3 is moto's server over HTTP (conftest); "no credentials" is an environment where botocore
finds none (``no_aws_credentials``). A read-only root is a folder this process really
cannot write (``unwritable_folder``: mode bits, or the immutable attribute under root).
"""

from __future__ import annotations

import re
import time

import pytest
import s3fs

from kerasflow.tasks import storage
from kerasflow.tasks.failures import ConfigError, retry_unless_deterministic

# The fix every credentials message names, whichever URL it is about.
FIX = re.compile(
    r"set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE .*instance or pod role.*storage options"
)


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error

    def result(self):
        raise self.error


def test_an_s3_root_without_credentials_is_refused_in_seconds_naming_the_fix(
    s3_root, s3_server, no_aws_credentials, monkeypatch
):
    # Known before any request: refused with the store down, and passed once credentials are
    # set, so an outage is still left to the steps, which retry it (test_s3_flow).
    s3_server.stop()
    try:
        started = time.monotonic()
        with pytest.raises(ConfigError) as info:
            storage.check_root(s3_root)
        elapsed = time.monotonic() - started
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
        s3fs.S3FileSystem.clear_instance_cache()
        storage.check_root(s3_root)
    finally:
        s3_server.start()

    assert elapsed < 30, f"{elapsed:.1f} s: a missing credential is known before any request"
    message = str(info.value)
    assert message.startswith(f"no credentials to sign requests to {s3_root} at s3 endpoint http://127.0.0.1:")
    assert FIX.search(message), message
    assert retry_unless_deterministic(None, None, _Failed(info.value)) is False


def test_a_data_url_without_credentials_says_the_same_and_is_not_retried(s3_bucket, no_aws_credentials):
    url = f"{s3_bucket}/events/part-0.parquet"
    fs, path = storage.filesystem(url)
    started = time.monotonic()
    with pytest.raises(ConfigError) as info, storage.reaching(url):
        fs.cat_file(path)

    assert time.monotonic() - started < 30
    message = str(info.value)
    assert message.startswith(f"no credentials to sign requests to {url} at s3 endpoint http://127.0.0.1:")
    assert FIX.search(message), message
    assert retry_unless_deterministic(None, None, _Failed(info.value)) is False


def test_a_root_that_is_a_file_is_refused_and_left_as_it_is(tmp_path):
    file = tmp_path / "kerasflow-root"
    file.write_text("notes")
    with pytest.raises(ConfigError) as info:
        storage.check_root(str(file))
    assert str(info.value).startswith(f"received storage.root={str(file)!r}: {file} is a file, not a folder; ")
    assert "set storage.root (or KERASFLOW_ROOT) to a folder" in str(info.value)
    assert file.read_text() == "notes"

    with pytest.raises(ConfigError, match=rf"{re.escape(str(file))} is a file, so no folder can be made under it"):
        storage.check_root(str(file / "kerasflow"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kerasflow-root"]


def test_a_read_only_root_is_refused_and_nothing_is_created(unwritable_folder, tmp_path):
    for root in (unwritable_folder, unwritable_folder / "kerasflow"):  # the root, or the folder it would be made in
        with pytest.raises(ConfigError) as info:
            storage.check_root(str(root))
        message = str(info.value)
        assert message.startswith(
            f"received storage.root={str(root)!r}: this user cannot write in {unwritable_folder} ("
        )
        assert (
            "give it write access (chmod, chown) or set storage.root (or KERASFLOW_ROOT) to a folder it can" in message
        )
    assert list(unwritable_folder.iterdir()) == []

    # A folder it can write passes, whether made yet or not, and is left as it was.
    writable = tmp_path / "writable"
    writable.mkdir()
    storage.check_root(str(writable))
    storage.check_root(str(writable / "not-yet" / "kerasflow"))
    assert list(writable.iterdir()) == []
