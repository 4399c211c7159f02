"""Registry writers run as separate processes by the concurrency tests (spawned, so no fork of TF)."""

from __future__ import annotations


def register_when_all_ready(url: str, model_file: str, key: str, ready, results) -> None:
    from kerasflow.models.registry import ModelRegistry

    registry = ModelRegistry(url)
    ready.wait()
    try:
        version = registry.register(
            "digits", model_file=model_file, metadata={"status": "registered"}, idempotency_key=key
        )
        results.put(("ok", version["version"]))
    except Exception as error:  # noqa: BLE001 - reported to the parent test
        results.put(("error", repr(error)))


def move_alias_when_all_ready(url: str, version: int, ready, results) -> None:
    from kerasflow.models.registry import ModelRegistry

    registry = ModelRegistry(url)
    ready.wait()
    try:
        entry = registry.set_alias("digits", "production", version, reason=f"move to {version}", actor=f"p{version}")
        results.put(("ok", entry["seq"]))
    except Exception as error:  # noqa: BLE001 - reported to the parent test
        results.put(("error", repr(error)))
