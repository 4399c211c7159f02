"""The config tree of a training run: pydantic v2, frozen, unknown keys refused.

A recipe is a YAML file of this tree; ``--set dotted.key=value`` overrides one leaf.
Errors are collected into one :class:`ConfigError` that names each bad key with what was
received and what was expected, so a user fixes a recipe in one pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from kerasflow.models.registry import validate_name
from kerasflow.tasks.config.bounded_yaml import MAX_RECIPE_BYTES, safe_yaml

# The data section (tasks/config/data.py).
from kerasflow.tasks.config.data import ColumnConfig as ColumnConfig
from kerasflow.tasks.config.data import CrossConfig as CrossConfig
from kerasflow.tasks.config.data import DataConfig
from kerasflow.tasks.config.data import SplitFractions as SplitFractions
from kerasflow.tasks.config.data import WindowConfig as WindowConfig
from kerasflow.tasks.config.data import refuse_credentials as refuse_credentials

# The gate section (tasks/config/gate.py).
from kerasflow.tasks.config.gate import Bound as Bound
from kerasflow.tasks.config.gate import Change as Change
from kerasflow.tasks.config.gate import GateConfig

# The model section (tasks/config/model.py).
from kerasflow.tasks.config.model import ModelConfig, default_family

# The runtime section lives in its own module; re-exported so `from kerasflow.tasks.config import ...` keeps working.
from kerasflow.tasks.config.runtime import ConfigSection as _Section
from kerasflow.tasks.config.runtime import LauncherConfig as LauncherConfig
from kerasflow.tasks.config.runtime import RuntimeConfig
from kerasflow.tasks.config.runtime import TrainStepDeployment as TrainStepDeployment

# So is the training section (tasks/config/training.py), and the bounds on a recipe's YAML
# (tasks/config/bounded_yaml.py, imported where a recipe is read).
from kerasflow.tasks.config.training import OPTIMIZERS as OPTIMIZERS
from kerasflow.tasks.config.training import EarlyStoppingConfig as EarlyStoppingConfig
from kerasflow.tasks.config.training import ScheduleConfig as ScheduleConfig
from kerasflow.tasks.config.training import TrainingConfig
from kerasflow.tasks.failures import ConfigError as ConfigError
from kerasflow.tasks.refs import RunTarget

DEFAULT_ROOT = "./.kerasflow"


class DriftConfig(_Section):
    """How the training data is compared with the production model's (tasks/drift.py), as TFDV does."""

    enabled: bool = True
    numeric_threshold: float = Field(
        0.1, gt=0, le=1, description="Jensen-Shannon divergence (base 2) of a number column's histograms that drifts"
    )
    categorical_threshold: float = Field(
        0.1, gt=0, le=1, description="L-infinity distance of a categorical column's value shares that drifts"
    )
    columns: dict[str, float] = Field(default_factory=dict, description="column (or 'label') -> its own threshold")
    action: Literal["fail", "warn"] = Field(
        "warn", description="a drifted column fails the run before training (fail) or is reported (warn)"
    )


class ValidationConfig(_Section):
    """Limits of the data checks run before training (tasks/validate.py)."""

    max_shared_fraction: float = Field(
        0.0, ge=0, lt=1, description="share of a validation/test split allowed to repeat train examples exactly"
    )
    warn_class_imbalance: float = Field(10.0, gt=1, description="majority/minority ratio reported as a warning")
    max_class_imbalance: float | None = Field(
        1000.0, gt=1, description="majority/minority ratio that fails validation; null: never"
    )
    drift: DriftConfig = Field(
        default_factory=DriftConfig, description="the training data against the production model's (tables)"
    )


class RegistryConfig(_Section):
    alias: str = "production"

    @field_validator("alias")
    @classmethod
    def _alias_name(cls, value: str) -> str:
        return validate_name(value, what="alias")


# The stores kerasflow keeps a root on: a local folder and S3, where its commits by exclusive
# create (models/exclusive.py) are tested. Any other fsspec scheme would be taken as it is:
# http:// sent the training data by POST, memory:// trained and registered into nothing.
STORAGE_SCHEMES = {"file", "s3", "s3a"}


def register_storage_scheme(scheme: str) -> None:
    """Accept roots of another fsspec scheme, for a store a team has verified.

    The store must create an object only when it does not exist yet (``open(path, "xb")``),
    the whole body at once: every version, alias move and dataset commits that way.

    Args:
        scheme: the URL scheme, such as ``gs``.
    """
    STORAGE_SCHEMES.add(scheme.lower())


class StorageConfig(_Section):
    root: str = Field(
        default_factory=lambda: os.environ.get("KERASFLOW_ROOT") or DEFAULT_ROOT,
        validate_default=True,
        description="where datasets, runs and the registry live: a folder or an fsspec URL (s3://bucket/kf); "
        "default: $KERASFLOW_ROOT, else ./.kerasflow",
    )

    @field_validator("root")
    @classmethod
    def _absolute_local_root(cls, value: str) -> str:
        refuse_credentials(value)
        if "{{" in value:
            # deploy/prefect.yaml fills {{ $KERASFLOW_ROOT }} from the environment of `prefect deploy`.
            raise ValueError(
                f"received an unfilled template {value!r} as the storage root; set KERASFLOW_ROOT "
                "before `prefect deploy` (or in the work pool's env) and deploy again"
            )
        # A relative local root would mean another folder on every worker; pin it now.
        if "://" not in value:
            return str(Path(value).expanduser().resolve())
        if value.startswith("file://"):
            return str(Path(value.removeprefix("file://")).resolve())
        scheme = value.split("://", 1)[0].lower()
        if scheme not in STORAGE_SCHEMES:
            raise ValueError(
                f"received a storage root of scheme {scheme!r}, expected a local folder or one of "
                f"{sorted(STORAGE_SCHEMES)} (s3://bucket/prefix): stores where kerasflow's commits are tested; "
                "a team that verified another store registers it with "
                "kerasflow.tasks.config.register_storage_scheme"
            )
        return value.rstrip("/")


def resolve_root(root: str | None) -> str:
    """The storage root for ``--root``: validated like a recipe's, errors never echoing the value.

    Args:
        root: the ``--root`` value; None or empty: ``$KERASFLOW_ROOT``, else ``./.kerasflow``.

    Returns:
        The root as a recipe's is stored: a local folder absolute, a URL without a trailing slash.

    Raises:
        ConfigError: the root is refused (a credential in it, an unfilled template).
    """
    if not root:
        return StorageConfig().root
    return parse_config({"storage": {"root": root}}, source="--root").storage.root


class TrainConfig(_Section):
    """Everything one training run needs; the parameter of ``train_flow``."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    validation: ValidationConfig = ValidationConfig()
    gate: GateConfig = GateConfig()
    registry: RegistryConfig = RegistryConfig()
    storage: StorageConfig = Field(default_factory=StorageConfig)

    @model_validator(mode="before")
    @classmethod
    def _labels_follow_the_task(cls, raw: Any) -> Any:
        # The task decides how ingestion reads the label column; the data section records it,
        # so the dataset's fingerprint, and a later scoring of the same source, follow it.
        if isinstance(raw, dict) and isinstance(raw.get("model"), dict) and raw["model"].get("task"):
            from kerasflow.tasks.learning.learning_tasks import find_task

            task = find_task(raw["model"]["task"]) if isinstance(raw["model"]["task"], str) else None
            if task is not None and isinstance(raw.get("data", {}), dict):
                raw = {**raw, "data": {**raw.get("data", {}), "labels": task.labels}}
        return raw

    @model_validator(mode="before")
    @classmethod
    def _builder_for_the_data(cls, raw: Any) -> Any:
        # Without model.family or model.builder, the zoo's builder for the data's kind: a CNN for
        # a table failed after ingest with a Conv2D rank error.
        if not isinstance(raw, dict):
            return raw
        model, data = raw.get("model", {}), raw.get("data", {})
        if isinstance(data, DataConfig):
            data = {"source": data.source, "name": data.name}
        if not isinstance(data, dict):
            return raw
        if isinstance(model, ModelConfig) and model.family is None and model.builder is None:
            return {**raw, "model": model.model_copy(update={"family": default_family(data)})}
        if isinstance(model, dict) and not model.get("family") and not model.get("builder"):
            return {**raw, "model": {**model, "family": default_family(data)}}
        return raw

    @model_validator(mode="after")
    def _fits_the_task(self) -> TrainConfig:
        if self.data.labels != "numbers":
            return self
        problems = [
            (key, value)
            for key, value in (
                ("model.num_classes", self.model.num_classes),
                ("training.class_weight", self.training.class_weight),
                ("training.label_smoothing", self.training.label_smoothing or None),
                ("gate.per_class", self.gate.per_class or None),
            )
            if value is not None
        ]
        if problems:
            keys = ", ".join(key for key, _ in problems)
            raise ValueError(
                f"received {keys} with model.task={self.model.task!r}, expected them only for classifiers: "
                "a regression target has no classes"
            )
        return self

    @classmethod
    def smoke(cls, **overrides: Any) -> TrainConfig:
        """A digits run small enough for a test: two epochs on the bundled sample.

        Args:
            **overrides: sections merged over the smoke run's settings (``training={"epochs": 1}``).

        Raises:
            ConfigError: the result is not a valid config.
        """
        base = {
            "training": {"epochs": 2, "batch_size": 32, "early_stopping": {"enabled": False}},
            "gate": {"value": {"accuracy": {"min": 0.2}}},
        }
        return parse_config(_deep_merge(base, overrides))

    def with_overrides(self, assignments: Iterable[str]) -> TrainConfig:
        """A copy with ``dotted.key=value`` assignments applied (values parsed as YAML).

        Raises:
            ConfigError: an assignment is malformed, or the result is not a valid config.
        """
        return parse_config(apply_assignments(self.model_dump(mode="json"), assignments))

    @property
    def target(self) -> RunTarget:
        """Where this run's steps read and write: ``storage.root``, ``model.name`` and ``registry.alias``."""
        return RunTarget(root=self.storage.root, name=self.model.name, alias=self.registry.alias)


def parse_config(raw: Mapping[str, Any], *, source: str = "config") -> TrainConfig:
    """Validate a raw mapping into a TrainConfig, or raise one ConfigError naming every problem.

    Args:
        raw: the config tree as nested mappings (a recipe's YAML, parsed).
        source: names the config in the error (``recipe digits.yaml``, ``--root``).

    Raises:
        ConfigError: the config is invalid; one line per invalid or unknown key.
    """
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as error:
        lines = [f"{source} is invalid ({error.error_count()} problem(s)):"]
        for item in error.errors():
            key = ".".join(str(part) for part in item["loc"]) or "(top level)"
            message = item["msg"].removeprefix("Value error, ")
            if item["type"] == "extra_forbidden":
                lines.append(f"  {key}: {_unknown_key(item['loc'])}")
                continue
            received = item.get("input")
            if "received" in message:
                lines.append(f"  {key}: {message}")
            else:
                lines.append(f"  {key}: received {received!r}, expected: {message}")
        raise ConfigError("\n".join(lines)) from None


def _unknown_key(loc: tuple[Any, ...]) -> str:
    """'unknown key', the closest valid key of its section, and where the keys are listed."""
    import difflib

    from kerasflow.tasks.config.reference import section_model

    section = section_model(TrainConfig, loc[:-1])
    where = ".".join(str(part) for part in loc[:-1]) or "the recipe"
    valid = list(section.model_fields) if section is not None else []
    close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"unknown key; {hint}valid keys of {where}: {', '.join(valid)} "
        "(every key is in docs/recipe-reference.md, or `kerasflow recipes --reference`)"
    )


def load_config(path: str | os.PathLike, assignments: Iterable[str] = ()) -> TrainConfig:
    """Read a recipe YAML file and apply ``dotted.key=value`` overrides.

    Args:
        path: a local recipe file, at most ``MAX_RECIPE_BYTES``.
        assignments: ``dotted.key=value`` strings, values parsed as YAML.

    Raises:
        ConfigError: the file is missing, too large, not YAML or not a mapping, or the config is invalid.
    """

    path = Path(path)
    try:
        with path.open("rb") as f:
            content = f.read(MAX_RECIPE_BYTES + 1)  # never more, whatever the file (or device) holds
    except FileNotFoundError:
        raise ConfigError(f"recipe file {path} does not exist; `kerasflow recipes` lists the bundled ones") from None
    if len(content) > MAX_RECIPE_BYTES:
        raise ConfigError(
            f"recipe file {path} is refused: it is over the {MAX_RECIPE_BYTES:,}-byte limit of a recipe; a recipe "
            "names settings, so keep data (vocabularies, tables, weights) in the files it points to"
        )
    try:
        raw = safe_yaml(content.decode(), source=f"recipe file {path}") or {}
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f"recipe file {path} is not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"recipe file {path} holds a {type(raw).__name__}, expected a mapping of sections")
    return parse_config(apply_assignments(raw, assignments), source=f"recipe {path.name}")


def apply_assignments(raw: Mapping[str, Any], assignments: Iterable[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` assignments to a nested mapping; values are parsed as YAML.

    Args:
        raw: the nested mapping; left as it is.
        assignments: ``a.b.c=value`` strings; a value that is not valid YAML is kept as text.

    Returns:
        A copy of ``raw`` with the assignments applied; sections they name are made when missing.

    Raises:
        ConfigError: an assignment has no ``=`` or no key, goes through a value as if it were a section, or
            its value holds too many values once its YAML aliases are expanded.
    """

    result = _deep_merge({}, raw)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"received --set {assignment!r}, expected dotted.key=value (e.g. training.epochs=5)")
        try:
            value = safe_yaml(text, source=f"--set {key.strip()}")
        except yaml.YAMLError:
            value = text
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"received --set {assignment!r}, but {part!r} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return result


def _deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {k: (_deep_merge({}, v) if isinstance(v, Mapping) else v) for k, v in base.items()}
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        elif isinstance(value, Mapping):
            merged[key] = _deep_merge({}, value)
        else:
            merged[key] = value
    return merged
