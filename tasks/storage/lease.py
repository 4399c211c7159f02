"""A lease on a training's durable state, so two live runs never train into one backup.

A SIGKILLed run never says it is done (Prefect leaves its flow run Running), so holding
a training cannot depend on the holder cleaning up. A lease is a sequence of small
objects ``<state>/lease/<generation>.json``, each created exclusively (O_EXCL on a
disk, If-None-Match on S3), written by its holder only:

- the newest generation is the lease; its holder renews ``expires_at`` from a
  heartbeat thread every third of the lease time;
- a newcomer takes over by creating the next generation, once the newest has expired,
  been released, or names a process on this host that no longer exists (a restart on
  the same machine resumes at once instead of waiting out the lease);
- a holder that finds a newer generation has lost the lease and stops before it writes
  another backup.

Clocks: expiry compares wall clocks of different machines; keep them NTP-synced, and
keep ``runtime.lease_seconds`` well above their skew.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from typing import Any

from kerasflow.models.exclusive import create_exclusive, replace_whole
from kerasflow.models.liveness import holder_fields, is_live
from kerasflow.tasks import storage
from kerasflow.tasks.failures import DeterministicFailure

log = logging.getLogger(__name__)


class TrainingBusyError(DeterministicFailure):
    """Another live run holds this training; retrying at once would find it busy again."""


class LeaseLostError(DeterministicFailure):
    """This run's lease expired and another run took the training over."""


class TrainingLease:
    """The lease on one training's state folder ``url``; use ``with lease.held(...)``.

    Args:
        url: the training's state folder, any fsspec URL; the lease's records go under ``<url>/lease``.
        seconds: how long a generation stays live without renewal (``runtime.lease_seconds``); the heartbeat
            renews it every third of that.
        description: names the training in messages.
        flow_run_id: the holder's flow run, recorded in each generation so a busy error names it.
    """

    def __init__(self, url: str, *, seconds: float, description: str = "", flow_run_id: str | None = None):
        self.url = storage.join(url, "lease")
        self.seconds = seconds
        self.description = description
        self.flow_run_id = flow_run_id
        self.generation: int | None = None
        self.lost: LeaseLostError | None = None
        self._renewed = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reading ---------------------------------------------------------------------------
    def _generations(self) -> list[int]:
        fs, path = storage.filesystem(self.url)
        with storage.reaching(self.url):
            names = [p.rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)] if fs.exists(path) else []
        return sorted(int(n.removesuffix(".json")) for n in names if n.endswith(".json") and n[:-5].isdigit())

    def _read(self, generation: int) -> dict[str, Any] | None:
        fs, path = storage.filesystem(self.url)
        try:
            with storage.reaching(self.url):
                return json.loads(fs.cat_file(f"{path}/{generation:08d}.json"))
        except FileNotFoundError:
            return None

    def _free(self, holder: dict[str, Any] | None, now: float) -> bool:
        return not is_live(holder, now)

    def holder(self) -> dict[str, Any] | None:
        """The newest generation's record, or None when the training was never leased."""
        generations = self._generations()
        return self._read(generations[-1]) if generations else None

    def live_holder(self) -> dict[str, Any] | None:
        """The newest record while it still holds the lease (a training in progress), else None."""
        holder = self.holder()
        return None if self._free(holder, time.time()) else holder

    # -- writing ---------------------------------------------------------------------------
    def _record(self, *, released: bool = False) -> bytes:
        return json.dumps(
            {
                "generation": self.generation,
                **holder_fields(self.seconds, released=released),
                "flow_run_id": self.flow_run_id,
                "description": self.description,
            }
        ).encode()

    def _overwrite(self, body: bytes) -> None:
        fs, path = storage.filesystem(self.url)
        with storage.reaching(self.url):
            replace_whole(fs, f"{path}/{self.generation:08d}.json", body)

    def acquire(self, *, wait_seconds: float, poll_seconds: float = 1.0) -> None:
        """Take the lease, waiting up to ``wait_seconds`` for a live holder's lease to end.

        Args:
            wait_seconds: how long to wait for a live holder to let go, in seconds.
            poll_seconds: seconds between looks at the newest generation.

        Raises:
            TrainingBusyError: a live run still holds the lease after ``wait_seconds``.
            StorageUnavailableError: the store cannot be reached.
        """
        fs, path = storage.filesystem(self.url)
        deadline = time.monotonic() + wait_seconds
        while True:
            generations = self._generations()
            top = generations[-1] if generations else 0
            holder = self._read(top) if top else None
            if top and holder is None:
                continue  # cleaned up between listing and reading: look again
            if self._free(holder, time.time()):
                self.generation = top + 1
                with storage.reaching(self.url):
                    won = create_exclusive(fs, f"{path}/{self.generation:08d}.json", self._record())
                if won:
                    self._renewed = time.monotonic()
                    self._forget_older(generations)
                    return
                continue  # another newcomer took this generation first
            if time.monotonic() >= deadline:
                raise TrainingBusyError(
                    f"training {self.description or self.url} is held by a live run: flow run "
                    f"{holder.get('flow_run_id')} on host {holder.get('host')} (pid {holder.get('pid')}), "
                    f"renewed {time.time() - float(holder['renewed_at']):.0f}s ago; wait for it to finish "
                    "or cancel it; two runs must not train into the same backup"
                )
            time.sleep(poll_seconds)

    def _forget_older(self, generations: list[int]) -> None:
        fs, path = storage.filesystem(self.url)
        for generation in generations:
            with contextlib.suppress(OSError):  # best effort: only the newest counts
                fs.rm_file(f"{path}/{generation:08d}.json")

    def renew(self) -> None:
        """Push the expiry forward; LeaseLostError when a newer generation exists."""
        if self.generation is None:
            raise RuntimeError("renew() before acquire()")
        newest = self._generations()
        if newest and newest[-1] > self.generation:
            holder = self._read(newest[-1]) or {}
            raise LeaseLostError(
                f"lost the lease on training {self.description or self.url} to flow run "
                f"{holder.get('flow_run_id')} on host {holder.get('host')}: this run stopped renewing it for "
                f"longer than runtime.lease_seconds={self.seconds:g}; that run continues the training"
            )
        self._overwrite(self._record())
        self._renewed = time.monotonic()

    def check(self) -> None:
        """Raise if this run may no longer hold the lease: call before writing shared state.

        Lost when the heartbeat saw a newer generation, and also when it has not renewed
        for most of the lease time (storage down, a hung request, a dead thread): by then
        another run may be about to take over, so this one must not publish.
        """
        if self.lost is not None:
            raise self.lost
        silent = time.monotonic() - self._renewed
        if self.generation is not None and silent > 0.8 * self.seconds:
            raise LeaseLostError(
                f"could not renew the lease on training {self.description or self.url} for {silent:.0f}s "
                f"(runtime.lease_seconds={self.seconds:g}); stopping before another run takes it over"
            )

    def still_newest(self) -> None:
        """For a process that did not acquire the lease (a training's chief worker): raise
        LeaseLostError when generation ``self.generation`` is no longer the newest."""
        newest = self._generations()
        if newest and newest[-1] != self.generation:
            raise LeaseLostError(
                f"training {self.description or self.url} was taken over (lease generation {newest[-1]}, this "
                f"job holds {self.generation}); stopping before publishing over the new run's backup"
            )

    def release(self) -> None:
        """Mark this generation released, so the next run need not wait for it to expire."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.seconds)
        if self.generation is None or self.lost is not None:
            return
        try:
            newest = self._generations()
            if not newest or newest[-1] == self.generation:
                self._overwrite(self._record(released=True))
        except OSError as error:  # it will expire on its own
            log.warning("could not release the lease on %s: %s", self.url, error)

    # -- heartbeat -------------------------------------------------------------------------
    def _beat(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.renew()
            except LeaseLostError as error:
                self.lost = error
                return
            except Exception as error:  # noqa: BLE001 - any failure to renew; check() reports staleness
                log.warning("could not renew the lease on %s: %s", self.url, error)

    def held(self, *, wait_seconds: float) -> _Held:
        """Context manager: acquire, renew in the background, release on exit.

        Args:
            wait_seconds: how long entering waits for a live holder to let go, in seconds (:meth:`acquire`).

        Returns:
            A context manager whose ``with`` gives this lease, held.
        """
        return _Held(self, wait_seconds)


class LeaseView:
    """A training process's view of the lease its launcher holds (a chief worker's).

    ``check()`` raises LeaseLostError once a newer generation exists, so a worker left
    running by a dead launcher never publishes over the run that took the training over.

    Args:
        url: the training's state folder, as given to the launcher's :class:`TrainingLease`.
        generation: the generation the launcher holds.
        description: names the training in messages.
    """

    def __init__(self, url: str, *, generation: int, description: str = ""):
        self._lease = TrainingLease(url, seconds=1.0, description=description)
        self._lease.generation = generation

    def check(self) -> None:
        self._lease.still_newest()


class _Held:
    def __init__(self, lease: TrainingLease, wait_seconds: float):
        self.lease = lease
        self.wait_seconds = wait_seconds

    def __enter__(self) -> TrainingLease:
        lease = self.lease
        lease.acquire(wait_seconds=self.wait_seconds)
        lease._stop.clear()
        lease._thread = threading.Thread(target=lease._beat, name="kerasflow-lease", daemon=True)
        lease._thread.start()
        return lease

    def __exit__(self, *exc: object) -> None:
        self.lease.release()
