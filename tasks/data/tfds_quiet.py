"""What TFDS says that a kerasflow run has no use for, kept off the terminal and the run's log.

- TFDS's own decoder reads ``FeatureConnector.dtype``, which TFDS itself deprecates, and
  warns through absl each time a split is read (ten lines a run): :func:`install` drops
  that one warning from the ``absl`` logger, nothing else.
- Storing a dataset, TFDS prints "Downloading and preparing dataset Unknown size ..." and
  "... downloaded and prepared to ...", which Prefect's ``log_prints`` turns into log lines,
  for arrays already in memory where nothing is downloaded; and warns that the folder it
  fills has no ``dataset_info.json`` yet. :func:`quiet_store` silences both while a store
  runs (counted: stores in several threads restore what the first one found once the last
  one ends).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

__all__ = ["install", "quiet_store"]

_DEPRECATED_DTYPE = "`FeatureConnector.dtype` is deprecated"


class _TfdsDeprecationFilter(logging.Filter):
    """Drops TFDS's warning about its own use of ``FeatureConnector.dtype``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_DEPRECATED_DTYPE)


_FILTER = _TfdsDeprecationFilter()


def install() -> None:
    """Drop TFDS's deprecation warning about its own decoder from the ``absl`` logger (once per process)."""
    absl = logging.getLogger("absl")
    if _FILTER not in absl.filters:
        absl.addFilter(_FILTER)


_lock = threading.Lock()
_stores = 0  # stores under way (files stored at once in threads, tasks/ingest/file_runs.py)
_level = logging.NOTSET
_printers: dict[str, object] = {}


@contextlib.contextmanager
def quiet_store() -> Iterator[None]:
    """absl at ERROR, and TFDS's download messages muted, while any store of kerasflow's runs."""
    global _stores, _level
    from tensorflow_datasets.core import dataset_builder

    absl = logging.getLogger("absl")
    builder = dataset_builder.DatasetBuilder
    with _lock:
        if _stores == 0:
            _level = absl.level
            absl.setLevel(logging.ERROR)
            for name in ("_log_download_bytes", "_log_download_done"):
                _printers[name] = builder.__dict__[name]
                setattr(builder, name, lambda self: None)
        _stores += 1
    try:
        yield
    finally:
        with _lock:
            _stores -= 1
            if _stores == 0:
                absl.setLevel(_level)
                for name, printer in _printers.items():
                    setattr(builder, name, printer)
