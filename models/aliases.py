"""Where each alias of a registered model points, and every move it made: an append-only history.

Layout under the registry URL::

    <name>/aliases/<alias>/<seq>.json   one entry per move: the version, the one before, why, who

An alias points where its highest sequence says. A move appends the next sequence,
created exclusively, so two writers never take the same one and no entry is rewritten;
a move may be asked to start from a given version (``expected_version``), the check and
the move one step. A rollback is such a move back to the version before. Others use
them through the ModelRegistry of models/registry.py.
"""

from __future__ import annotations

from typing import Any

from kerasflow.models.names import NAME_PATTERN, validate_name
from kerasflow.models.registry_folder import RegistryError, RegistryFolder, utc_now

__all__ = ["ANY_VERSION", "AliasHistory", "AliasMoved"]

# set_alias(expected_version=ANY_VERSION): move the alias from wherever it points.
ANY_VERSION: Any = object()


class AliasMoved(RegistryError):
    """An alias no longer points where the caller expected when it asked to move it.

    Args:
        message: the error message.
        current: the version the alias points at now; None when it points nowhere.
    """

    def __init__(self, message: str, *, current: int | None):
        super().__init__(message)
        self.current = current


def _version_name(version: int | None) -> str:
    return "no version" if version is None else f"v{version}"


class AliasHistory(RegistryFolder):
    """The aliases of a registry's models: where each points, its history, its moves; a base of ModelRegistry.

    Args:
        url: the registry's root: a local folder or any fsspec URL (``s3://bucket/registry``).
        storage_options: keyword arguments of the fsspec filesystem (``fsspec.core.url_to_fs``).
        claim_seconds: how long a version's claim stays live without renewal, in seconds.
    """

    def _alias_dir(self, name: str, alias: str) -> str:
        return f"{self._model_dir(name)}/aliases/{validate_name(alias, what='alias')}"

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
                "moved_at": utc_now(),
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
