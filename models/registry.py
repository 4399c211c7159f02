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
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fsspec

from kerasflow.models import io
from kerasflow.models.errors import ConfigError, KerasflowError
from kerasflow.models.exclusive import create_exclusive, replace_whole
from kerasflow.models.folders import folder_usage
from kerasflow.models.liveness import Heartbeat, holder_fields, is_live
from kerasflow.models.names import NAME_PATTERN, parse_model_ref, validate_name

__all__ = [
    "NAME_PATTERN",
    "AliasMoved",
    "ModelRegistry",
    "RegistryError",
    "VersionClaimLost",
    "parse_model_ref",
    "validate_name",
]

# set_alias(expected_version=ANY_VERSION): move the alias from wherever it points.
ANY_VERSION: Any = object()

MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
CLAIM_FILE = "claim.json"
REVIEW_FILE = "review.json"
SAVED_MODEL_DIR = "saved_model"
_RESERVED = (MODEL_FILE, METADATA_FILE, CLAIM_FILE, REVIEW_FILE, SAVED_MODEL_DIR)


# A registration renews its claim every third of this; a claim not renewed for this long
# is its writer's no more (a killed process on another host).
CLAIM_SECONDS = 120.0


class RegistryError(ConfigError, RuntimeError):
    """A registry operation that cannot succeed as asked (unknown name, version, alias): a retry repeats it.

    A ConfigError: the command line or recipe named something that is not there (exit 2).
    """


class AliasMoved(RegistryError):
    """An alias no longer points where the caller expected when it asked to move it.

    Args:
        message: the error message.
        current: the version the alias points at now; None when it points nowhere.
    """

    def __init__(self, message: str, *, current: int | None):
        super().__init__(message)
        self.current = current


class VersionClaimLost(KerasflowError, RuntimeError):
    """The claim or files of a version being written vanished before its commit; retrying registers anew."""


def _version_name(version: int | None) -> str:
    return "no version" if version is None else f"v{version}"


def _utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ModelRegistry:
    """Model versions and aliases under one fsspec URL (``./dir``, ``file://``, ``s3://``).

    Args:
        url: the registry's root: a local folder or any fsspec URL (``s3://bucket/registry``).
        storage_options: keyword arguments of the fsspec filesystem (``fsspec.core.url_to_fs``).
        claim_seconds: how long a version's claim stays live without renewal, in seconds; a registration
            renews it every third of that.
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

    def _alias_dir(self, name: str, alias: str) -> str:
        return f"{self._model_dir(name)}/aliases/{validate_name(alias, what='alias')}"

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
        except FileNotFoundError:
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
            raise RegistryError(
                f"model {name!r} has no version {version}; `kerasflow models list {name}` shows the versions there are"
            ) from None

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
            raise RegistryError(f"model {name!r} has no alias {ref!r}")
        return self.get(name, version)

    def alias_history(self, name: str, alias: str) -> list[dict[str, Any]]:
        """Every move of ``alias``, oldest first.

        Args:
            name: the model's name.
            alias: the alias.

        Returns:
            The entries as :meth:`set_alias` wrote them; empty when the alias never pointed anywhere.
        """
        directory = self._alias_dir(name, alias)
        return [self._read_json(f"{directory}/{seq}.json") for seq in self._numbered(directory, ".json")]

    def alias_target(self, name: str, alias: str) -> int | None:
        """The version ``alias`` points at now (its highest sequence), or None.

        Args:
            name: the model's name.
            alias: the alias.
        """
        sequences = self._numbered(self._alias_dir(name, alias), ".json")
        if not sequences:
            return None
        return self._read_json(f"{self._alias_dir(name, alias)}/{sequences[-1]}.json")["version"]

    def aliases(self, name: str) -> dict[str, int]:
        """Every alias of ``name`` and the version it points at now."""
        try:
            entries = self._ls(f"{self._model_dir(name)}/aliases")
        except FileNotFoundError:
            return {}
        result = {}
        for entry in entries:
            alias = entry.rstrip("/").rsplit("/", 1)[-1]
            target = self.alias_target(name, alias) if NAME_PATTERN.fullmatch(alias) else None
            if target is not None:
                result[alias] = target
        return dict(sorted(result.items()))

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
            "registered_at": _utcnow(),
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

    def _try_read(self, path: str) -> dict[str, Any] | None:
        try:
            return self._read_json(path)
        except FileNotFoundError:
            return None

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
        claim = {"idempotency_key": idempotency_key, "claimed_at": _utcnow()}
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
        review = {"approved": bool(approved), "reviewer": reviewer, "comment": comment, "reviewed_at": _utcnow()}
        path = f"{self._version_dir(name, version)}/{REVIEW_FILE}"
        if not self._create_json(path, review):
            return self._read_json(path)
        return review

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        reason: str,
        actor: str,
        flow_run_id: str | None = None,
        expected_version: int | None = ANY_VERSION,
    ) -> dict[str, Any]:
        """Point ``alias`` at ``version`` by appending a new history entry.

        ``expected_version``: move the alias only from this version (None: only while it
        points nowhere), or raise :class:`AliasMoved`. The check and the move are one step:
        the entry's sequence number is created exclusively, so a move made in between makes
        the create fail and the check run again.

        Args:
            name: the model's name.
            alias: the alias to move.
            version: the version it points at after the move.
            reason: why it moves, recorded in the entry.
            actor: who or what moves it, recorded in the entry.
            flow_run_id: the flow run that moves it, recorded in the entry; None outside a flow run.
            expected_version: move the alias only from this version (None: only while it points nowhere); by
                default it moves from wherever it points.

        Returns:
            The history entry written.

        Raises:
            RegistryError: the version does not exist, or was rejected.
            AliasMoved: the alias does not point at ``expected_version``.
        """
        metadata = self.get(name, version)
        if metadata.get("status") == "rejected":
            raise RegistryError(
                f"{name} v{version} was rejected by its gate and cannot take alias {alias!r}; "
                "promote a version whose gate passed"
            )
        directory = self._alias_dir(name, alias)
        while True:
            sequences = self._numbered(directory, ".json")
            previous = self._read_json(f"{directory}/{sequences[-1]}.json") if sequences else None
            current = previous["version"] if previous else None
            if expected_version is not ANY_VERSION and current != expected_version:
                raise AliasMoved(
                    f"alias {alias!r} of {name!r} points at {_version_name(current)}, not "
                    f"{_version_name(expected_version)} as expected; it was not moved to v{version}",
                    current=current,
                )
            seq = (sequences[-1] if sequences else 0) + 1
            entry = {
                "alias": alias,
                "seq": seq,
                "version": int(version),
                "previous_version": previous["version"] if previous else None,
                "reason": reason,
                "actor": actor,
                "flow_run_id": flow_run_id,
                "moved_at": _utcnow(),
            }
            if self._create_json(f"{directory}/{seq}.json", entry):
                return entry

    def rollback(self, name: str, alias: str, *, actor: str, reason: str = "rollback") -> dict[str, Any]:
        """Move ``alias`` back to the version it pointed at before its current one.

        Args:
            name: the model's name.
            alias: the alias to move back.
            actor: who or what moves it, recorded in the entry.
            reason: why it moves, recorded in the entry.

        Returns:
            The history entry written.

        Raises:
            RegistryError: the alias has no history, has pointed at one version only, or the earlier version
                was rejected since.
            AliasMoved: the alias moved after its history was read; it stays where that move put it.
        """
        history = self.alias_history(name, alias)
        if not history:
            raise RegistryError(f"model {name!r} has no alias {alias!r} to roll back")
        previous = history[-1]["previous_version"]
        if previous is None:
            raise RegistryError(
                f"alias {alias!r} of {name!r} has pointed only at v{history[-1]['version']}; "
                "there is nothing earlier to roll back to"
            )
        # From the version this history ends at only: a move made since (a promotion) stands,
        # and the rollback fails saying where the alias points now.
        return self.set_alias(
            name, alias, previous, reason=reason, actor=actor, expected_version=history[-1]["version"]
        )

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
