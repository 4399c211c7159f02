"""How big a folder is and when it last changed, on any fsspec filesystem.

Object stores have no folder times: a folder's age is that of its newest object, which
is also what a writer still at work keeps fresh. Local disks report ``mtime`` (seconds),
S3 ``LastModified`` (a datetime); both are read here, once.
"""

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class FolderUsage:
    """The files under one folder: how many, their bytes, the newest change (None when empty).

    Args:
        files: files under the folder, at any depth.
        bytes: their sizes added up.
        newest: the latest change among them, in UTC; None when there is none or no file has a time.
    """

    files: int
    bytes: int
    newest: datetime | None


def modified_at(info: dict) -> datetime | None:
    """When one fsspec ``info`` entry last changed, in UTC, if the filesystem says.

    Args:
        info: one entry of an fsspec listing with details: ``LastModified`` (a datetime, naive read as
            UTC), ``mtime`` or ``created`` (seconds since the epoch).
    """
    stamp = info.get("LastModified") or info.get("mtime") or info.get("created")
    if isinstance(stamp, (int, float)):
        return datetime.fromtimestamp(stamp, UTC)
    if isinstance(stamp, datetime):
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    return None


def folder_usage(fs, path: str) -> FolderUsage:
    """Count, size and newest change of every file under ``path`` (a fresh listing).

    Args:
        fs: the fsspec filesystem.
        path: the folder's path on ``fs``, without protocol; a missing folder counts as empty.
    """
    fs.invalidate_cache(path)
    try:
        found = fs.find(path, detail=True)
    except FileNotFoundError:
        found = {}
    entries = [info for info in found.values() if info.get("type", "file") == "file"]
    stamps = [stamp for stamp in map(modified_at, entries) if stamp is not None]
    return FolderUsage(
        files=len(entries),
        bytes=sum(int(info.get("size") or 0) for info in entries),
        newest=max(stamps, default=None),
    )
