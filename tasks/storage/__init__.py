"""The storage root: one fsspec URL for datasets, runs and the registry.

Layout (DESIGN.md)::

    <root>/datasets/<fingerprint>/     materialized datasets, immutable
    <root>/runs/<run-id>/              model.keras, metrics.json, tensorboard/
    <root>/training/<key>/             a training's lease, backups and trained.json (tasks/train/state.py)
    <root>/registry/                   the model registry
    <root>/holds/                      the datasets runs in progress hold (tasks/storage/holds.py)

The root may be a local folder or any fsspec URL (``s3://bucket/prefix``). TensorFlow
only ever reads and writes local paths, so a remote root has a local mirror, the
*cache* (``KERASFLOW_CACHE``, default ``~/.cache/kerasflow/<hash of the root>``), with
the same layout: training writes into it and uploads; readers download into it once.
Transfers are bulk (one concurrent s3fs call for many files), never file by file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import fsspec

from kerasflow.tasks.failures import ConfigError, KerasflowError
from kerasflow.tasks.storage import root_access


class StorageUnavailableError(KerasflowError, OSError):
    """The storage root (or a data URL) cannot be reached; transient, so retried."""


def is_local(url: str) -> bool:
    """Whether ``url`` is a local path: no scheme, or ``file://``."""
    return "://" not in url or url.startswith("file://")


def is_within(root: str, url: str) -> bool:
    """Whether ``url`` names something under ``root`` (same scheme, no ``..`` escaping it).

    Args:
        root: a storage root: a local folder or any fsspec URL.
        url: a local path or URL; local paths are compared with their links resolved.
    """
    if is_local(root) != is_local(url):
        return False
    if is_local(root):
        base = os.path.realpath(root.removeprefix("file://"))
        target = os.path.realpath(url.removeprefix("file://"))
        return target == base or target.startswith(base.rstrip("/") + "/")
    base = root.rstrip("/")
    return url.startswith(base + "/") and ".." not in url[len(base) :].split("/")


def join(url: str, *parts: str) -> str:
    """``url`` and ``parts`` joined by single slashes.

    Args:
        url: a local path or URL; a trailing slash is dropped.
        *parts: path segments; slashes around each are dropped.
    """
    return "/".join([url.rstrip("/"), *(p.strip("/") for p in parts)])


def filesystem(url: str):
    """The fsspec filesystem and path of ``url``, with fresh listings.

    s3fs caches directory listings per process; a long-lived worker would not see a
    partition that landed since its last listing, so every caller starts fresh.
    """
    fs, path = fsspec.core.url_to_fs(url)
    fs.invalidate_cache()
    return fs, path


def endpoint_of(url: str) -> str:
    """Where ``url`` is served from, for error messages (never credentials)."""
    if is_local(url):
        return "the local disk"
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    scheme = url.split("://", 1)[0]
    return f"{scheme} endpoint {endpoint}" if endpoint and scheme in ("s3", "s3a") else f"{scheme} (default endpoint)"


def unreachable(url: str, error: BaseException) -> StorageUnavailableError:
    """A StorageUnavailableError naming the endpoint and the fix.

    Args:
        url: the URL that could not be reached.
        error: the connection failure, named in the message.
    """
    return StorageUnavailableError(
        f"cannot reach {url} at {endpoint_of(url)}: {type(error).__name__}: {error}. Check that the "
        "store is up and that AWS_ENDPOINT_URL / credentials point at it; the step is retried with backoff."
    )


def no_credentials(url: str, error: BaseException | None = None) -> ConfigError:
    """A ConfigError naming ``url`` and where its credentials come from; a retry cannot bring them.

    Args:
        url: the URL whose requests could not be signed.
        error: botocore's error, named in the message when it says more than that none were found.
    """
    said = error is not None and type(error).__name__ != "NoCredentialsError"
    detail = f" ({type(error).__name__}: {error})" if said else ""
    return ConfigError(
        f"no credentials to sign requests to {url} at {endpoint_of(url)}{detail}: set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (a profile in ~/.aws/credentials), run where an instance or pod role "
        "provides them, or give them as fsspec storage options (FSSPEC_S3_KEY and FSSPEC_S3_SECRET)"
    )


# Errors from botocore/aiohttp when the endpoint is down; matched by name so that this
# module does not import them (s3fs is optional for local roots).
_CONNECTION_ERRORS = ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ClientConnectorError")


def is_connection_error(error: BaseException) -> bool:
    """Whether ``error``, or an exception it was raised from, is a failure to connect (botocore's, aiohttp's)."""
    chain: BaseException | None = error
    while chain is not None:
        if isinstance(chain, ConnectionError) or type(chain).__name__ in _CONNECTION_ERRORS:
            return True
        chain = chain.__cause__ or chain.__context__
    return False


@contextmanager
def reaching(url: str) -> Iterator[None]:
    """Turn a connection failure inside the block into one StorageUnavailableError naming ``url``.

    Missing credentials become the ConfigError :func:`check_root` raises for a root: the
    steps would retry botocore's own error, and no retry brings credentials.

    Raises:
        StorageUnavailableError: the store cannot be reached.
        ConfigError: there are no credentials to sign the store's requests with.
    """
    try:
        yield
    except StorageUnavailableError:
        raise
    except Exception as error:
        if (missing := root_access.credentials_error(error)) is not None:
            raise no_credentials(url, missing) from error
        if is_connection_error(error):
            raise unreachable(url, error) from error
        raise


def cache_dir(root: str) -> Path:
    """The local folder that mirrors ``root`` (the root itself when it is local)."""
    if is_local(root):
        return Path(root.removeprefix("file://"))
    base = Path(os.environ.get("KERASFLOW_CACHE") or Path.home() / ".cache" / "kerasflow")
    return base / hashlib.sha256(root.encode()).hexdigest()[:12]


def local_path(root: str, url: str) -> Path:
    """Where ``url`` (inside ``root``) lives in the local mirror.

    Args:
        root: the storage root.
        url: a URL under ``root``, or a local path (returned as it is).
    """
    root, url = root.rstrip("/"), url.rstrip("/")
    if is_local(url):
        return Path(url.removeprefix("file://"))
    if not url.startswith(root + "/"):
        raise ValueError(f"received {url!r}, expected a URL under the storage root {root!r}")
    return cache_dir(root) / url[len(root) + 1 :]


def datasets_url(root: str) -> str:
    """Where the materialized datasets of ``root`` live: ``<root>/datasets``."""
    return join(root, "datasets")


def run_url(root: str, run_id: str) -> str:
    """Where a run keeps its files: ``<root>/runs/<run_id>``.

    Args:
        root: the storage root.
        run_id: the run's id.
    """
    return join(root, "runs", run_id)


def run_dir(root: str, run_id: str) -> Path:
    """The local folder a run writes into (uploaded to ``run_url`` when the root is remote).

    Args:
        root: the storage root.
        run_id: the run's id.
    """
    return local_path(root, run_url(root, run_id))


# A finished training's record, kept until its candidate is registered (tasks/train/state.py).
TRAINED_FILE = "trained.json"


def training_url(root: str, key: str) -> str:
    """Where a training's lease, backups and trained.json live: ``<root>/training/<key>``.

    Args:
        root: the storage root.
        key: what the training is, hashed (``training_key`` of tasks/train/state.py).
    """
    return join(root, "training", key)


def registry_url(root: str) -> str:
    """Where the model registry of ``root`` lives: ``<root>/registry``."""
    return join(root, "registry")


def check_root(root: str) -> None:
    """Refuse a root kerasflow cannot use, before any work, making nothing in it.

    Args:
        root: the storage root, a local folder or any fsspec URL.

    Raises:
        ConfigError: no fsspec filesystem serves the root's scheme (unknown, or its package not installed);
            an S3 root without credentials (found without a request, so an outage is left to the steps'
            retries); a local root that is a file, or a folder this process cannot write.
    """
    try:
        fs, _ = fsspec.core.url_to_fs(root)
    except (ImportError, ValueError) as error:
        raise ConfigError(f"received storage.root={root!r}: {error}; use a local folder or an s3:// URL") from None
    if is_local(root):
        root_access.check_folder(root, Path(root.removeprefix("file://")))
        return
    try:
        lacking = root_access.lacks_credentials(fs)
    except Exception as error:
        if (missing := root_access.credentials_error(error)) is None:
            raise
        raise no_credentials(root, missing) from error
    if lacking:
        raise no_credentials(root)


def upload_dir(local: Path, url: str) -> None:
    """Copy every file under ``local`` to the same relative paths under ``url``, concurrently.

    Args:
        local: the local folder.
        url: the destination folder, local or any fsspec URL; a local one that is ``local`` itself is left as it is.

    Raises:
        StorageUnavailableError: the store cannot be reached.
    """
    if is_local(url):
        target = Path(url.removeprefix("file://"))
        if target.resolve() != local.resolve():
            shutil.copytree(local, target, dirs_exist_ok=True)
        return
    files = sorted(p for p in local.rglob("*") if p.is_file())
    if not files:
        return
    fs, path = fsspec.core.url_to_fs(url)
    with reaching(url):
        fs.put([os.fspath(p) for p in files], [f"{path}/{p.relative_to(local).as_posix()}" for p in files])


def download_dir(url: str, local: Path) -> Path:
    """A complete local copy of the folder ``url``, downloaded once and concurrently.

    The files land in a private folder renamed into place, so a copy interrupted half-way
    is never taken for a complete one and concurrent readers do not collide.

    Args:
        url: the folder to copy, any fsspec URL.
        local: where the copy goes; a folder already there is taken as a complete copy and returned as it is.

    Returns:
        ``local``.

    Raises:
        FileNotFoundError: ``url`` holds no files.
        StorageUnavailableError: the store cannot be reached.
    """
    if local.exists():
        return local
    fs, path = filesystem(url)
    with reaching(url):
        keys = [k for k in fs.find(path) if not k.endswith("/")]
    if not keys:
        raise FileNotFoundError(f"{url} holds no files")
    staging = local.with_name(f".partial-{local.name}-{uuid.uuid4().hex[:8]}")
    targets = [staging / k[len(path) :].lstrip("/") for k in keys]
    for target in {t.parent for t in targets}:
        target.mkdir(parents=True, exist_ok=True)
    try:
        with reaching(url):
            fs.get(keys, [os.fspath(t) for t in targets])
        try:
            os.rename(staging, local)
        except OSError:
            if not local.exists():
                raise  # not a concurrent reader's copy: a real failure
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return local


def fetch_file(root: str, url: str) -> Path:
    """A local copy of the file ``url`` under ``root`` (the file itself when local).

    Args:
        root: the storage root.
        url: a file under ``root``, or a local path (returned as it is).

    Returns:
        The local path; a remote file is downloaded into the root's cache once and reused after.

    Raises:
        StorageUnavailableError: the store cannot be reached.
    """
    target = local_path(root, url)
    if is_local(url) or target.exists():
        return target
    fs, path = filesystem(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".partial-{uuid.uuid4().hex[:8]}-{target.name}")
    try:
        with reaching(url):
            fs.get_file(path, os.fspath(partial))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def write_file(url: str, body: bytes) -> None:
    """Write the small file ``url`` whole, making its folder when needed.

    Args:
        url: the file, any fsspec URL.
        body: its whole content.

    Raises:
        StorageUnavailableError: the store cannot be reached.
    """
    fs, path = filesystem(url)
    with reaching(url):
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        fs.pipe_file(path, body)


def read_file(url: str) -> bytes | None:
    """The bytes of the small file ``url``; None when there is no such file.

    Raises:
        StorageUnavailableError: the store cannot be reached.
    """
    fs, path = filesystem(url)
    with reaching(url):
        try:
            return fs.cat_file(path)
        except FileNotFoundError:
            return None


def remove_file(url: str) -> None:
    """Remove the file ``url`` if it exists.

    Raises:
        StorageUnavailableError: the store cannot be reached.
    """
    fs, path = filesystem(url)
    with reaching(url):
        if fs.exists(path):
            fs.rm_file(path)
