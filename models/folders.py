"""How big a folder is and when it last changed, on any fsspec filesystem.

Object stores have no folder times: a folder's age is that of its newest object, which
is also what a writer still at work keeps fresh. Local disks report ``mtime`` (seconds),
S3 ``LastModified`` (a datetime); both are read here, once.
"""

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class FolderUsage:
    """The files under one folder: how many, their bytes, the newest change (None when empty)."""

    files: int
    bytes: int
    newest: datetime | None


def modified_at(info: dict) -> datetime | None:
    """When one fsspec ``info`` entry last changed, in UTC, if the filesystem says."""
    stamp = info.get("LastModified") or info.get("mtime") or info.get("created")
    if isinstance(stamp, (int, float)):
        return datetime.fromtimestamp(stamp, UTC)
    if isinstance(stamp, datetime):
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    return None


def folder_usage(fs, path: str) -> FolderUsage:
    """Count, size and newest change of every file under ``path`` (a fresh listing)."""
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
