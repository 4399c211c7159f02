"""The training definition: what, besides the data, decides the model a run trains.

A scheduled retrain skips its work when nothing that decides the model changed since the
production version: the same data **and** the same definition, that is the recipe's
``data``, ``model`` and ``training`` sections, the builder's reference and the identity
of its code (the sha256 of its module's source, so a team that edits its builder gets a
new model). Each version records the definition it was trained from, so the next run can
say exactly what changed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kerasflow.models import builders
from kerasflow.tasks.config import TrainConfig

SECTIONS = ("data", "model", "training")


def training_definition(config: TrainConfig) -> dict[str, Any]:
    """The definition of ``config``'s training, with its fingerprint.

    Returns:
        ``fingerprint``: 16 hex digits of the SHA-256 of the sections, the builder's reference and its code's
        hash; ``sections``: the recipe's ``data``, ``model`` and ``training`` sections as JSON (a time window
        without its end); ``builder``: the builder's lineage (:func:`kerasflow.models.builders.lineage`).
    """
    from kerasflow.tasks.train.build import resolve_builder

    sections = {name: getattr(config, name).model_dump(mode="json") for name in SECTIONS}
    if sections["data"].get("window"):
        # The window's end moves every day; which files it selects is the dataset's
        # fingerprint. A nightly run whose window holds the same files is unchanged.
        sections["data"]["window"].pop("until", None)
    builder = builders.lineage(config.model.builder_reference, resolve_builder(config.model))
    identity = {"sections": sections, "builder": builder["reference"], "builder_code": builder["code_sha256"]}
    fingerprint = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return {"fingerprint": fingerprint, "sections": sections, "builder": builder}


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def changes(recorded: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """What differs between a version's recorded definition and ``current``, as dotted keys.

    Args:
        recorded: the definition a version recorded (its metadata's ``definition``); None when it has none.
        current: this run's definition, from :func:`training_definition`.

    Returns:
        The dotted keys of the sections that differ, then the builder's code when it changed; never empty.
    """
    if not recorded or "fingerprint" not in recorded:
        return ["no training definition recorded with that version"]
    before, after = _flatten(recorded.get("sections", {}), ""), _flatten(current["sections"], "")
    changed = sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
    if recorded.get("builder", {}).get("code_sha256") != current["builder"]["code_sha256"]:
        changed.append(f"the code of builder {current['builder']['reference']}")
    return changed or ["the definition's fingerprint"]
