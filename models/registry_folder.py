"""A model registry's folder on any fsspec URL, as every layer of the registry reads it.

The names of the layout (models/registry.py draws it whole), where a model and its
versions live, small JSON objects read whole and created exclusively, listings fresh from
the store, and the versions visible there, each with a later review laid over it. The
alias history (models/aliases.py) and the writing of versions (models/registry.py) build
on :class:`RegistryFolder`; others use the ModelRegistry of models/registry.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import fsspec

from kerasflow.models.errors import ConfigError
from kerasflow.models.exclusive import create_exclusive
from kerasflow.models.names import NAME_PATTERN, validate_name

__all__ = [
    "CLAIM_FILE",
    "CLAIM_SECONDS",
    "METADATA_FILE",
    "MODEL_FILE",
    "REVIEW_FILE",
    "SAVED_MODEL_DIR",
    "RegistryError",
    "RegistryFolder",
]

MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
CLAIM_FILE = "claim.json"
REVIEW_FILE = "review.json"
SAVED_MODEL_DIR = "saved_model"
# Folders of a storage root (tasks/storage): a registry given one of these is its root, not itself.
STORAGE_ROOT_FOLDERS = ("registry", "datasets", "runs")


# A registration renews its claim every third of this; a claim not renewed for this long
# is its writer's no more (a killed process on another host).
CLAIM_SECONDS = 120.0


class RegistryError(ConfigError, RuntimeError):
    """A registry operation that cannot succeed as asked (unknown name, version, alias): a retry repeats it.

    A ConfigError: the command line or recipe named something that is not there (exit 2).
    """


def utc_now() -> str:
    """Now, in UTC, to the second, as the registry records times (ISO 8601)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class RegistryFolder:
    """One registry URL's models and their visible versions, read; the base of ModelRegistry.

    Args:
        url: the registry's root: a local folder or any fsspec URL (``s3://bucket/registry``).
        storage_options: keyword arguments of the fsspec filesystem (``fsspec.core.url_to_fs``).
        claim_seconds: how long a version's claim stays live without renewal, in seconds (the writers of
            models/registry.py renew it every third of that).
    """

    def __init__(
        self, url: str, *, storage_options: Mapping[str, Any] | None = None, claim_seconds: float = CLAIM_SECONDS
    ):
        self.url = url.rstrip("/")
        self.claim_seconds = claim_seconds
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **dict(storage_options or {}))
        self.root = self.root.rstrip("/")

    # ---- paths -------------------------------------------------------------------------
    def _model_dir(self, name: str) -> str:
        return f"{self.root}/{validate_name(name)}"

    def _version_dir(self, name: str, version: int) -> str:
        return f"{self._model_dir(name)}/versions/{int(version)}"

    def version_url(self, name: str, version: int) -> str:
        """Where version ``version`` of ``name`` lives, as a URL users can open.

        Args:
            name: the model's name.
            version: the version number.
        """
        return self.fs.unstrip_protocol(self._version_dir(name, version))

    # ---- small JSON objects ------------------------------------------------------------
    def _read_json(self, path: str) -> dict[str, Any]:
        with self.fs.open(path, "rb") as f:
            body = f.read()
        try:
            return json.loads(body)
        except ValueError as error:  # invalid JSON or text: still a ValueError, now naming the file
            raise ValueError(f"{self.fs.unstrip_protocol(path)} is not valid JSON: {error}") from error

    def _create_json(self, path: str, payload: Mapping[str, Any]) -> bool:
        """Create ``path`` exclusively and whole; False when it exists already."""
        return create_exclusive(self.fs, path, json.dumps(payload, indent=2, sort_keys=True).encode())

    def _ls(self, directory: str) -> list[str]:
        """A fresh listing: s3fs caches listings per process, and a stale one would make a
        long-lived worker miss new versions and alias moves, or retry one taken sequence
        number forever."""
        self.fs.invalidate_cache(directory)
        return self.fs.ls(directory, detail=False)

    def _numbered(self, directory: str, suffix: str = "") -> list[int]:
        try:
            entries = self._ls(directory)
        except (FileNotFoundError, NotADirectoryError):  # a file where a model's folder would be holds none
            return []
        numbers = []
        for entry in entries:
            stem = entry.rstrip("/").rsplit("/", 1)[-1].removesuffix(suffix)
            if stem.isdigit():
                numbers.append(int(stem))
        return sorted(numbers)

    # ---- reading -----------------------------------------------------------------------
    def names(self) -> list[str]:
        """Names that have at least one visible version."""
        try:
            entries = self._ls(self.root)
        except FileNotFoundError:
            return []
        names = [e.rstrip("/").rsplit("/", 1)[-1] for e in entries]
        return sorted(n for n in names if NAME_PATTERN.fullmatch(n) and self.versions(n))

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Metadata of every visible version of ``name`` (metadata.json exists), oldest first."""
        found = []
        for number in self._numbered(f"{self._model_dir(name)}/versions"):
            try:
                found.append(self._with_review(self._read_json(f"{self._version_dir(name, number)}/{METADATA_FILE}")))
            except FileNotFoundError:
                continue  # claimed but unfinished: invisible by design
        return found

    def _with_review(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """metadata.json is never rewritten; a review recorded later is laid over it."""
        review = self._try_read(f"{self._version_dir(metadata['name'], metadata['version'])}/{REVIEW_FILE}")
        if review is None:
            return metadata
        status = metadata.get("status") if review.get("approved") else "rejected"
        return {**metadata, "status": status, "review": review}

    def get(self, name: str, version: int) -> dict[str, Any]:
        """Metadata of one version; RegistryError when it does not exist (yet).

        Args:
            name: the model's name.
            version: the version number.

        Raises:
            RegistryError: the version does not exist, or its metadata.json is not written yet.
        """
        try:
            return self._with_review(self._read_json(f"{self._version_dir(name, version)}/{METADATA_FILE}"))
        except FileNotFoundError:
            fix = self._storage_root_hint() or f"`kerasflow models list {name}` shows the versions there are"
            raise RegistryError(f"model {name!r} has no version {version}; {fix}") from None

    def _storage_root_hint(self) -> str | None:
        """What to use instead when this URL is a storage root rather than its registry; None when it is not.

        A storage root holds ``registry/`` (or ``datasets/``, ``runs/``) and no model of its
        own; given one, a failed lookup names the registry inside it, not only the missing
        alias or version. Listed only once a lookup has failed.
        """
        try:
            entries = {entry.rstrip("/").rsplit("/", 1)[-1] for entry in self._ls(self.root)}
        except (FileNotFoundError, NotADirectoryError):
            return None
        found = [folder for folder in STORAGE_ROOT_FOLDERS if folder in entries]
        if not found or self.names():
            return None
        held = ", ".join(f"{folder}/" for folder in found)
        return f"{self.url} looks like a storage root (it holds {held}); use ModelRegistry('{self.url}/registry')"

    def _try_read(self, path: str) -> dict[str, Any] | None:
        try:
            return self._read_json(path)
        except FileNotFoundError:
            return None
