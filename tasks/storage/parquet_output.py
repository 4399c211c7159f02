"""Parquet written row group by row group that appears whole at its URL or not at all.

Scoring writes its predictions through :class:`ParquetOutput` as it goes, so memory holds
one row group, and a failed or killed scoring leaves no half-written table behind.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

from kerasflow.tasks import storage
from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.storage.output_location import check_replaceable

__all__ = ["ParquetOutput"]


class ParquetOutput:
    """A Parquet file written row group by row group that appears whole at ``url`` or not at all.

    ``metadata``: key-value pairs added to the file's footer (scores carry
    ``kerasflow.scores``, so a later run knows it may replace them).

    The row groups go to a file aside (beside the target on a disk, in a temporary folder
    for an object store); on a clean exit it is renamed over the target or PUT in one
    call, on an error it is removed. Memory holds one row group, not the table.

    Args:
        url: where the file appears: a local path or any fsspec URL.
        metadata: key-value pairs added to the file's footer.
    """

    def __init__(self, url: str, *, metadata: dict[bytes, bytes] | None = None):
        self.url = url
        self.metadata = dict(metadata or {})
        self.rows = 0
        self._writer = None
        self._schema = None

    def __enter__(self) -> ParquetOutput:
        if storage.is_local(self.url):
            self._target = Path(self.url.removeprefix("file://"))
            self._target.parent.mkdir(parents=True, exist_ok=True)
            self._scratch = None
            self._partial = self._target.with_name(f".{self._target.name}.{uuid.uuid4().hex[:8]}.partial")
        else:
            self._scratch = tempfile.TemporaryDirectory(prefix="kerasflow-score-")
            self._partial = Path(self._scratch.name) / "scores.parquet"
        return self

    def write(self, frame, *, source: str) -> None:
        """Append ``frame`` to the file as one row group.

        Args:
            frame: a pandas DataFrame; after the first, its columns must cast to the first one's types.
            source: names the rows in an error (the file they were read from).

        Raises:
            DataValidationError: the columns' types do not cast to the first frame's.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._schema = table.schema.with_metadata({**(table.schema.metadata or {}), **self.metadata})
            table = table.replace_schema_metadata(self._schema.metadata)
            self._writer = pq.ParquetWriter(self._partial, self._schema)
        elif not table.schema.equals(self._schema, check_metadata=False):
            try:
                table = table.cast(self._schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as error:
                changed = [f.name for f in table.schema if f not in self._schema]
                raise DataValidationError(
                    f"{source}: check 'consistent columns' failed: column(s) {changed} have types "
                    f"{[str(table.schema.field(n).type) for n in changed]} where earlier rows had "
                    f"{[str(self._schema.field(n).type) for n in changed if n in self._schema.names]} "
                    f"({error}); give the column one type in every file"
                ) from None
        self._writer.write_table(table)
        self.rows += len(frame)

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
            if kind is None:
                if self._writer is None:
                    raise RuntimeError("ParquetOutput closed without a single write")
                if self._scratch is None:
                    # Checked before scoring too; a link or a device put there since is not replaced.
                    check_replaceable(os.fspath(self._target), overwrite=True)
                    os.replace(self._partial, self._target)
                else:
                    fs, path = storage.filesystem(self.url)
                    with storage.reaching(self.url):
                        fs.put_file(os.fspath(self._partial), path)
        finally:
            if self._scratch is None:
                self._partial.unlink(missing_ok=True)
            else:
                self._scratch.cleanup()
