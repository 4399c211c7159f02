"""An image folder of any size stored with bounded memory: in parts of about ``PART_BYTES`` of images.

TFDS's writer holds a split in memory until it is written (up to a gigabyte before it
spills to disk), so a folder stored whole costs about its own size in memory. A folder
larger than one part is stored as consecutive runs of its sorted images, each a dataset
of its own keyed by its images (the folder's identity with those images alone), and the
folder's dataset is their list (``DatasetRef.parts``, tasks/data/combined.py) under the
folder's own fingerprint. Memory and the temporary downloads follow a part, not the folder.

The parts are the folder stored whole, image for image: each image's split comes from
its own bytes and class (tasks/ingest/sources/images.py), every part names all the
folder's classes in the same order, and the parts are read in the listing's order. A run
that dies half-way leaves the parts it published: the next run stores only the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.data import materialize as materialization
from kerasflow.tasks.data.combined import combine
from kerasflow.tasks.ingest.sources import fingerprint, load_source
from kerasflow.tasks.refs import DatasetRef
from kerasflow.tasks.storage import holds

# Encoded bytes of images per stored part: what the writer holds at once, and what is downloaded at once.
PART_BYTES = 128 << 20


def applies(data: DataConfig, identity: dict[str, Any], *, part_bytes: int | None = None) -> bool:
    """Whether the configured source is an image folder larger than one part.

    Not ``data.limit``: it keeps the lowest hashes of the whole folder, which no part knows.

    Args:
        data: the recipe's ``data`` section.
        identity: the source's identity (:func:`kerasflow.tasks.ingest.sources.identify`).
        part_bytes: the encoded bytes of one part; None for ``PART_BYTES``.
    """
    return (
        data.source == "images"
        and data.limit is None
        and sum(int(size) for _, size, _ in identity.get("files", ())) > (part_bytes or PART_BYTES)
    )


def image_runs(files: list[list[Any]], *, part_bytes: int = PART_BYTES) -> list[list[list[Any]]]:
    """``files`` (identity rows: URL, size, version) cut into consecutive runs of at most ``part_bytes``.

    An image larger than ``part_bytes`` is a run of its own.

    Args:
        files: the folder's images, as its identity lists them (sorted).
        part_bytes: the encoded bytes of one run at most.
    """
    runs: list[list[list[Any]]] = [[]]
    size = 0
    for file in files:
        if runs[-1] and size + int(file[1]) > part_bytes:
            runs.append([])
            size = 0
        runs[-1].append(file)
        size += int(file[1])
    return runs


def materialize_images(
    data: DataConfig,
    identity: dict[str, Any],
    root: str,
    *,
    logger: Any = None,
    materialize: Callable[..., DatasetRef] = materialization.materialize,
    part_bytes: int | None = None,
) -> DatasetRef:
    """Store the images ``identity`` names in parts of ``part_bytes``, and publish the folder as their list.

    Args:
        data: the recipe's ``data`` section.
        identity: the folder's identity: its images and class folders, sorted.
        root: the storage root, any fsspec URL.
        logger: where each stored part is logged; None for no lines.
        materialize: stores one part's images as a dataset and returns its ref.
        part_bytes: the encoded bytes of one part; None for ``PART_BYTES``.

    Raises:
        DataValidationError: an image cannot be decoded (named).
    """
    runs = image_runs(identity["files"], part_bytes=part_bytes or PART_BYTES)
    refs: list[DatasetRef] = []
    started = time.monotonic()
    # Each part stored is held until the folder's dataset, which names it, is published (tasks/storage/holds.py).
    with holds.scope(root):
        for number, files in enumerate(runs, start=1):
            own = {**identity, "files": files}
            holds.hold(root, [fingerprint(own)])
            ref = materialization.find_materialized(root, fingerprint(own))
            if ref is None:
                ref = materialize(load_source(data, own), root)
            refs.append(ref)
            if logger is not None:
                logger.info(
                    "images: part %d/%d stored (%d image(s), %.0f MB), %.0f s so far",
                    number,
                    len(runs),
                    len(files),
                    sum(int(f[1]) for f in files) / 1e6,
                    time.monotonic() - started,
                )
        return materialization.publish(
            combine(refs, fingerprint=fingerprint(identity), root=root, classes=list(identity["classes"]))
        )
