"""Find a source's dataset under the root, or store it: the whole of the ingest step but Prefect.

The fingerprint of what the source names decides: a dataset stored before under it is
reused for the cost of one read of its ``ref.json``; otherwise the source is stored the
way its shape asks: a table of several files one file at a time (partitions.py), one large
file in parts of rows (file_parts.py), a large image folder in parts of images
(image_parts.py), anything else whole (tasks/data/materialize.py).
"""

from __future__ import annotations

from typing import Any

from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.config.runtime import IngestRunConfig
from kerasflow.tasks.data import materialize as materialization
from kerasflow.tasks.ingest import file_parts, image_parts, partitions
from kerasflow.tasks.ingest.sources import fingerprint, load_source
from kerasflow.tasks.ingest.sources.tables import table_reading
from kerasflow.tasks.refs import DatasetRef

__all__ = ["find_or_store"]


def find_or_store(
    data: DataConfig, identity: dict[str, Any], root: str, *, logger: Any, runtime: IngestRunConfig
) -> DatasetRef:
    """The dataset stored under the identity's fingerprint: found, or stored now.

    Args:
        data: the recipe's ``data`` section, its window resolved.
        identity: what the source names (``identify(data)``); its fingerprint names the dataset.
        root: the storage root, any fsspec URL.
        logger: where what was found or stored is logged.
        runtime: how a table's files run (``runtime.ingest``).

    Returns:
        The stored dataset.

    Raises:
        DataValidationError: the data cannot be learnt from (no row to store, a bad value or column).
    """
    if data.window is not None:
        logger.info(
            "data.window: the %d day(s) to %s, %d file(s)", data.window.days, data.window.until, len(identity["files"])
        )
    ref = materialization.find_materialized(root, fingerprint(identity))
    if ref is None:
        files = len(identity.get("files", ()))
        logger.info("materializing %s source%s into %s", data.source, f" ({files} file(s))" if files else "", root)
        if partitions.applies(data, identity):  # one materialization per file, reused as files are added
            ref = partitions.materialize_partitions(data, identity, root, logger=logger, runtime=runtime)
        elif file_parts.applies(data, identity):  # one file, read in batches and stored in parts if large
            ref = file_parts.materialize_file(data, identity, root, logger=logger)
            if ref is None:
                raise table_reading.no_rows(data)
        elif image_parts.applies(data, identity):  # a folder larger than one part, stored a run of images at a time
            ref = image_parts.materialize_images(data, identity, root, logger=logger)
        else:
            ref = materialization.materialize(load_source(data, identity), root)
    else:
        logger.info("dataset %s is materialized already; reusing it", ref.fingerprint)
    splits = ", ".join(f"{k}={v}" for k, v in ref.splits.items())
    logger.info("dataset %s (%s) at %s: %s", ref.fingerprint, data.source, ref.uri, splits)
    if ref.ignored_columns:
        logger.warning("columns outside the recipe's schema, ignored: %s", ", ".join(ref.ignored_columns))
    return ref
