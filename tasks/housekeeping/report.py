"""What a sweep reports: every folder it looked at, removed or kept, with its bytes and why.

A sweep keeps or removes a folder one way only, recorded in its :class:`Sweep` first;
with ``dry_run`` the record is all that happens.
"""

from dataclasses import dataclass, field
from datetime import timedelta

__all__ = ["Entry", "Sweep"]


@dataclass(frozen=True)
class Entry:
    """One folder a sweep looked at: its URL, its bytes, and why it goes or stays.

    Args:
        url: the folder's URL.
        bytes: the bytes of every file under it.
        reason: why it goes or stays, one line for the command's report.
    """

    url: str
    bytes: int
    reason: str


@dataclass
class Sweep:
    """What one sweep removed (or, with ``dry_run``, would remove) and what it kept.

    Args:
        dry_run: nothing is removed; ``removed`` lists what would be.
        removed: the folders removed (or that would be).
        kept: the folders looked at and kept.
    """

    dry_run: bool
    removed: list[Entry] = field(default_factory=list)
    kept: list[Entry] = field(default_factory=list)

    @property
    def bytes_freed(self) -> int:
        return sum(entry.bytes for entry in self.removed)


def record_kept(fs, path: str, size: int, reason: str, sweep: Sweep) -> None:
    """Record ``path`` as kept, with its size and the reason."""
    sweep.kept.append(Entry(fs.unstrip_protocol(path), size, reason))


def record_removed(fs, paths: list[str], size: int, reason: str, sweep: Sweep) -> None:
    """Record the last of ``paths`` as removed and, unless dry, remove them in order."""
    sweep.removed.append(Entry(fs.unstrip_protocol(paths[-1]), size, reason))
    if sweep.dry_run:
        return
    for path in paths:
        if fs.exists(path):
            fs.rm(path, recursive=True)


def ago(age: timedelta) -> str:
    """``age`` as a person reads it: days, hours, minutes or seconds."""
    seconds = max(age.total_seconds(), 0.0)
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.0f} minutes"
