"""Write a source once per fingerprint, in TFDS format, on any storage root, never half.

Layout::

    <root>/datasets/<fingerprint>/ref.json              the marker: written last, exclusively
    <root>/datasets/<fingerprint>/<attempt>/<name>/<version>/   the TFDS files

Each writer stores the dataset into its own attempt folder (locally, then one bulk
upload when the root is remote) and publishes it by creating ``ref.json`` exclusively
(``O_EXCL`` on a disk, ``If-None-Match`` on S3). A writer that dies half-way leaves an
attempt folder no marker names, so it is never taken for a dataset; of two concurrent
writers of the same fingerprint exactly one publishes, and the other removes its attempt
and returns the winner's ref. Readers look for the marker only, so reuse costs one GET.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kerasflow.models.exclusive import create_exclusive
from kerasflow.tasks import storage
from kerasflow.tasks.data import tfds_quiet
from kerasflow.tasks.data.source_data import SourceData
from kerasflow.tasks.data.statistics import DatasetStatistics, merged
from kerasflow.tasks.data.stored_statistics import stored_statistics
from kerasflow.tasks.refs import DatasetPart, DatasetRef
from kerasflow.tasks.storage import holds

if TYPE_CHECKING:
    from kerasflow.tasks.data.statistics import DatasetStatistics

REF_FILE = "ref.json"
STATISTICS_FILE = "statistics.json"
VERSION = "1.0.0"


def dataset_url(root: str, fingerprint: str) -> str:
    """Where the dataset ``fingerprint`` lives: ``<root>/datasets/<fingerprint>``.

    Args:
        root: the storage root.
        fingerprint: the dataset's fingerprint.
    """
    return storage.join(storage.datasets_url(root), fingerprint)


def find_materialized(root: str, fingerprint: str) -> DatasetRef | None:
    """The ref of the published materialization of ``fingerprint``, or None.

    Args:
        root: the storage root.
        fingerprint: the dataset's fingerprint.

    Raises:
        StorageUnavailableError: the store cannot be reached.
    """
    url = storage.join(dataset_url(root, fingerprint), REF_FILE)
    fs, path = storage.filesystem(url)
    try:
        with storage.reaching(url), fs.open(path, "rb") as f:
            return located(DatasetRef.model_validate_json(f.read()), root)
    except FileNotFoundError:
        return None


def located(ref: DatasetRef, root: str) -> DatasetRef:
    """``ref`` with its folders under ``root``, where its ``ref.json`` was found.

    A ``ref.json`` records the folders as they were when it was written; a root copied or
    moved since (a local folder to another disk, a bucket to another) reads its own copies,
    not the old place's.

    Args:
        ref: the dataset as recorded.
        root: the storage root it was found under.
    """
    parts = [part.model_copy(update={"uri": dataset_url(root, part.fingerprint)}) for part in ref.parts]
    return ref.model_copy(update={"uri": dataset_url(root, ref.fingerprint), "parts": parts})


def read_statistics(ref: DatasetRef) -> DatasetStatistics | None:
    """The dataset's statistics (its parts' merged), or None when a part has none (stored before they were kept).

    Args:
        ref: the stored dataset; each part's statistics.json is read.

    Raises:
        StorageUnavailableError: the store cannot be reached.
    """

    parts = ref.stored_parts
    if any(part.statistics_path is None for part in parts):
        return None
    found = []
    for part in parts:
        url = storage.join(part.uri, part.statistics_path)
        fs, path = storage.filesystem(url)
        with storage.reaching(url), fs.open(path, "rb") as f:
            found.append(DatasetStatistics.from_json(json.loads(f.read())))
    return merged(found)


def materialize(source: SourceData, root: str) -> DatasetRef:
    """Store ``source`` under ``<root>/datasets/<fingerprint>`` unless it is published already.

    The dataset is held (tasks/storage/holds.py) before its ``ref.json`` is read, so housekeeping
    never removes what this returns before the run, or the enclosing scope, ends.

    Args:
        source: what a source read, to store.
        root: the storage root.

    Returns:
        The published ref: this call's, or that of a run that published the fingerprint before it.

    Raises:
        StorageUnavailableError: the store cannot be reached.
    """
    holds.hold(root, [source.fingerprint])
    existing = find_materialized(root, source.fingerprint)
    if existing is not None:
        return existing
    url = dataset_url(root, source.fingerprint)
    attempt = f"attempt-{uuid.uuid4().hex[:12]}"
    staging = storage.local_path(root, url) / attempt
    published = False
    try:
        ref = _store(source, staging, root=root, url=url, attempt=attempt)
        if not storage.is_local(root):
            storage.upload_dir(staging, storage.join(url, attempt))
        published_ref = publish(ref)
        published = published_ref is ref
        return published_ref
    finally:
        if not published:
            _discard(staging, root=root, url=storage.join(url, attempt))


def publish(ref: DatasetRef) -> DatasetRef:
    """Create ``ref``'s marker exclusively: ``ref`` if this call did, else the ref another run published first.

    Raises:
        StorageUnavailableError: the store cannot be reached.
    """
    fs, marker = storage.filesystem(storage.join(ref.uri, REF_FILE))
    with storage.reaching(ref.uri):
        if create_exclusive(fs, marker, ref.model_dump_json(indent=2).encode()):
            return ref
    # Another run published the same fingerprint first; its copy is as good as ours.
    winner = find_materialized(ref.storage_root, ref.fingerprint)
    if winner is None:
        raise RuntimeError(f"{ref.uri}: {REF_FILE} exists but cannot be read")
    return winner


def _store(source: SourceData, staging: Path, *, root: str, url: str, attempt: str) -> DatasetRef:
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()  # Prefect's log already says what is being written
    staging.mkdir(parents=True)
    try:
        with tfds_quiet.quiet_store():
            builder = tfds.dataset_builders.store_as_tfds_dataset(
                name=source.name,
                version=VERSION,
                features=source.features,
                # TFDS cannot write an empty split; a small file of a table may hold no row of one.
                split_datasets={k: v for k, v in source.splits.items() if source.counts.get(k, 1) > 0},
                data_dir=os.fspath(staging),
                description=f"kerasflow materialization {source.fingerprint}",
                # Rows keep the source's order, so "row N of split S" in a report can be found again.
                disable_shuffling=True,
            )
    finally:
        # TFDS keeps what it was handed alive after writing (the ad hoc builder holds the
        # split iterables): a table's blocks drop their arrays, or every file stored in one
        # ingest stayed in memory (65 MB per 500k rows of 30 floats, issue 14).
        for split in source.splits.values():
            if hasattr(split, "release"):
                split.release()
    shutil.rmtree(staging / "downloads", ignore_errors=True)
    statistics = source.statistics
    if statistics is None and source.rows_per_example == 1:  # a TFDS stream: counted from what was stored

        statistics = stored_statistics(
            builder, feature_key=source.feature_key, label_key=source.label_key, class_names=source.class_names
        )
    statistics_path = None
    if statistics is not None:  # written into the attempt, so published (or discarded) with it
        statistics_path = f"{attempt}/{STATISTICS_FILE}"
        (staging / STATISTICS_FILE).write_text(json.dumps(statistics.to_json()))
    stored = builder.info.features
    # A typed table of categories alone stores no float columns.
    feature = stored[source.feature_key] if source.feature_key in stored.keys() else None  # noqa: SIM118 - not a dict
    shape = tuple(feature.shape or ()) if feature is not None else (None, 0)
    if source.rows_per_example > 1:
        shape = shape[1:]  # blocks of rows: (None, *row shape)
        splits = {name: int(source.counts[name]) for name in source.splits}
    else:
        splits = {name: int(info.num_examples) for name, info in builder.info.splits.items()}
    if source.image_size is not None:  # stored encoded; decoded and resized as they are read
        shape = (*source.image_size, source.channels)
    return DatasetRef(
        fingerprint=source.fingerprint,
        storage_root=root,
        uri=url,
        builder_path=f"{attempt}/{source.name}/{VERSION}",  # TFDS lays out <data_dir>/<name>/<version>
        num_bytes=int(builder.info.dataset_size),
        rows_per_example=source.rows_per_example,
        source=source.identity["source"],
        splits=splits,
        feature_key=source.feature_key,
        label_key=source.label_key,
        feature_shape=tuple(int(d) for d in shape),
        feature_dtype="float32" if feature is None or source.image_size else np.dtype(feature.np_dtype).name,
        num_classes=len(source.class_names),
        class_names=source.class_names,
        labels=source.labels,
        feature_names=source.feature_names,
        ignored_columns=source.ignored_columns,
        slices=source.slices,
        column_types=source.column_types,
        statistics_path=statistics_path,
        image_size=source.image_size,
    )


def _discard(staging: Path, *, root: str, url: str) -> None:
    """Remove an attempt that was not published, locally and (best effort) remotely."""
    shutil.rmtree(staging, ignore_errors=True)
    if not storage.is_local(root):
        try:
            fs, path = storage.filesystem(url)
            fs.rm(path, recursive=True)
        except Exception:  # noqa: BLE001 - unpublished leftovers are invisible; never mask the real error
            pass


def local_builder_dir(part: DatasetPart, root: str) -> Path:
    """A local folder holding a stored part's TFDS files, downloaded once when the root is remote.

    Args:
        part: a stored part of a dataset.
        root: the storage root, whose local mirror holds the copy.

    Returns:
        The local folder of the part's TFDS builder (``<attempt>/<name>/<version>``).
    """
    local = storage.local_path(root, part.uri)
    attempt = part.builder_path.split("/", 1)[0]
    storage.download_dir(storage.join(part.uri, attempt), local / attempt)
    return local / part.builder_path
