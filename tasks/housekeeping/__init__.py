"""What a long-running storage root no longer needs: dead dataset attempts, unused datasets, old runs.

Two sweeps, each a plain function that returns a :class:`Sweep` (what was removed, or
with ``dry_run`` would be, what was kept and why, and the bytes freed):

- :func:`sweep_datasets`: attempt folders that no ``ref.json`` names (their writer died,
  or is still writing: only those unchanged for ``grace`` go), and published datasets
  that nothing uses, published longer than ``keep`` ago;
- :func:`sweep_runs`: run folders unchanged for ``retention``.

What is in use is never removed, whatever its age (:func:`in_use`): the dataset and the
run folder of every registered version, rejected ones included (their metadata points
there); those of a training that finished but is not registered yet (its
``trained.json``: the next run registers from it); the run folder a live training lease
names; the datasets a run in progress holds from the moment ingest finds them
(tasks/storage/holds.py). Unused datasets are also kept while any training holds a live lease. The datasets of the files
of a table stored per file stay as long as the table does. A published dataset
loses its ``ref.json`` first, so a run starting meanwhile materializes it again instead
of reading a half-removed one; then the holds are read again, and a dataset a run came
to hold meanwhile gets its ``ref.json`` back and stays. Ages are those of a folder's newest object, which a
writer still at work keeps fresh (models/folders.py).

A remote root also has a local mirror on each machine that trained or ingested
(storage.cache_dir): its copies of removed or never-published datasets and of old runs
go by the same rules. A record the sweep needs in order to know what is in use (a
version's metadata, a finished training's ``trained.json``) that cannot be read stops
the sweep before it removes anything (:class:`UnreadableRecord`); a dataset whose
``ref.json`` cannot be read is kept whole, since which attempt it publishes is unknown.

What is in use (tasks/housekeeping/usage.py) and what a sweep reports
(tasks/housekeeping/report.py) are modules of their own; others import their names from
here, as they import the sweeps.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kerasflow.models.exclusive import create_exclusive
from kerasflow.models.folders import folder_usage, modified_at
from kerasflow.tasks import storage
from kerasflow.tasks.data.materialize import REF_FILE, find_materialized
from kerasflow.tasks.housekeeping.report import Entry, Sweep, ago, record_kept, record_removed
from kerasflow.tasks.housekeeping.usage import (
    InUse,
    UnreadableRecord,
    first_line,
    in_use,
    listed_names,
    read_record,
    unreadable_record,
)
from kerasflow.tasks.refs import DatasetRef
from kerasflow.tasks.storage.holds import live_holds

__all__ = ["Entry", "InUse", "Sweep", "UnreadableRecord", "in_use", "sweep_datasets", "sweep_runs"]


def sweep_datasets(
    root: str, *, grace: timedelta, keep: timedelta, dry_run: bool = False, now: datetime | None = None
) -> Sweep:
    """Remove dead attempt folders (unchanged for ``grace``) and unused datasets published before ``keep``.

    Args:
        root: the storage root, any fsspec URL.
        grace: how long an unpublished attempt folder must be unchanged before it is removed.
        keep: how long ago an unused dataset must have been published before it is removed.
        dry_run: remove nothing; report what would be removed.
        now: the time ages are measured at (timezone-aware); None for now.

    Raises:
        UnreadableRecord: a record of what is in use cannot be read (then nothing was removed), or the holds
            cannot be read again once unused datasets lost their ``ref.json`` (those datasets are kept).
    """
    now = now or datetime.now(UTC)
    sweep = Sweep(dry_run=dry_run)
    used = in_use(root)
    fs, base = storage.filesystem(storage.datasets_url(root))
    refs: dict[str, DatasetRef | ValueError | None] = {}
    for fingerprint in listed_names(fs, base):
        try:
            refs[fingerprint] = find_materialized(root, fingerprint)
        except ValueError as error:
            refs[fingerprint] = error
    ages = {
        fingerprint: now - (modified_at(fs.info(f"{base}/{fingerprint}/{REF_FILE}")) or now)
        for fingerprint, ref in refs.items()
        if isinstance(ref, DatasetRef)
    }

    def own_reason(fingerprint: str) -> str | None:
        """Why a published dataset stays for its own sake, if it does."""
        if fingerprint in used.fingerprints:
            return f"used by {used.fingerprints[fingerprint]}"
        if used.live_trainings:
            return f"unused, but training {used.live_trainings[0]} is in progress"
        if ages[fingerprint] < keep:
            return f"unused, published {ago(ages[fingerprint])} ago"
        return None

    # A table stored per file (tasks/ingest/partitions.py) reads its files' datasets, and a
    # large file's rows are parts of their own (tasks/ingest/file_parts.py): while the table
    # stays, they do, and so does the large file's own dataset, whatever their own age.
    reasons = {fingerprint: own_reason(fingerprint) for fingerprint in ages}
    for fingerprint, ref in refs.items():
        if isinstance(ref, DatasetRef) and reasons[fingerprint] is not None:
            for part in ref.parts:
                for held in (part.fingerprint, part.file_fingerprint):
                    if held in reasons and reasons[held] is None:
                        reasons[held] = f"a file of dataset {fingerprint}, which stays"
    kept_attempts: set[str] = set()  # <fingerprint>/<attempt> of every dataset left published
    unused: list[_Unused] = []
    for fingerprint, ref in refs.items():
        folder = f"{base}/{fingerprint}"
        if isinstance(ref, ValueError):
            reason = f"{REF_FILE} cannot be read ({first_line(ref)}): left whole; repair or remove it by hand"
            record_kept(fs, folder, folder_usage(fs, folder).bytes, reason, sweep)
            kept_attempts.update(f"{fingerprint}/{name}" for name in listed_names(fs, folder))
            continue
        # A table stored per file publishes no attempt of its own: its ref.json is all it has.
        published = ref.builder_path.split("/", 1)[0] if ref is not None and ref.builder_path else None
        for name in listed_names(fs, folder):
            if name in (REF_FILE, published):
                continue
            usage = folder_usage(fs, f"{folder}/{name}")
            age = now - (usage.newest or now)
            if age >= grace:
                record_removed(
                    fs, [f"{folder}/{name}"], usage.bytes, f"unpublished attempt, unchanged for {ago(age)}", sweep
                )
            else:
                record_kept(fs, f"{folder}/{name}", usage.bytes, f"unpublished attempt changed {ago(age)} ago", sweep)
        if ref is None:
            if not dry_run and not listed_names(fs, folder) and fs.exists(folder):
                fs.rm(folder, recursive=True)  # the empty folder a local disk keeps
            continue
        size = folder_usage(fs, folder).bytes
        if reasons[fingerprint] is not None:
            if published is not None:
                kept_attempts.add(f"{fingerprint}/{published}")
            record_kept(fs, folder, size, reasons[fingerprint], sweep)
        else:
            reason = f"no version or training uses it, published {ago(ages[fingerprint])} ago"
            unused.append(_Unused(fingerprint, folder, published, size, reason))
    for entry in _remove_unless_held(root, fs, unused, refs, sweep):
        if entry.published is not None:
            kept_attempts.add(f"{entry.fingerprint}/{entry.published}")
    if not dry_run:
        for record in used.dead_holds:
            storage.remove_file(record)
    if not storage.is_local(root):
        _sweep_mirrored_datasets(root, kept_attempts, grace=grace, now=now, sweep=sweep)
    return sweep


@dataclass(frozen=True)
class _Unused:
    """A published dataset nothing used when the sweep began."""

    fingerprint: str
    folder: str
    published: str | None
    bytes: int
    reason: str


def _remove_unless_held(
    root: str, fs, unused: list[_Unused], refs: dict[str, DatasetRef | ValueError | None], sweep: Sweep
) -> list[_Unused]:
    """Unpublish ``unused``, then remove each one no run has come to hold meanwhile; return those kept.

    Every ``ref.json`` goes first, then the holds are read again (tasks/storage/holds.py: a run
    holds before it reads ``ref.json``, so one that found it is seen here). A dataset
    held now, directly or as a part of a held table, gets its ``ref.json`` back. Only the
    attempt that was published is removed, never the whole folder: a run that found the
    ``ref.json`` gone may already be storing a new attempt there.
    """
    if sweep.dry_run:
        for entry in unused:
            sweep.removed.append(Entry(fs.unstrip_protocol(entry.folder), entry.bytes, entry.reason))
        return []
    bodies = {}
    for entry in unused:
        marker = f"{entry.folder}/{REF_FILE}"
        body = read_record(fs, marker)
        if body is not None:
            bodies[entry.fingerprint] = body
            fs.rm_file(marker)
    try:
        holds = live_holds(root).by_fingerprint
    except ValueError as error:
        holds = {}
        unreadable = unreadable_record("a run's hold on datasets", error)
    else:
        unreadable = None
    held = dict(holds)
    for fingerprint, who in holds.items():  # a held table holds its files' datasets
        ref = refs.get(fingerprint)
        if not isinstance(ref, DatasetRef):
            ref = find_materialized(root, fingerprint)
        for part in ref.parts if ref is not None else []:
            for part_fingerprint in (part.fingerprint, part.file_fingerprint):
                if part_fingerprint:
                    held.setdefault(part_fingerprint, f"a file of dataset {fingerprint}, held by {who}")
    kept = []
    for entry in unused:
        if unreadable is not None or entry.fingerprint in held:
            if entry.fingerprint in bodies:
                create_exclusive(fs, f"{entry.folder}/{REF_FILE}", bodies[entry.fingerprint])
            reason = held.get(entry.fingerprint) or str(unreadable)
            record_kept(fs, entry.folder, entry.bytes, f"used by {reason}", sweep)
            kept.append(entry)
            continue
        sweep.removed.append(Entry(fs.unstrip_protocol(entry.folder), entry.bytes, entry.reason))
        if entry.published is not None and fs.exists(f"{entry.folder}/{entry.published}"):
            fs.rm(f"{entry.folder}/{entry.published}", recursive=True)
        if not listed_names(fs, entry.folder) and fs.exists(entry.folder):
            fs.rm(entry.folder, recursive=True)  # the empty folder a local disk keeps
    if unreadable is not None:
        raise unreadable
    return kept


def _sweep_mirrored_datasets(root: str, kept: set[str], *, grace: timedelta, now: datetime, sweep: Sweep) -> None:
    """This machine's copies of a remote root's datasets: only those of datasets left published stay.

    An attempt folder here is a published dataset's download, or the staging of an
    ingest (this one's, or a killed one's); staging still being written is newer than
    ``grace``.
    """
    fs, base = storage.filesystem(str(storage.cache_dir(root) / "datasets"))
    for fingerprint in listed_names(fs, base):
        folder = f"{base}/{fingerprint}"
        for name in listed_names(fs, folder):
            if f"{fingerprint}/{name}" in kept:
                continue
            usage = folder_usage(fs, f"{folder}/{name}")
            age = now - (usage.newest or now)
            if age >= grace:
                record_removed(
                    fs, [f"{folder}/{name}"], usage.bytes, "local copy of a dataset no longer published", sweep
                )
            else:
                record_kept(fs, f"{folder}/{name}", usage.bytes, f"local copy changed {ago(age)} ago", sweep)
        if not sweep.dry_run and not listed_names(fs, folder):
            fs.rm(folder, recursive=True)


def sweep_runs(root: str, *, retention: timedelta, dry_run: bool = False, now: datetime | None = None) -> Sweep:
    """Remove run folders unchanged for ``retention`` that no version or training uses.

    Args:
        root: the storage root, any fsspec URL.
        retention: how long a run folder must be unchanged before it is removed.
        dry_run: remove nothing; report what would be removed.
        now: the time ages are measured at (timezone-aware); None for now.

    Raises:
        UnreadableRecord: a record of what is in use cannot be read; nothing was removed.
    """
    now = now or datetime.now(UTC)
    sweep = Sweep(dry_run=dry_run)
    used = in_use(root)
    fs, base = storage.filesystem(storage.join(root, "runs"))
    for run_id in listed_names(fs, base):
        folder = f"{base}/{run_id}"
        usage = folder_usage(fs, folder)
        age = now - (usage.newest or now)
        if run_id in used.runs:
            record_kept(fs, folder, usage.bytes, f"used by {used.runs[run_id]}", sweep)
        elif age < retention:
            record_kept(fs, folder, usage.bytes, f"changed {ago(age)} ago, within the retention", sweep)
        else:
            record_removed(fs, [folder], usage.bytes, f"finished, unchanged for {ago(age)}", sweep)
    if not storage.is_local(root):  # this machine's copies of run folders: the same rule, by their own age
        fs, base = storage.filesystem(str(storage.cache_dir(root) / "runs"))
        for run_id in listed_names(fs, base):
            folder = f"{base}/{run_id}"
            usage = folder_usage(fs, folder)
            age = now - (usage.newest or now)
            if run_id not in used.runs and age >= retention:
                record_removed(
                    fs, [folder], usage.bytes, f"local copy of a finished run, unchanged for {ago(age)}", sweep
                )
    return sweep
