"""The data section of the config tree: the source, its splits, typed columns, windows.

Re-exported by tasks/config/__init__.py, with :func:`refuse_credentials`, which every URL of the
config goes through (the config is recorded in model metadata and logs).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from kerasflow.models import column_types
from kerasflow.tasks.config.runtime import ConfigSection as _Section

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


# The built-in sources that are not tables: a table's keys (columns, window, split key) are
# refused with them. A source a team registers decides for itself.
NOT_TABLES = ("sample", "tfds", "images")


class WindowConfig(_Section):
    """A rolling window: the last ``days`` up to ``until``, of partitions or a time column.

    Applied by tasks/ingest/sources/tables/window.py.
    """

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
        "string_categorical, string_hashed, integer_hashed, text, or a type registered with register_column_type"
    )
    num_bins: int | None = Field(None, gt=1, description="float_discretized, string_hashed, integer_hashed")
    max_tokens: int | None = Field(
        None,
        gt=0,
        description="categorical: keep the most frequent values, the rest OOV; text: the vocabulary's size, the "
        "tokens in most texts (default 10000, at most 20000)",
    )
    output_mode: str | None = Field(
        None, description="text: multi_hot (default), count or tf_idf (TextVectorization's output_mode)"
    )
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

    source: str = Field(
        "sample",
        description="sample: a table or images scikit-learn ships; files: CSV and Parquet files; images: a "
        "folder per class; tfds: a TFDS dataset; or a source a team registers (register_source, entry point "
        "group kerasflow.sources)",
    )
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
        description="tables: feature column -> type (float_normalized, string_categorical, text, ... or {type, "
        "num_bins, max_tokens, output_mode, scale, offset}); the columns in this order are the features. Default: "
        "every column but the label, numbers float_normalized and text string_categorical",
    )
    crosses: list[CrossConfig] = Field(
        default_factory=list, description="tables: hashed crosses of categorical columns"
    )
    missing: Literal["error", "fill"] = Field(
        "error",
        description="tables: a missing number fails ingestion (error), or is filled with the training mean beside a "
        "0/1 indicator inside the model (fill); a missing category is always a category of its own, a missing "
        "text (a text column) the empty text",
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
        "auto",
        description="keep decoded examples in memory after the first epoch; auto: when training runs more than one "
        "epoch and they take under 1/4 of RAM",
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

        if not value:
            raise ValueError("received an empty data.columns, expected column: type pairs (or leave it out)")
        typed = {}
        for column, spec in value.items():
            spec = spec if isinstance(spec, ColumnConfig) else ColumnConfig(type=spec)
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
        if self.window is not None and self.source in NOT_TABLES:
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
        if self.split_key and self.source in NOT_TABLES:
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
    if (data.columns is not None or data.crosses or data.missing != "error") and data.source in NOT_TABLES:
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
        for cross in data.crosses:
            for column in cross.columns:
                spec = data.columns.get(column)
                if spec is None or not column_types.column_type(spec.type).categorical:
                    raise ValueError(
                        f"received data.crosses over {cross.columns}, expected categorical columns of data.columns "
                        f"({column!r} is {'not there' if spec is None else spec.type})"
                    )
