"""Warm start: begin training from the weights of a registered model instead of from scratch.

``training.warm_start: production`` (an alias) or ``3`` (a version) starts from that
model, preprocessing state included (its Normalization statistics and vocabularies: the
weights were learned on them), when it was built by the same builder with the same
params; anything else is refused before training, naming what differs. The version is
resolved once by the train task and handed to every training process in the job, so all
workers start from the same model even if the alias moves meanwhile.
"""

from __future__ import annotations

from typing import Any

from kerasflow.models.registry import ModelRegistry, RegistryError
from kerasflow.tasks import storage
from kerasflow.tasks.config import ConfigError, ModelConfig


def resolve_warm_start(choice: str, model: ModelConfig, *, root: str, logger: Any = None) -> int | None:
    """The version to start from, or None (cold start); a ConfigError when it cannot be used.

    Args:
        choice: ``training.warm_start``: ``none``, an alias or a version number.
        model: the recipe's ``model`` section (its name, builder and params must match the version's).
        root: the storage root the registry is under.
        logger: where a cold start for want of a model under the alias is logged; None for no line.

    Raises:
        ConfigError: the version does not exist, or was built by another builder or with other params.
    """
    name = model.name
    if choice == "none":
        return None
    registry = ModelRegistry(storage.registry_url(root))
    try:
        version = int(choice) if choice.isdigit() else registry.alias_target(name, choice)
        if version is None:
            if logger is not None:
                logger.info("warm start: %s has no model under %r yet; starting cold", name, choice)
            return None
        metadata = registry.get(name, version)
    except RegistryError as error:
        raise ConfigError(f"received training.warm_start={choice!r}: {error}") from None
    recorded_builder = (metadata.get("builder") or {}).get("reference")
    recorded_params = ((metadata.get("config") or {}).get("model") or {}).get("params")
    differences = []
    if recorded_builder != model.builder_reference:
        differences.append(f"builder {recorded_builder!r} (this recipe: {model.builder_reference!r})")
    if recorded_params != model.params:
        differences.append(f"model.params {recorded_params} (this recipe: {model.params})")
    if differences:
        raise ConfigError(
            f"cannot warm start from {name} v{version}: it was built with {' and '.join(differences)}; "
            "set training.warm_start: none to train this architecture from scratch"
        )
    return version


def warm_start_model(model: ModelConfig, version: int, *, root: str, feature_shape: tuple[int, ...]) -> Any:
    """The registered model, loaded (verified, inspected, safe mode) to be trained further.

    Args:
        model: the recipe's ``model`` section (``name``, ``trusted_packages``).
        version: the version to load, from :func:`resolve_warm_start`.
        root: the storage root the registry is under.
        feature_shape: one example's shape in the data trained on.

    Raises:
        ConfigError: the model reads examples of another shape.
        ModelFileError: the model file is refused or cannot be loaded.
    """
    registry = ModelRegistry(storage.registry_url(root))
    loaded = registry.load(model.name, version, trusted_packages=model.trusted_packages)
    expected = tuple(loaded.input_shape[1:]) if not isinstance(loaded.input_shape, list) else None
    if expected is not None and expected != tuple(feature_shape):
        raise ConfigError(
            f"cannot warm start from {model.name} v{version}: it reads examples of shape {expected}, "
            f"the data has {tuple(feature_shape)}; set training.warm_start: none"
        )
    return loaded
