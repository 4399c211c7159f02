"""``data.source: files``: CSV and Parquet files (one, a folder, or a glob) with a label column.

Identified by the files' keys, sizes and ETags (a time window: the files that may hold
its rows, and its bounds), read as typed columns (table_reading.py), split by each row's
hash and stored in blocks (tasks/ingest/sources/arrays.py). A table of several files is
stored file by file by the ingest step (tasks/ingest/partitions.py), each file through
:func:`table_source`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.data.source_data import SourceData
from kerasflow.tasks.ingest.sources import arrays, register_source
from kerasflow.tasks.ingest.sources.tables import table_reading, tabular, window
from kerasflow.tasks.ingest.sources.tables.table_reading import Table

__all__ = ["TableSource", "table_source"]


class TableSource:
    """``data.source: files``: a table of CSV and Parquet files."""

    def identify(self, data: DataConfig) -> dict[str, Any]:
        """What identifies the table ``data.url`` names: its files' keys, sizes, versions; how it is read and cut.

        Under ``data.window`` only the files that may hold the window's rows are named.

        Raises:
            DataValidationError: no file matches ``data.url``, or a file is neither CSV nor Parquet.
        """
        files = tabular.list_files(data.url or "")
        time_window = None
        if data.window is not None and data.window.column:  # the files that may hold the window's rows
            files = window.files_for_time_window(files, data.window, url=data.url or "")
            start, end = window.bounds(data.window)
            time_window = {"column": data.window.column, "from": start.isoformat(), "to": end.isoformat()}
        elif data.window is not None:  # the fingerprint covers the window's files only
            files = window.in_window(files, data.window, url=data.url or "")
        return {
            "source": "files",
            "files": tabular.identity(files),
            "columns": data.feature_columns,
            "types": {name: spec.type for name, spec in data.columns.items()} if data.columns else None,  # type: ignore[union-attr]
            "missing": data.missing,
            "label": data.label_column,
            "slice_columns": data.slice_columns,
            "classes": data.classes,
            **({"time_window": time_window} if time_window else {}),  # absent: fingerprints as before
            **arrays.cut_identity(data),
        }

    def load(
        self, data: DataConfig, identity: dict[str, Any], *, downloaded: dict[str, Path] | None = None
    ) -> SourceData:
        """The table's files, read as typed columns and split by row hashes.

        Args:
            data: the recipe's ``data`` section.
            identity: what :meth:`identify` returned.
            downloaded: file URL -> a local copy fetched beforehand; None to fetch the files here.
        """
        files = tabular.from_identity(identity["files"])
        return table_source(table_reading.read_table(files, data, downloaded=downloaded), data, identity)


def table_source(table: Table, data: DataConfig, identity: dict[str, Any]) -> SourceData:
    """Rows read from files (a table, or a part of one file), split and stored in blocks under ``identity``.

    Args:
        table: the rows read.
        data: the recipe's ``data`` section (its URL names the dataset).
        identity: the identity of the table, or of the file or part the rows are.
    """
    name = (data.url or "files").rstrip("/").rsplit("/", 1)[-1].split(".")[0].split("*")[0]
    return arrays.from_arrays(
        table.arrays,
        table.labels,
        data=data,
        name=name or "files",
        class_names=table.class_names,
        identity=identity,
        column_types=table.column_types,
        ignored_columns=table.ignored_columns,
        slices=table.slices,
        split_keys=table.split_keys,
    )


register_source("files", TableSource())
