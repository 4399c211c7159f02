"""One file of any size stored with bounded memory: in parts of about ``PART_ROWS`` rows, read batch by batch.

A file whose rows fit in one part is stored whole under its own identity, as it always
was. A larger file is stored as consecutive parts, each a dataset of its own keyed by
the file's identity and its row range, and the file's dataset is their list
(``DatasetRef.parts``, tasks/data/combined.py) under the file's identity, so the next
run finds it with one GET. Memory follows a part, not the file: a 20M-row file is read
one record batch at a time and stored 2^20 rows at a time.

The parts are the file read whole, row for row: a row's split is decided by its own
hash (tasks/data/splits.py), each part's class names and slice values are merged as a
table's files' are, and the feature columns are the file's first batch's (or the
recipe's). A run that dies half-way leaves the parts it published: the next run reads
the file again but stores only the parts not found.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.data import materialize as materialization
from kerasflow.tasks.data.combined import combine
from kerasflow.tasks.ingest.read_ahead import read_ahead
from kerasflow.tasks.ingest.sources import fingerprint
from kerasflow.tasks.ingest.sources.tables import table_reading, tabular
from kerasflow.tasks.ingest.sources.tables.source import table_source
from kerasflow.tasks.ingest.sources.tables.table_reading import Part
from kerasflow.tasks.refs import DatasetRef
from kerasflow.tasks.storage import holds


def applies(data: DataConfig, identity: dict[str, Any]) -> bool:
    """Whether the configured source is one table file whose rows can be stored in parts.

    Not ``data.limit``: it keeps the lowest hashes of the whole file.

    Args:
        data: the recipe's ``data`` section.
        identity: the source's identity (:func:`kerasflow.tasks.ingest.sources.identify`).
    """
    return (
        data.source == "files"
        and "tfds_dir" not in identity
        and data.limit is None
        and len(identity.get("files", ())) == 1
    )


def materialize_file(
    data: DataConfig,
    identity: dict[str, Any],
    root: str,
    *,
    downloaded: dict[str, Path] | None = None,
    materialize: Callable[..., DatasetRef] = materialization.materialize,
    logger: Any = None,
    part_rows: int | None = None,
    parts: Iterable[Part] | None = None,
) -> DatasetRef | None:
    """Store the one file ``identity`` names, whole or in parts of ``part_rows`` rows (``PART_ROWS``).

    None when the file holds no row, or none a time window keeps: there is nothing to store
    (TFDS cannot store a dataset without rows), and a table leaves the file out.

    ``parts``: the file's parts as read already (a table's files read ahead, tasks/ingest/partitions.py);
    otherwise the file is read here, its next part while the last one is stored (tasks/ingest/read_ahead.py).

    Args:
        data: the recipe's ``data`` section.
        identity: the identity of the one file, as :func:`kerasflow.tasks.ingest.sources.identify` or a
            table's part gives it; its fingerprint keys the file's dataset.
        root: the storage root, any fsspec URL.
        downloaded: file URL -> a local copy fetched beforehand; None to fetch the file here.
        materialize: stores one part's rows as a dataset and returns its ref.
        logger: where each stored part is logged; None for no lines.
        part_rows: rows per part; None for ``PART_ROWS``.
        parts: the file's parts, read already; None to read them here.
    """
    (file,) = tabular.from_identity(identity["files"])
    # Each part stored is held until the file's dataset, which names it, is published (tasks/storage/holds.py).
    with holds.scope(root):
        if parts is not None:
            return _store(file, parts, data, identity, root, materialize=materialize, logger=logger)
        with contextlib.closing(read_ahead(read_file(file, data, downloaded=downloaded, rows=part_rows))) as read:
            return _store(file, read, data, identity, root, materialize=materialize, logger=logger)


def read_file(
    file: tabular.TableFile, data: DataConfig, *, downloaded: dict[str, Path] | None = None, rows: int | None = None
) -> Iterator[Part]:
    """The parts of ``file`` as :func:`table_reading.read_parts` reads them, from its local copy.

    A generator holding the local copy open: closed, in whichever thread reads it, it lets go.

    Args:
        file: the file to read.
        data: the recipe's ``data`` section (columns, labels, window).
        downloaded: file URL -> a local copy fetched beforehand; None to fetch the file here.
        rows: rows per part; None for ``PART_ROWS``.
    """
    with tabular.local_copies([file], downloaded) as (path,):
        yield from table_reading.read_parts(file, path, data, rows=rows)


def _store(
    file: Any,
    parts: Iterable[Part],
    data: DataConfig,
    identity: dict[str, Any],
    root: str,
    *,
    materialize: Callable[..., DatasetRef],
    logger: Any,
) -> DatasetRef | None:
    refs: list[DatasetRef] = []
    started = time.monotonic()
    for part in parts:
        if not len(part.table.labels):  # no row, or none in a time window: nothing to store
            continue
        if part.first_row == 0 and part.last:  # one part: the file stored whole, as before parts
            return materialize(table_source(part.table, data, identity), root)
        end = part.first_row + part.rows
        own = {**identity, "rows": [part.first_row, end]}
        holds.hold(root, [fingerprint(own)])
        ref = materialization.find_materialized(root, fingerprint(own))
        if ref is None:
            ref = materialize(table_source(part.table, data, own), root)
        refs.append(ref)
        if logger is not None:
            logger.info(
                "%s: rows %d-%d stored (part %d), %.0f rows/s",
                file.url,
                part.first_row,
                end - 1,
                len(refs),
                end / max(time.monotonic() - started, 1e-9),
            )
    if not refs:
        return None
    return materialization.publish(combine(refs, fingerprint=fingerprint(identity), root=root, classes=data.classes))
