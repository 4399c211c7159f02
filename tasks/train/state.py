"""Durable training state: what a training is, and its backup on the storage root.

A training is keyed by what it is, not by the run that started it: the model, the
training section of the config and the data fingerprint. So the next run of the same
recipe on the same data (a retry, the next schedule, ``kerasflow train`` again) finds
the unfinished training of a run that was killed, and resumes it::

    <root>/training/<key>/lease/<generation>.json     who trains it now (lease.py)
    <root>/training/<key>/backup/latest.json          {"epoch": N}: the last published snapshot
    <root>/training/<key>/backup/epoch-<N>/           Keras BackupAndRestore files after epoch N
    <root>/training/<key>/trained.json                the finished TrainedModel, until it is
                                                      registered and promoted (or rejected)

Keras's BackupAndRestore writes into a private local folder every epoch; the chief then
publishes that folder as a new ``epoch-<N>/`` and only then points ``latest.json`` at
it (one small PUT, or a rename on a disk), so a kill mid-upload leaves the previous
snapshot whole. On start every process downloads the newest snapshot into its own
folder, so workers on other machines resume from the same weights.

Once training ends and its run folder is published, ``trained.json`` records the
TrainedModel (with the run id that trained it, so the registry's idempotency key of a
rerun is the original one). A run killed later, in evaluation, gating, registration or
before promotion, is resumed by the next run from there: it reuses the model instead of
training again, and registration finds the version already written. The flow clears the
record once the candidate is promoted or rejected, so new data or a new definition trains.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import keras

from kerasflow.models.exclusive import replace_whole
from kerasflow.tasks import storage
from kerasflow.tasks.config import TrainConfig
from kerasflow.tasks.refs import DatasetRef, TrainedModel

# Bump when the backup layout or what the key covers changes.
STATE_FORMAT = 1
# Named in storage.py, so housekeeping finds trained.json without importing Keras.
TRAINED_FILE = storage.TRAINED_FILE
training_url = storage.training_url


def training_key(config: TrainConfig, dataset: DatasetRef) -> str:
    """What the training is: model, training config, precision and data fingerprint.

    Runtime placement (strategy, devices, launcher) is left out: a training killed on one
    machine may resume on another with a different number of GPUs.

    Args:
        config: the recipe's config.
        dataset: the dataset trained on.

    Returns:
        ``<model name>-<16 hex digits>``: the name of the training's folder under ``<root>/training/``.
    """
    identity = {
        "format": STATE_FORMAT,
        "model": config.model.model_dump(mode="json"),
        "training": config.training.model_dump(mode="json"),
        "mixed_precision": config.runtime.mixed_precision,
        "scale_learning_rate": config.runtime.scale_learning_rate,
        "data": dataset.fingerprint,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return f"{config.model.name}-{digest[:16]}"


class TrainingState:
    """The backup snapshots of one training under ``<root>/training/<key>``.

    Args:
        url: the training's folder, ``<root>/training/<key>``, any fsspec URL.
    """

    def __init__(self, url: str):
        self.url = url
        self.backup_url = storage.join(url, "backup")
        self.trained_url = storage.join(url, TRAINED_FILE)

    def record_trained(self, trained: TrainedModel) -> None:
        """Keep the finished model's record until it is registered and promoted (one whole write)."""
        fs, path = storage.filesystem(self.trained_url)
        with storage.reaching(self.trained_url):
            fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            replace_whole(fs, path, trained.model_dump_json(indent=2).encode())

    def finished(self) -> TrainedModel | None:
        """The model this training already produced, if its record and its model file both exist."""
        fs, path = storage.filesystem(self.trained_url)
        try:
            with storage.reaching(self.trained_url):
                trained = TrainedModel.model_validate_json(fs.cat_file(path))
                model_fs, model_path = storage.filesystem(trained.model_uri)
                return trained if model_fs.exists(model_path) else None
        except FileNotFoundError:
            return None

    def forget_trained(self) -> None:
        """The candidate was promoted or rejected: the next run of this key trains again."""
        fs, path = storage.filesystem(self.trained_url)
        with storage.reaching(self.trained_url):
            if fs.exists(path):
                fs.rm(path)

    def latest_epoch(self) -> int:
        """The epoch of the newest published snapshot; 0 when there is none."""
        fs, path = storage.filesystem(self.backup_url)
        try:
            with storage.reaching(self.backup_url):
                return int(json.loads(fs.cat_file(f"{path}/latest.json"))["epoch"])
        except FileNotFoundError:
            return 0

    def restore_into(self, local: Path) -> int:
        """Download the newest snapshot into the empty folder ``local``; its epoch, or 0."""
        epoch = self.latest_epoch()
        if epoch:
            url = storage.join(self.backup_url, f"epoch-{epoch:05d}")
            fs, path = storage.filesystem(url)
            with storage.reaching(url):
                keys = [k for k in fs.find(path) if not k.endswith("/")]
                fs.get(keys, [os.fspath(local / k.rsplit("/", 1)[-1]) for k in keys])
        return epoch

    def publish(self, local: Path, epoch: int) -> None:
        """Publish the folder ``local`` as the snapshot after ``epoch``, then drop older ones.

        Only forward: a snapshot older than the published one is never published over it.

        Args:
            local: the local folder Keras's BackupAndRestore wrote.
            epoch: the epochs completed, counted from 1.
        """
        previous = self.latest_epoch()
        if previous >= epoch:
            return
        storage.upload_dir(local, storage.join(self.backup_url, f"epoch-{epoch:05d}"))
        fs, path = storage.filesystem(self.backup_url)
        body = json.dumps({"epoch": epoch}).encode()
        with storage.reaching(self.backup_url):
            replace_whole(fs, f"{path}/latest.json", body)
            if previous:
                fs.rm(f"{path}/epoch-{previous:05d}", recursive=True)

    def clear(self) -> None:
        """Forget the backup: the training finished, or ``--fresh`` starts it over."""
        fs, path = storage.filesystem(self.backup_url)
        with storage.reaching(self.backup_url):
            if fs.exists(path):
                fs.rm(path, recursive=True)


class DurableBackup(keras.callbacks.BackupAndRestore):
    """Keras's BackupAndRestore in a private folder, published to the root after each epoch.

    Every process of a training restores from the same snapshot; only the chief
    (``publish=True``) publishes, after checking that its lease still holds (``lease``
    has ``check()``: the holder's own TrainingLease, or a worker's view of it). Workers
    still save each epoch, to a folder of their own that is removed at the end: saving
    reads every variable, which under MultiWorkerMirroredStrategy all workers must do.

    Args:
        state: the training's durable state, which snapshots are restored from and published to.
        scratch: the local folder the private backup folder is made in.
        publish: this process publishes each epoch's snapshot (the chief).
        lease: has ``check()``, called before each publish; None for no check.
    """

    def __init__(self, state: TrainingState, *, scratch: Path, publish: bool, lease: Any = None):
        scratch.mkdir(parents=True, exist_ok=True)
        self.local = Path(tempfile.mkdtemp(prefix="backup-", dir=scratch))
        super().__init__(os.fspath(self.local), save_freq="epoch", delete_checkpoint=True)
        self.state = state
        self.publish = publish
        self.lease = lease
        self.restored_epoch = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Download the newest published snapshot, then let Keras restore from it."""
        self.restored_epoch = self.state.restore_into(self.local)
        super().on_train_begin(logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Save the epoch's backup; the chief publishes it once its lease still holds.

        Args:
            epoch: the epoch ended, 0 up.
            logs: the epoch's metrics, passed on to Keras.

        Raises:
            LeaseLostError: another run holds the training now.
        """
        super().on_epoch_end(epoch, logs)
        if self.publish:
            if self.lease is not None:
                self.lease.check()  # raises LeaseLostError: another run trains this now
            self.state.publish(self.local, epoch + 1)

    def on_train_end(self, logs: dict | None = None) -> None:
        """Let Keras delete its backup, and remove the private folder."""
        super().on_train_end(logs)
        shutil.rmtree(self.local, ignore_errors=True)
