"""The config tree of a training run: pydantic v2, frozen, unknown keys refused.

A recipe is a YAML file of this tree; ``--set dotted.key=value`` overrides one leaf.
Errors are collected into one :class:`ConfigError` that names each bad key with what was
received and what was expected, so a user fixes a recipe in one pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from kerasflow.models.registry import validate_name

# The gate section (tasks/gate_config.py).
from kerasflow.tasks.gate_config import Bound as Bound
from kerasflow.tasks.gate_config import Change as Change
from kerasflow.tasks.gate_config import GateConfig

# The model section (tasks/model_config.py).
from kerasflow.tasks.model_config import ModelConfig

# The runtime section lives in its own module; re-exported so `from kerasflow.tasks.config import ...` keeps working.
from kerasflow.tasks.runtime_config import ConfigSection as _Section
from kerasflow.tasks.runtime_config import LauncherConfig as LauncherConfig
from kerasflow.tasks.runtime_config import RuntimeConfig
from kerasflow.tasks.runtime_config import TrainStepDeployment as TrainStepDeployment

# So is the training section (tasks/training_config.py), and the bounds on a recipe's YAML
# (tasks/recipe_yaml.py, imported where a recipe is read).
from kerasflow.tasks.training_config import OPTIMIZERS as OPTIMIZERS
from kerasflow.tasks.training_config import EarlyStoppingConfig as EarlyStoppingConfig
from kerasflow.tasks.training_config import ScheduleConfig as ScheduleConfig
from kerasflow.tasks.training_config import TrainingConfig

DEFAULT_ROOT = "./.kerasflow"


class ConfigError(ValueError):
    """A recipe, override or command line that cannot describe a valid run."""


# Query parameters that carry credentials in presigned or tokenised URLs.
_CREDENTIAL_PARAMS = ("x-amz-signature", "x-amz-credential", "x-amz-security-token", "sig", "token", "access_token")


def refuse_credentials(url: str | None) -> str | None:
    """Refuse a URL that carries a credential: the config is copied into metadata and logs."""
    if not url or "://" not in url:
        return url
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    query = {k.lower() for k in parse_qs(parts.query)}
    if parts.password or query & set(_CREDENTIAL_PARAMS):
        raise ValueError(
            f"received a URL with a credential in it ({parts.scheme}://…{parts.hostname or ''}…); the config is "
            "recorded in model metadata and logs, so credentials come only from the environment "
            "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE, or fsspec's configuration)"
        )
    return url


class SplitFractions(_Section):
    """How a source without predefined splits is cut, deterministically by ``seed``."""

    validation: float = Field(0.15, gt=0, lt=1)
    test: float = Field(0.15, gt=0, lt=1)

    @model_validator(mode="after")
    def _leave_training_data(self) -> SplitFractions:
        if self.validation + self.test >= 0.9:
            raise ValueError(
                f"received validation={self.validation} and test={self.test}, expected "
                "them to sum below 0.9 so that training keeps at least 10% of the data"
            )
        return self


class WindowConfig(_Section):
    """A rolling window (tasks/ingest/window.py): the last ``days`` up to ``until``, of partitions or a time column."""

    days: int = Field(gt=0, description="train on the partitions of this many days, ending on `until`")
    until: date | None = Field(
        None,
        description="last day of the window, inclusive; null: the day before the run's scheduled start (UTC)",
    )
    partition_key: str = Field(
        "date", min_length=1, description="the path key that holds the day: .../date=2026-11-03/part-0.parquet"
    )
    column: str | None = Field(
        None,
        min_length=1,
        description="a timestamp column: keep the rows whose time (UTC) falls on the window's days, in files "
        "laid out any way (then partition_key is not used)",
    )


class ColumnConfig(_Section):
    """A table column's type (a Keras FeatureSpace type name, models/column_types.py) and its params."""

    type: str = Field(
        description="float, float_normalized, float_rescaled, float_discretized, integer_categorical, "
        "string_categorical, string_hashed, integer_hashed, or a type registered with register_column_type"
    )
    num_bins: int | None = Field(None, gt=1, description="float_discretized, string_hashed, integer_hashed")
    max_tokens: int | None = Field(None, gt=0, description="categorical: keep the most frequent values, the rest OOV")
    scale: float | None = Field(None, description="float_rescaled: value * scale + offset")
    offset: float | None = Field(None, description="float_rescaled")

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude={"type"}).items() if v is not None}


class CrossConfig(_Section):
    """A hashed feature cross of categorical columns, one-hot over ``num_bins`` (keras.layers.HashedCrossing)."""

    columns: list[str] = Field(min_length=2, description="two or more categorical columns of data.columns")
    num_bins: int = Field(64, gt=1)


class DataConfig(_Section):
    """Where the examples come from and how they are split."""

    source: Literal["sample", "tfds", "files", "images"] = "sample"
    name: str = "digits"
    # tfds: split spec per role in TFDS slicing syntax; data_dir of prepared datasets.
    tfds_splits: dict[Literal["train", "validation", "test"], str] = Field(
        default_factory=lambda: {"train": "train[:90%]", "validation": "train[90%:]", "test": "test"}
    )
    data_dir: str | None = None
    feature_key: str = "image"
    label_key: str = "label"
    # files: CSV or Parquet files (a file, folder or glob URL) with feature columns and a label column;
    # images: a folder or prefix with one subfolder of images per class.
    url: str | None = None
    window: WindowConfig | None = Field(
        None,
        description="source files: train on the last N days only, of date=YYYY-MM-DD partitions or of a "
        "timestamp column",
    )
    image_size: tuple[int, int] = Field(
        (256, 256), description="images: height and width every image is resized to in the input pipeline"
    )
    color_mode: Literal["rgb", "grayscale"] = Field("rgb", description="images: 3 channels or 1")
    feature_columns: list[str] | None = None
    columns: dict[str, str | ColumnConfig] | None = Field(
        None,
        description="tables: feature column -> type (float_normalized, string_categorical, ... or {type, num_bins, "
        "max_tokens, scale, offset}); the columns in this order are the features. Default: every column but the "
        "label, numbers float_normalized and text string_categorical",
    )
    crosses: list[CrossConfig] = Field(
        default_factory=list, description="tables: hashed crosses of categorical columns"
    )
    missing: Literal["error", "fill"] = Field(
        "error",
        description="tables: a missing number fails ingestion (error), or is filled with the training mean beside a "
        "0/1 indicator inside the model (fill); a missing category is always a category of its own",
    )
    label_column: str = "label"
    labels: Literal["classes", "numbers"] = Field(
        "classes",
        description="how the label column is read: class ids, or numbers (a regression target); "
        "set from model.task, never by hand",
    )
    classes: list[str | int] | None = Field(
        None, description="the label values in class-id order; a label outside them fails ingestion"
    )
    slice_columns: list[str] = Field(
        default_factory=list,
        description="columns kept to slice evaluation and gates by (e.g. region), not fed to the model",
    )
    extra_columns: Literal["ignore", "error"] = Field(
        "ignore", description="columns outside feature_columns: ignored (and listed in the report) or an error"
    )
    cache: Literal["auto", "memory", "none"] = Field(
        "auto", description="keep decoded examples in memory after the first epoch; auto: when under 1/4 of RAM"
    )
    # sample and files: fractions cut from the one table they provide, row by row by a hash.
    fractions: SplitFractions = SplitFractions()
    seed: int = Field(0, description="mixed into the hash that assigns each row's split; another seed, another cut")
    split_key: str | None = Field(
        None,
        description="files: the column whose value decides each row's split (e.g. a customer id, so all of one "
        "customer's rows share a split; not a feature unless listed in feature_columns); default: a hash of the "
        "row's content. Either way a row keeps its split as partitions are added",
    )
    limit: int | None = Field(None, gt=0, description="keep at most this many examples per split")

    @field_validator("url", "data_dir")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        return refuse_credentials(value)

    @field_validator("columns")
    @classmethod
    def _known_types(cls, value: dict[str, str | ColumnConfig] | None) -> dict[str, ColumnConfig] | None:
        if value is None:
            return None
        from kerasflow.models import column_types

        if not value:
            raise ValueError("received an empty data.columns, expected column: type pairs (or leave it out)")
        typed = {}
        for column, spec in value.items():
            spec = spec if isinstance(spec, ColumnConfig) else ColumnConfig(type=spec)
            if "/" in column:
                raise ValueError(f"received column {column!r}, expected a name without '/' (a Keras input name)")
            column_types.column_type(spec.type)  # "received column type ..., expected one of ..."
            column_types.check_params(column, spec.type, spec.params())
            typed[column] = spec
        return typed

    @model_validator(mode="after")
    def _source_fields(self) -> DataConfig:
        if self.source == "files" and not self.url:
            raise ValueError(
                "received source='files' without data.url, "
                "expected the URL (file, folder or glob) of CSV or Parquet files"
            )
        if self.source == "images" and not self.url:
            raise ValueError(
                "received source='images' without data.url, expected the folder or prefix (local or s3://) that "
                "holds one subfolder of images per class"
            )
        if min(self.image_size) < 1:
            raise ValueError(f"received data.image_size={list(self.image_size)}, expected a height and width of 1+")
        if self.window is not None and self.source != "files":
            raise ValueError(
                f"received data.window for source {self.source!r}, expected it only with source 'files' "
                "(tables in day partitions such as s3://bucket/events/date=2026-11-03/part-0.parquet)"
            )
        time_column = self.window.column if self.window is not None else None
        if time_column and (time_column == self.label_column or time_column in (self.columns or {})):
            raise ValueError(
                f"received data.window.column={time_column!r}, which is also the label or a feature column; "
                "a window's timestamp column selects rows and is not learned from"
            )
        if self.split_key and self.source != "files":
            raise ValueError(
                f"received data.split_key={self.split_key!r} for source {self.source!r}, expected it only with "
                "source 'files' (a column of the tables)"
            )
        if self.labels == "numbers" and self.classes is not None:
            raise ValueError(
                "received data.classes for a regression target, expected classes only when the task is a classifier"
            )
        _typed_columns_check(self)
        if self.source == "tfds" and "train" not in self.tfds_splits:
            raise ValueError("received data.tfds_splits without 'train', expected train, validation and test")
        return self

    @property
    def kept_columns(self) -> list[str]:
        """Columns a table is read with that are not features: slices, the split key, the window's time."""
        time_column = self.window.column if self.window is not None else None
        split_key = [self.split_key] if self.split_key else []
        return [*self.slice_columns, *split_key, *([time_column] if time_column else [])]


def _typed_columns_check(data: DataConfig) -> None:
    if (data.columns is not None or data.crosses or data.missing != "error") and data.source != "files":
        raise ValueError(
            f"received data.columns, data.crosses or data.missing for source {data.source!r}, expected them only "
            "with source 'files' (tables)"
        )
    if data.columns is not None and data.feature_columns is not None:
        raise ValueError(
            "received both data.columns and data.feature_columns, expected one: data.columns names the feature "
            "columns with their types"
        )
    if data.columns is not None and data.label_column in data.columns:
        raise ValueError(
            f"received the label column {data.label_column!r} in data.columns, expected feature columns only"
        )
    if data.columns is not None:
        from kerasflow.models import column_types

        for cross in data.crosses:
            for column in cross.columns:
                spec = data.columns.get(column)
                if spec is None or not column_types.column_type(spec.type).categorical:
                    raise ValueError(
                        f"received data.crosses over {cross.columns}, expected categorical columns of data.columns "
                        f"({column!r} is {'not there' if spec is None else spec.type})"
                    )


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
        return value.rstrip("/")


def resolve_root(root: str | None) -> str:
    """The storage root for ``--root``: validated like a recipe's, errors never echoing the value."""
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
            from kerasflow.tasks.learning_tasks import TASKS

            task = TASKS.get(raw["model"]["task"])
            if task is not None and isinstance(raw.get("data", {}), dict):
                raw = {**raw, "data": {**raw.get("data", {}), "labels": task.labels}}
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
        """A digits run small enough for a test: two epochs on the bundled sample."""
        base = {
            "training": {"epochs": 2, "batch_size": 32, "early_stopping": {"enabled": False}},
            "gate": {"value": {"accuracy": {"min": 0.2}}},
        }
        return parse_config(_deep_merge(base, overrides))

    def with_overrides(self, assignments: Iterable[str]) -> TrainConfig:
        """A copy with ``dotted.key=value`` assignments applied (values parsed as YAML)."""
        return parse_config(apply_assignments(self.model_dump(mode="json"), assignments))


def parse_config(raw: Mapping[str, Any], *, source: str = "config") -> TrainConfig:
    """Validate a raw mapping into a TrainConfig, or raise one ConfigError naming every problem."""
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

    from kerasflow.tasks.recipe_reference import section_model

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
    """Read a recipe YAML file and apply ``dotted.key=value`` overrides."""
    from kerasflow.tasks.recipe_yaml import MAX_RECIPE_BYTES, safe_yaml

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
    """Apply ``a.b.c=value`` assignments to a nested mapping; values are parsed as YAML."""
    from kerasflow.tasks.recipe_yaml import safe_yaml

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
