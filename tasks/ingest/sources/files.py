"""Files on any fsspec URL, for every source that reads files: list, name their content, fetch.

Listing is cheap and names the content: the sorted (key, size, ETag or mtime) of every
file (:func:`identity`), so one new file is a new fingerprint and the files are
downloaded only when that fingerprint has not been materialized yet. Downloads are one
concurrent s3fs call. Tables (tables/tabular.py), image folders (images.py) and prepared
TFDS folders (tfds_source.py) list and fetch through this module, never through each other.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec

from kerasflow.tasks import storage
from kerasflow.tasks.failures import DataValidationError

__all__ = [
    "SUFFIXES",
    "TableFile",
    "download_files",
    "from_identity",
    "identity",
    "is_tfds_dir",
    "list_files",
    "local_copies",
]


SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz")


@dataclass(frozen=True)
class TableFile:
    """One file of a source, with what identifies its content.

    Args:
        url: the file's URL (a local path for a local file).
        path: its path within its filesystem.
        size: its size in bytes.
        version: its ETag on an object store, its mtime on a disk.
    """
    url: str
    path: str  # path within its filesystem
    size: int
    version: str  # ETag on object stores, mtime on disks


def list_files(url: str, *, suffixes: tuple[str, ...] | None = SUFFIXES) -> list[TableFile]:
    """The data files ``url`` names, sorted; each with what identifies its content.

    ``suffixes``: in a folder, the files to list (None: every file) and the only ones accepted.

    Args:
        url: a file, a folder or a glob, any fsspec URL.
        suffixes: the file name endings listed in a folder and accepted anywhere; None for every file.

    Raises:
        DataValidationError: nothing matches ``url``, or a file matched does not end in one of ``suffixes``.
    """
    fs, pattern = storage.filesystem(url)
    try:
        with storage.reaching(url):
            if any(ch in pattern for ch in "*?["):
                infos = fs.glob(pattern, detail=True)
            elif fs.isdir(pattern):
                found = fs.find(pattern, detail=True)
                infos = {p: i for p, i in found.items() if not suffixes or p.endswith(suffixes)}
            else:
                infos = {pattern: fs.info(pattern)}
    except FileNotFoundError:
        infos = {}
    files = []
    for path, info in sorted(infos.items()):
        if info.get("type") == "directory":
            continue
        version = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or ""
        files.append(
            TableFile(
                url=path if storage.is_local(url) else fs.unstrip_protocol(path),
                path=path,
                size=int(info.get("size") or 0),
                version=str(version),
            )
        )
    if not files:
        raise DataValidationError(
            f"{url}: check 'files exist' failed: no file matches; point data.url at a CSV or Parquet "
            "file, a folder of them, or a glob such as s3://bucket/events/date=*/part-*.parquet"
        )
    unknown = [f.url for f in files if suffixes and not f.url.endswith(suffixes)]
    if unknown:
        raise DataValidationError(
            f"{unknown[0]}: check 'format' failed: {len(unknown)} file(s) are neither .parquet nor .csv; "
            "narrow data.url to the data files"
        )
    return files


def identity(files: list[TableFile]) -> list[list[Any]]:
    """The (URL, size, version) rows of ``files``: their part of a source's identity."""
    return [[f.url, f.size, f.version] for f in files]


def from_identity(rows: list[list[Any]]) -> list[TableFile]:
    """The files an identity names (its (url, size, version) rows), as :func:`list_files` gave them."""
    return [TableFile(url=url, path=fsspec.core.url_to_fs(url)[1], size=size, version=v) for url, size, v in rows]


@contextlib.contextmanager
def local_copies(files: list[TableFile], downloaded: dict[str, Path] | None = None) -> Iterator[list[Path]]:
    """Local paths of ``files``: ``downloaded`` (copies fetched beforehand, by URL), else fetched now, removed after.

    Args:
        files: the files, as :func:`list_files` gives them.
        downloaded: file URL -> a local copy fetched beforehand; used when it has every file.
    """
    if downloaded is not None and all(f.url in downloaded for f in files):
        yield [downloaded[f.url] for f in files]
        return
    with tempfile.TemporaryDirectory(prefix="kerasflow-files-") as tmp:
        yield download_files(files, Path(tmp))


def download_files(files: list[TableFile], folder: Path) -> list[Path]:
    """Local paths of ``files``: remote ones fetched into ``folder`` by one concurrent get.

    Args:
        files: the files, as :func:`list_files` gives them.
        folder: a local folder the remote files are fetched into.
    """
    remote = [f for f in files if not storage.is_local(f.url)]
    if not remote:
        return [Path(f.path) for f in files]
    fs, _ = storage.filesystem(remote[0].url)
    targets = [folder / f"{i:06d}-{Path(f.path).name}" for i, f in enumerate(files)]
    with storage.reaching(files[0].url):
        fs.get([f.path for f in files], [os.fspath(t) for t in targets])
    return targets


def is_tfds_dir(url: str) -> bool:
    """Whether ``url`` is a prepared TFDS dataset folder (``<name>/<version>`` with its info)."""
    if any(ch in url for ch in "*?["):
        return False
    fs, path = storage.filesystem(url)
    with storage.reaching(url):
        return fs.exists(f"{path.rstrip('/')}/dataset_info.json")
