"""Sources of examples: one module each behind the :class:`Source` protocol, found by ``data.source``.

Built in: ``sample`` (samples.py: tables and images scikit-learn ships), ``files``
(tables/: CSV and Parquet files), ``images`` (images.py: a folder per class) and ``tfds``
(tfds_source.py: a registered TFDS dataset); a ``files`` URL that is a prepared TFDS folder
is read by tfds_source.py's ``prepared_tfds``. A team adds its own with
:func:`register_source`, or from an installed package through the ``kerasflow.sources``
entry point group (models/plugins.py).

Opening a source is two steps, so that unchanged data costs a listing and no download:
:func:`identify` names the content cheaply (TFDS name, version, config and splits; the
files' keys, sizes and ETags; the bundled sample's checksum) and gives the fingerprint;
:func:`load_source` reads it into a :class:`SourceData` (the splits and their TFDS
feature spec), only when that fingerprint is new. What sources share lives beside them:
arrays.py (rows held as arrays, split by their hashes and stored in blocks), files.py
(listing and fetching files) and downloads.py; a source never imports another, and this
module imports none of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from kerasflow.models.plugins import PluginRegistry
from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.data.source_data import SLICE_PREFIX, SPLITS, SourceData, fingerprint
from kerasflow.tasks.failures import ConfigError
from kerasflow.tasks.ingest.sources.files import is_tfds_dir

__all__ = [
    "SLICE_PREFIX",
    "SOURCE_REGISTRY",
    "SPLITS",
    "Source",
    "SourceData",
    "check_source",
    "fingerprint",
    "identify",
    "is_tfds_dir",
    "load_source",
    "register_source",
    "source_name",
]


class Source(Protocol):
    """A kind of data: how it is named cheaply, and how it is read when that name is new."""

    def identify(self, data: DataConfig) -> dict[str, Any]:
        """What identifies the content ``data`` names, without reading it all (its fingerprint's input)."""
        ...

    def load(
        self, data: DataConfig, identity: dict[str, Any], *, downloaded: dict[str, Path] | None = None
    ) -> SourceData:
        """The content ``identity`` names, read and split; ``downloaded``: local copies fetched beforehand.

        Args:
            data: the recipe's ``data`` section.
            identity: what :meth:`identify` returned for ``data``.
            downloaded: a table's file URL -> a local copy fetched beforehand; None when nothing was.
        """
        ...


# A `data.source: files` URL that is a prepared TFDS folder is read by this source.
PREPARED_TFDS = "prepared_tfds"

SOURCE_REGISTRY: PluginRegistry[Source] = PluginRegistry(
    setting="data.source",
    group="kerasflow.sources",
    built_in={
        "sample": "kerasflow.tasks.ingest.sources.samples",
        "files": "kerasflow.tasks.ingest.sources.tables.source",
        "images": "kerasflow.tasks.ingest.sources.images",
        "tfds": "kerasflow.tasks.ingest.sources.tfds_source",
        PREPARED_TFDS: "kerasflow.tasks.ingest.sources.tfds_source",
    },
    error=ConfigError,
    accepts=lambda loaded: callable(getattr(loaded, "identify", None)) and callable(getattr(loaded, "load", None)),
)


def register_source(name: str, source: Source) -> Source:
    """Make ``source`` the reader of ``data.source: <name>``; returns it.

    Args:
        name: the value of ``data.source`` that selects it.
        source: an object with ``identify(data)`` and ``load(data, identity, *, downloaded)``.
    """
    return SOURCE_REGISTRY.register(name, source)


def source_name(data: DataConfig, identity: dict[str, Any] | None = None) -> str:
    """The source that reads ``data``: ``data.source``, or ``prepared_tfds`` for a prepared TFDS folder.

    Args:
        data: the recipe's ``data`` section.
        identity: the source's identity, when known; without it, a ``files`` URL is looked at.
    """
    if data.source == "files":
        prepared = "tfds_dir" in identity if identity is not None else is_tfds_dir(data.url or "")
        if prepared:
            return PREPARED_TFDS
    return data.source


def check_source(data: DataConfig) -> None:
    """Refuse, before any work, a ``data.source`` no source is registered for (nothing is imported).

    Raises:
        ConfigError: naming the sources there are.
    """
    names = [name for name in SOURCE_REGISTRY.names() if name != PREPARED_TFDS]
    if data.source not in names:
        raise ConfigError(f"received data.source={data.source!r}, expected one of {names}")


def identify(data: DataConfig) -> dict[str, Any]:
    """What identifies the content the config names, without reading it all.

    Raises:
        ConfigError: no source is registered for ``data.source``.
    """
    return SOURCE_REGISTRY.get(source_name(data)).identify(data)


def load_source(
    data: DataConfig, identity: dict[str, Any] | None = None, *, downloaded: dict[str, Path] | None = None
) -> SourceData:
    """Read the source the config names; ``identity`` from :func:`identify` if known.

    ``downloaded``: local copies of a table's files fetched beforehand, by URL.

    Args:
        data: the recipe's ``data`` section.
        identity: the source's identity; None to identify it here.
        downloaded: a table's file URL -> a local copy fetched beforehand; None when nothing was.

    Raises:
        ConfigError: no source is registered for ``data.source``.
    """
    identity = identity or identify(data)
    return SOURCE_REGISTRY.get(source_name(data, identity)).load(data, identity, downloaded=downloaded)
