"""A versioned model registry over any fsspec URL, with no server.

Layout under the registry URL::

    <name>/versions/<N>/claim.json      exclusive claim of version N (small, written first)
    <name>/versions/<N>/model.keras     the model
    <name>/versions/<N>/saved_model/    the same model exported for TF Serving
    <name>/versions/<N>/metadata.json   written last: a version exists once this exists
    <name>/versions/<N>/review.json     a person's approval or rejection, written once
    <name>/aliases/<alias>/<seq>.json   append-only history of where an alias pointed

Every commit point is a small object created exclusively (``open(path, "xb")``:
``O_EXCL`` on a local disk, ``If-None-Match`` on S3), so concurrent writers never take the
same version number or alias sequence and nothing is overwritten.

A registration keeps its claim live while it copies (models/liveness.py: the claim names
its process and an expiry a heartbeat pushes forward), and :meth:`ModelRegistry.gc`
never removes a live claim, however long a slow upload takes. Before the commit the
writer checks that its claim is still there and every file it copied is, whole; a
version is never committed without its model.

The registry is three modules, each a layer of :class:`ModelRegistry`: the folder as it
is read (models/registry_folder.py: paths, JSON objects, listings, the visible versions),
the alias history (models/aliases.py), and here the writing of versions under their
claims, reviews, the removal of unfinished versions, and loading.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kerasflow.models import io
from kerasflow.models.aliases import AliasHistory, AliasMoved
from kerasflow.models.errors import KerasflowError
from kerasflow.models.exclusive import replace_whole
from kerasflow.models.folders import folder_usage
from kerasflow.models.liveness import Heartbeat, holder_fields, is_live
from kerasflow.models.names import NAME_PATTERN, parse_model_ref, validate_name
from kerasflow.models.registry_folder import (
    CLAIM_FILE,
    METADATA_FILE,
    MODEL_FILE,
    REVIEW_FILE,
    SAVED_MODEL_DIR,
    RegistryError,
    utc_now,
)

__all__ = [
    "NAME_PATTERN",
    "AliasMoved",
    "ModelRegistry",
    "RegistryError",
    "VersionClaimLost",
    "parse_model_ref",
    "validate_name",
]

_RESERVED = (MODEL_FILE, METADATA_FILE, CLAIM_FILE, REVIEW_FILE, SAVED_MODEL_DIR)


class VersionClaimLost(KerasflowError, RuntimeError):
    """The claim or files of a version being written vanished before its commit; retrying registers anew."""


class ModelRegistry(AliasHistory):
    """Model versions and aliases under one fsspec URL (``./dir``, ``file://``, ``s3://``).

    Args:
        url: the registry's root: a local folder or any fsspec URL (``s3://bucket/registry``).
        storage_options: keyword arguments of the fsspec filesystem (``fsspec.core.url_to_fs``).
        claim_seconds: how long a version's claim stays live without renewal, in seconds; a registration
            renews it every third of that.
    """

    # ---- reading -----------------------------------------------------------------------
    def resolve(self, name: str, ref: str | int) -> dict[str, Any]:
        """Metadata for ``ref``: a version number or an alias name.

        Args:
            name: the model's name.
            ref: a version number (an int, or text of digits) or an alias name.

        Raises:
            RegistryError: there is no such version or alias.
        """
        if isinstance(ref, int) or str(ref).isdigit():
            return self.get(name, int(ref))
        version = self.alias_target(name, str(ref))
        if version is None:
            hint = self._storage_root_hint()
            raise RegistryError(f"model {name!r} has no alias {ref!r}" + (f"; {hint}" if hint else ""))
        return self.get(name, version)

    # ---- writing -----------------------------------------------------------------------
    def register(
        self,
        name: str,
        *,
        model_file: str | os.PathLike,
        metadata: Mapping[str, Any],
        idempotency_key: str,
        saved_model_dir: str | os.PathLike | None = None,
        extra_files: Mapping[str, str | os.PathLike] | None = None,
    ) -> dict[str, Any]:
        """Store ``model_file`` (and a SavedModel export) as the next version of ``name``.

        ``extra_files`` maps a path inside the version (``plots/learning_curves.png``) to a
        local file to store there, before the metadata makes the version visible.

        ``idempotency_key`` identifies the candidate (e.g. run id and model sha256): a
        retried registration of the same candidate finds its earlier claim and returns
        that version instead of taking a new one.

        Args:
            name: the model's name.
            model_file: the local ``.keras`` file.
            metadata: fields recorded in the version's metadata.json; the registry's own (``name``, ``version``,
                ``sha256``, ``model_uri``, ``saved_model_uri``, ``files``, ``registered_at``) replace any of the same
                name.
            idempotency_key: identifies the candidate (a run id and the model's sha256); a retried registration
                with the same key returns the version it took.
            saved_model_dir: a local SavedModel folder, stored under ``saved_model/``; None: none.
            extra_files: path inside the version (``plots/learning_curves.png``) -> the local file stored there.

        Returns:
            The version's metadata as committed; for a retried candidate, its earlier version's.

        Raises:
            RegistryError: an extra file's path is absolute, holds ``..`` or starts with a name the registry
                writes itself.
            VersionClaimLost: the claim or a copied file vanished before the commit, or the claim was not renewed
                for most of ``claim_seconds``.
        """
        for relative in extra_files or {}:
            if relative.startswith("/") or ".." in relative.split("/") or relative.split("/")[0] in _RESERVED:
                raise RegistryError(f"received extra file {relative!r}, expected a relative path outside {_RESERVED}")
        sha256 = io.sha256_file(model_file)
        version, claim = self._claim_version(name, idempotency_key)
        directory = self._version_dir(name, version)
        existing = self._try_read(f"{directory}/{METADATA_FILE}")
        if existing is not None:
            return existing
        renew = Heartbeat(lambda: self._renew_claim(name, version, claim), interval=self.claim_seconds / 3)
        with renew:
            copied = {f"{directory}/{MODEL_FILE}": os.fspath(model_file)}
            saved_model_uri = None
            if saved_model_dir is not None:
                local = Path(saved_model_dir)
                for p in sorted(p for p in local.rglob("*") if p.is_file()):
                    copied[f"{directory}/{SAVED_MODEL_DIR}/{p.relative_to(local).as_posix()}"] = os.fspath(p)
                saved_model_uri = self.fs.unstrip_protocol(f"{directory}/{SAVED_MODEL_DIR}")
            files = {}
            for relative, local_file in sorted((extra_files or {}).items()):
                copied[f"{directory}/{relative}"] = os.fspath(local_file)
                files[relative] = self.fs.unstrip_protocol(f"{directory}/{relative}")
            for parent in sorted({target.rsplit("/", 1)[0] for target in copied}):
                self.fs.makedirs(parent, exist_ok=True)
            self.fs.put(list(copied.values()), list(copied))  # one concurrent call on object stores
            record = self._version_record(
                metadata,
                name=name,
                version=version,
                sha256=sha256,
                saved_model_uri=saved_model_uri,
                files=files,
            )
            self._check_before_commit(name, version, claim, copied=copied, silent_for=renew.silent_for())
            self._create_json(f"{directory}/{METADATA_FILE}", record)
        return self._read_json(f"{directory}/{METADATA_FILE}")

    def _version_record(
        self,
        metadata: Mapping[str, Any],
        *,
        name: str,
        version: int,
        sha256: str,
        saved_model_uri: str | None,
        files: dict[str, str],
    ) -> dict[str, Any]:
        directory = self._version_dir(name, version)
        return {
            **metadata,
            "name": name,
            "version": version,
            "sha256": sha256,
            "model_uri": self.fs.unstrip_protocol(f"{directory}/{MODEL_FILE}"),
            "saved_model_uri": saved_model_uri,
            "files": files,
            "registered_at": utc_now(),
        }

    def _check_before_commit(
        self, name: str, version: int, claim: dict[str, Any], *, copied: Mapping[str, str], silent_for: float
    ) -> None:
        """Refuse to commit a version whose claim or files are gone, or whose claim may have looked dead."""
        directory = self._version_dir(name, version)
        lost = None
        if silent_for > 0.8 * self.claim_seconds:
            lost = f"its claim was not renewed for {silent_for:.0f}s, so a `models gc` may have taken it for dead"
        elif (self._try_read(f"{directory}/{CLAIM_FILE}") or {}).get("idempotency_key") != claim["idempotency_key"]:
            lost = "its claim was removed while the version was being written"
        else:
            self.fs.invalidate_cache(directory)
            stored = {info["name"].rstrip("/"): info for info in self.fs.find(directory, detail=True).values()}
            for target, local_file in copied.items():
                info = stored.get(target.rstrip("/"))
                if info is None or int(info.get("size") or 0) != os.path.getsize(local_file):
                    lost = f"{target.rsplit('/', 1)[-1]} is missing or incomplete after it was copied"
                    break
        if lost is not None:
            raise VersionClaimLost(
                f"{name} v{version} was not committed: {lost} (a `kerasflow models gc` with a grace shorter than "
                "a registration?). Nothing was made visible; registering again takes a new version (the register "
                "step retries on its own)"
            )

    def _claim_version(self, name: str, idempotency_key: str) -> tuple[int, dict[str, Any]]:
        """(the version this candidate writes, its claim): its earlier claim, renewed, or the next free number."""
        numbers = self._numbered(f"{self._model_dir(name)}/versions")
        for number in reversed(numbers):
            claim = self._try_read(f"{self._version_dir(name, number)}/{CLAIM_FILE}")
            if claim and claim.get("idempotency_key") == idempotency_key:
                if not self.fs.exists(f"{self._version_dir(name, number)}/{METADATA_FILE}"):
                    self._renew_claim(name, number, claim)
                return number, claim
        candidate = (numbers[-1] if numbers else 0) + 1
        claim = {"idempotency_key": idempotency_key, "claimed_at": utc_now()}
        while not self._create_json(
            f"{self._version_dir(name, candidate)}/{CLAIM_FILE}", {**claim, **holder_fields(self.claim_seconds)}
        ):
            candidate += 1  # another writer took it between our listing and our create
        return candidate, claim

    def _renew_claim(self, name: str, version: int, claim: dict[str, Any]) -> None:
        """Push the claim's expiry forward while it is still this writer's (never recreate a removed one)."""
        path = f"{self._version_dir(name, version)}/{CLAIM_FILE}"
        current = self._try_read(path)
        if current is None or current.get("idempotency_key") != claim["idempotency_key"]:
            raise StopIteration  # gone: the check before the commit says so
        body = {"idempotency_key": claim["idempotency_key"], "claimed_at": claim["claimed_at"]}
        replace_whole(self.fs, path, json.dumps({**body, **holder_fields(self.claim_seconds)}, indent=2).encode())

    def record_review(self, name: str, version: int, *, approved: bool, reviewer: str, comment: str) -> dict[str, Any]:
        """Record a person's decision on ``version`` once; a rejected version can never take an alias.

        Returns the review on record: this one, or an earlier one (a review is not changed).

        Args:
            name: the model's name.
            version: the version number.
            approved: True to approve the version, False to reject it.
            reviewer: who decided.
            comment: their reason, as written.

        Raises:
            RegistryError: the version does not exist.
        """
        self.get(name, version)
        review = {"approved": bool(approved), "reviewer": reviewer, "comment": comment, "reviewed_at": utc_now()}
        path = f"{self._version_dir(name, version)}/{REVIEW_FILE}"
        if not self._create_json(path, review):
            return self._read_json(path)
        return review

    # ---- cleaning ----------------------------------------------------------------------
    def unfinished(self, name: str) -> list[dict[str, Any]]:
        """Claimed versions that have no metadata.json: a writer died, or is still writing (``live``)."""
        found = []
        for number in self._numbered(f"{self._model_dir(name)}/versions"):
            directory = self._version_dir(name, number)
            if self.fs.exists(f"{directory}/{METADATA_FILE}"):
                continue
            claim = self._try_read(f"{directory}/{CLAIM_FILE}") or {}
            found.append(
                {"version": number, "claimed_at": claim.get("claimed_at"), "path": directory, "live": is_live(claim)}
            )
        return found

    def gc(self, name: str, *, grace: timedelta = timedelta(hours=1), now: datetime | None = None) -> list[int]:
        """Remove unfinished versions claimed longer than ``grace`` ago whose writer is gone; return their numbers.

        A version is committed by its metadata.json. One without it is left alone while
        its claim is live (its writer renews it, however long the copy takes) and while
        it is younger than ``grace`` (a claim written by a kerasflow that did not renew
        claims); after both, its writer died.

        Args:
            name: the model's name.
            grace: the age a claim must reach before its version is removed; the version folder's newest file
                gives the age when the claim cannot be read.
            now: the time ages are measured to; None: the current time.
        """
        now = now or datetime.now(UTC)
        removed = []
        for entry in self.unfinished(name):
            if entry["live"]:
                continue  # its writer is still at work, however long it takes
            claimed = entry["claimed_at"]
            age = now - datetime.fromisoformat(claimed) if claimed else None
            if age is None:
                # No readable claim: the writer died before its claim landed. Use the folder's age.
                age = now - self._modified(entry["path"])
            if age >= grace:
                self.fs.rm(entry["path"], recursive=True)
                removed.append(entry["version"])
        return removed

    def _modified(self, path: str) -> datetime:
        return folder_usage(self.fs, path).newest or datetime.now(UTC)

    # ---- loading -----------------------------------------------------------------------
    def fetch_model(self, name: str, version: int, local_dir: str | os.PathLike) -> Path:
        """Copy a version's model file to ``local_dir`` and verify its sha256.

        Args:
            name: the model's name.
            version: the version number.
            local_dir: the local folder the file is written into, as ``<name>-v<version>.keras``; made when
                missing.

        Returns:
            The local file's path.

        Raises:
            RegistryError: the version does not exist.
            ModelIntegrityError: the copy's sha256 is not the one in the version's metadata; the copy is removed.
        """
        metadata = self.get(name, version)
        target = Path(local_dir) / f"{name}-v{version}.keras"
        target.parent.mkdir(parents=True, exist_ok=True)
        self.fs.get_file(f"{self._version_dir(name, version)}/{MODEL_FILE}", os.fspath(target))
        actual = io.sha256_file(target)
        if actual != metadata["sha256"]:
            target.unlink(missing_ok=True)
            raise io.ModelIntegrityError(
                f"{name} v{version}: model file has sha256 {actual}, expected "
                f"{metadata['sha256']} from its metadata; the stored file was changed or "
                "corrupted. Promote another version or re-register this one from its run."
            )
        return target

    def load(self, name: str, ref: str | int, *, trusted_packages: Iterable[str] = ()):
        """Load a version (number or alias) as a Keras model, verified, inspected and in safe mode.

        ``trusted_packages`` come from the caller (the recipe), never from the version's
        metadata: the registry's contents are untrusted.

        Args:
            name: the model's name.
            ref: a version number or an alias name.
            trusted_packages: packages whose registered Keras classes the model may use.

        Raises:
            RegistryError: there is no such version or alias.
            ModelFileError: the file was changed, breaks a bound, names code kerasflow does not load, or Keras
                could not load it.
        """
        metadata = self.resolve(name, ref)
        with tempfile.TemporaryDirectory(prefix="kerasflow-model-") as tmp:
            path = self.fetch_model(name, metadata["version"], tmp)
            try:
                return io.load_model(path, expected_sha256=metadata["sha256"], trusted_packages=trusted_packages)
            except io.ModelFileError as error:
                # Name the version, not the temporary copy that was inspected.
                where = f"{name} v{metadata['version']} ({self.version_url(name, metadata['version'])}/{MODEL_FILE})"
                raise type(error)(str(error).replace(f"model file {path}", f"model file of {where}")) from None
