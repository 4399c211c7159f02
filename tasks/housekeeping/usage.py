"""What a storage root still uses, and who: nothing a sweep removes is in this.

:func:`in_use` reads the datasets and run folders of every registered version (rejected
ones included), those of a training that finished but is not registered yet (its
``trained.json``), the run folder a live training lease names, and the datasets runs in
progress hold (tasks/storage/holds.py). A record of these that cannot be read raises
:class:`UnreadableRecord`, so a sweep stops before it removes anything. The fresh
listings and reads the sweeps share are here too.
"""

from dataclasses import dataclass, field

from kerasflow.models.registry import ModelRegistry
from kerasflow.tasks import storage
from kerasflow.tasks.failures import DeterministicFailure
from kerasflow.tasks.refs import TrainedModel
from kerasflow.tasks.storage.holds import live_holds
from kerasflow.tasks.storage.lease import TrainingLease

__all__ = ["InUse", "UnreadableRecord", "in_use"]


class UnreadableRecord(DeterministicFailure, ValueError):
    """A record that says what is in use cannot be read: the sweep removes nothing."""


@dataclass(frozen=True)
class InUse:
    """What the root's registry, trainings and runs in progress still use, each with who uses it.

    ``dead_holds``: hold records of runs that are gone (tasks/storage/holds.py), removed by the sweep.

    Args:
        fingerprints: dataset fingerprint -> who uses it (a version, a training, a run's hold).
        runs: run id -> who uses its run folder.
        live_trainings: the training keys whose lease is live.
        dead_holds: the URLs of hold records of runs that are gone.
    """

    fingerprints: dict[str, str]
    runs: dict[str, str]
    live_trainings: list[str]
    dead_holds: list[str] = field(default_factory=list)


def in_use(root: str) -> InUse:
    """Datasets and run folders that registered versions, unregistered trainings and live leases use.

    Args:
        root: the storage root, any fsspec URL.

    Raises:
        UnreadableRecord: a version's metadata, a finished training's record or a run's hold cannot be read.
    """
    fingerprints: dict[str, str] = {}
    runs: dict[str, str] = {}
    registry = ModelRegistry(storage.registry_url(root))
    try:
        versions = {name: registry.versions(name) for name in registry.names()}
    except ValueError as error:  # invalid JSON or text: the error names the file
        raise unreadable_record("a version's metadata in the registry", error) from None
    for name, found in versions.items():
        for metadata in found:
            user = f"{name} v{metadata['version']} ({metadata.get('status')})"
            if fingerprint := metadata.get("dataset", {}).get("fingerprint"):
                fingerprints.setdefault(fingerprint, user)
            if run_id := metadata.get("run_id"):
                runs.setdefault(run_id, user)
    live = []
    fs, training = storage.filesystem(storage.join(root, "training"))
    for key in listed_names(fs, training):
        state_url = storage.training_url(root, key)
        trained_path = f"{training}/{key}/{storage.TRAINED_FILE}"
        trained = read_record(fs, trained_path)
        if trained is not None:
            try:
                record = TrainedModel.model_validate_json(trained)
            except ValueError as error:
                raise unreadable_record(fs.unstrip_protocol(trained_path), error) from None
            user = f"training {key}, finished and not registered yet"
            fingerprints.setdefault(record.dataset_fingerprint, user)
            runs.setdefault(record.run_id, user)
        holder = TrainingLease(state_url, seconds=1.0).live_holder()
        if holder is not None:
            live.append(key)
            if holder.get("flow_run_id"):
                runs.setdefault(str(holder["flow_run_id"]), f"training {key}, in progress (live lease)")
    try:
        held = live_holds(root)
    except ValueError as error:
        raise unreadable_record("a run's hold on datasets", error) from None
    for fingerprint, who in held.by_fingerprint.items():
        fingerprints.setdefault(fingerprint, who)
    return InUse(fingerprints=fingerprints, runs=runs, live_trainings=sorted(live), dead_holds=held.dead)


def listed_names(fs, path: str) -> list[str]:
    """The entries directly under ``path``, by name, from a fresh listing ([] when absent)."""
    fs.invalidate_cache(path)
    try:
        return sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(path, detail=False))
    except FileNotFoundError:
        return []


def read_record(fs, path: str) -> bytes | None:
    """The bytes of the record at ``path``; None when it is absent."""
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        return None


def unreadable_record(what: str, error: Exception) -> UnreadableRecord:
    """The error for a record that cannot be read: what is in use is unknown, so nothing is removed."""
    return UnreadableRecord(
        f"{what} cannot be read ({first_line(error)}), so what is in use is unknown and nothing was removed; "
        "repair or remove that file, then run the command again"
    )


def first_line(error: Exception) -> str:
    """The first line of ``error``'s message, or its type's name when it has none."""
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
