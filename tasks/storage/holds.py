"""What a run reads, held against housekeeping from the moment ingest finds it until the run ends.

``kerasflow datasets gc`` removes datasets nothing uses. The registry names a run's
dataset only once the run registers, and a training lease only while it trains; from
ingest to training (validate, drift, a wait for a GPU), and while a split is scored,
the dataset is held here instead::

    <root>/holds/<run>-<id>.json    {"run", "fingerprints", host, pid, expires_at, ...}

One record per process and run, written whole by its holder only, its expiry pushed
forward by a heartbeat (models/liveness.py). kerasflow's flows remove it when they end
(:func:`release`); a team's flow that composes the steps need not: the heartbeat ends
the hold once it finds the flow run in a final state (within ``HOLD_SECONDS / 3``). A
killed process's record stops counting at its expiry, at once on its own host.

The order that makes it safe: a run writes its hold, *then* reads the dataset's
``ref.json``; the sweep removes ``ref.json``, *then* reads the holds, and puts
``ref.json`` back for a dataset held meanwhile. Whichever comes second sees the other's
write, so a dataset is never removed from under a run that found it, and a run that
finds ``ref.json`` gone stores the dataset again.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from kerasflow.models.exclusive import replace_whole
from kerasflow.models.liveness import Heartbeat, holder_fields, is_live
from kerasflow.tasks import storage

__all__ = ["HOLD_SECONDS", "Holds", "hold", "live_holds", "release", "released_at_end", "scope"]

# A hold is renewed every third of this; a killed holder on another host stops counting after it.
HOLD_SECONDS = 300.0


def holds_url(root: str) -> str:
    """Where the hold records of ``root`` live: ``<root>/holds``."""
    return storage.join(root, "holds")


@dataclass
class _Holder:
    url: str
    run: str
    root: str
    fingerprints: set[str] = field(default_factory=set)
    heartbeat: Heartbeat | None = None
    flow_run_id: str | None = None  # the flow run whose end ends the hold, when it is one
    api_url: str | None = None  # where to read that flow run's state

    def write(self) -> None:
        fs, path = storage.filesystem(self.url)
        body = {"run": self.run, "fingerprints": sorted(self.fingerprints), **holder_fields(HOLD_SECONDS)}
        with storage.reaching(self.url):
            fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            replace_whole(fs, path, json.dumps(body, indent=2).encode())


_HOLDERS: dict[tuple[str, str], _Holder] = {}
_LOCK = threading.Lock()


# The holder of a scope (:func:`scope`) that hold() calls inside it use instead of the run's.
_SCOPE: contextvars.ContextVar[str | None] = contextvars.ContextVar("kerasflow_hold_scope", default=None)


def current_run() -> str:
    """The holder hold() uses by default: the innermost :func:`scope`, else the flow run, else this process."""
    scoped = _SCOPE.get()
    return scoped if scoped is not None else _run_id()


@contextlib.contextmanager
def scope(root: str) -> Iterator[None]:
    """Hold what is stored inside the block until the block ends, not the run.

    For work that may run in a long-lived worker (a file stored on a Dask worker): the
    datasets it publishes are held until the dataset naming them is published and held
    by the run itself.

    Args:
        root: the storage root whose datasets the block holds.
    """
    holder = f"{current_run()}.{uuid.uuid4().hex[:8]}"
    token = _SCOPE.set(holder)
    try:
        yield
    finally:
        _SCOPE.reset(token)
        release(root, run=holder)


def hold(root: str, fingerprints: Iterable[str], *, run: str | None = None) -> None:
    """Hold the datasets ``fingerprints`` under ``root`` for ``run`` (default: the current flow run).

    Call it *before* reading a dataset's ``ref.json``. The hold lasts until :func:`release`
    for the run, until its flow run is found in a final state, or until this process ends.

    Args:
        root: the storage root.
        fingerprints: the datasets the run is about to read.
        run: the run holding them; the current flow run by default.
    """
    wanted = {fingerprint for fingerprint in fingerprints if fingerprint}
    if not wanted:
        return
    run = run or current_run()
    with _LOCK:
        holder = _HOLDERS.get((root, run))
        if holder is None:
            url = storage.join(holds_url(root), f"{run}-{uuid.uuid4().hex[:8]}.json")
            holder = _Holder(url=url, run=run, root=root)
            if run == _run_id() and _flow_run_id() is not None:
                holder.flow_run_id, holder.api_url = _flow_run_id(), _api_url()
            _HOLDERS[(root, run)] = holder
        if wanted <= holder.fingerprints and holder.heartbeat is not None:
            return
        holder.fingerprints |= wanted
        holder.write()
        if holder.heartbeat is None:
            holder.heartbeat = Heartbeat(
                lambda: _renew(holder), interval=HOLD_SECONDS / 3, name=f"kerasflow-hold-{run}"
            ).start()


def _renew(holder: _Holder) -> None:
    """Push the hold's expiry forward, or end it once its flow run has ended (a team's flow never releases)."""
    if holder.flow_run_id is not None and holder.api_url and _flow_run_ended(holder.flow_run_id, holder.api_url):
        release(holder.root, run=holder.run)
        raise StopIteration
    with _LOCK:  # the set of fingerprints may grow meanwhile
        holder.write()


def _flow_run_ended(flow_run_id: str, api_url: str) -> bool:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    try:
        with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
            state = client.read_flow_run(flow_run_id).state
    except Exception:  # noqa: BLE001 - the API out of reach: hold on, it costs a dataset's life, not data
        return False
    return state is not None and state.is_final()


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    return str(flow_run.id) if flow_run.id else None


def _api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def _run_id() -> str:
    return _flow_run_id() or f"process-{os.getpid()}"


@contextlib.contextmanager
def released_at_end(root: str) -> Iterator[None]:
    """Let go of what the current run holds under ``root`` when the block ends, however it ends."""
    try:
        yield
    finally:
        release(root)


def release(root: str, *, run: str | None = None) -> None:
    """End ``run``'s hold on the datasets under ``root`` (nothing when it holds none).

    Args:
        root: the storage root.
        run: the holder whose hold ends; by default the current one (:func:`current_run`).
    """
    run = run or current_run()
    with _LOCK:
        holder = _HOLDERS.pop((root, run), None)
    if holder is None:
        return
    if holder.heartbeat is not None:
        holder.heartbeat.stop()
    storage.remove_file(holder.url)


@dataclass(frozen=True)
class Holds:
    """The live holds on a root's datasets, and the records of holders that are gone.

    Args:
        by_fingerprint: dataset fingerprint -> who holds it (run, host and pid).
        dead: URLs of the records whose holder is gone (expired, released, or its process ended).
    """

    by_fingerprint: dict[str, str]
    dead: list[str]


def live_holds(root: str) -> Holds:
    """Every live hold under ``root`` (fingerprint -> who holds it), from a fresh listing.

    Raises:
        ValueError: a hold record cannot be read (the sweep removes nothing then).
    """
    fs, base = storage.filesystem(holds_url(root))
    with storage.reaching(root):
        try:
            names = sorted(fs.ls(base, detail=False))
        except FileNotFoundError:
            return Holds(by_fingerprint={}, dead=[])
        held: dict[str, str] = {}
        dead = []
        for path in names:
            if not path.endswith(".json"):
                continue
            try:
                record = json.loads(fs.cat_file(path))
            except FileNotFoundError:
                continue  # released between the listing and the read
            except ValueError as error:
                raise ValueError(f"{fs.unstrip_protocol(path)} is not valid JSON: {error}") from None
            if not is_live(record):
                dead.append(fs.unstrip_protocol(path))
                continue
            who = f"run {record.get('run')} on {record.get('host')} (pid {record.get('pid')}), in progress"
            for fingerprint in record.get("fingerprints", []):
                held.setdefault(str(fingerprint), who)
    return Holds(by_fingerprint=held, dead=dead)
