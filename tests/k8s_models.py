"""Checking a manifest against the official Kubernetes client's API models, without a cluster.

Each document is deserialised into the client's model (V1Job, V1Service) and serialised
back. Deserialising silently drops a field the API does not know, so the round trip must
keep every key of the rendered dict: a misspelt field shows up in :func:`dropped_fields`.
"""

from __future__ import annotations

import inspect
import json
from typing import Any


class _Response:
    """What ApiClient.deserialize reads before kubernetes 37: an object with the body in ``.data``."""

    def __init__(self, data: str) -> None:
        self.data = data


def _deserialize(doc: dict, kind: str) -> Any:
    import kubernetes

    api = kubernetes.client.ApiClient()
    text = json.dumps(doc)
    if "response_text" in inspect.signature(api.deserialize).parameters:  # kubernetes >= 37
        return api.deserialize(text, kind, "application/json")
    return api.deserialize(_Response(text), kind)


def round_trip(doc: dict, kind: str) -> dict:
    """``doc`` read into the API model ``kind`` and written back."""
    import kubernetes

    return kubernetes.client.ApiClient().sanitize_for_serialization(_deserialize(doc, kind))


def dropped_fields(rendered: Any, back: Any, path: str = "") -> list[str]:
    """Paths of keys of ``rendered`` missing from ``back``, recursively through dicts and lists."""
    if isinstance(rendered, dict):
        if not isinstance(back, dict):
            return [path or "."]
        missing = [f"{path}.{key}" for key in rendered if key not in back]
        return missing + [
            p for key in rendered if key in back for p in dropped_fields(rendered[key], back[key], f"{path}.{key}")
        ]
    if isinstance(rendered, list):
        if not isinstance(back, list) or len(back) != len(rendered):
            return [path]
        pairs = enumerate(zip(rendered, back, strict=True))
        return [p for i, (a, b) in pairs for p in dropped_fields(a, b, f"{path}[{i}]")]
    return []
