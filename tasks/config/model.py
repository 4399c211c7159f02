"""The model section of the config tree: which builder, its params, the task, trusted packages.

Re-exported by tasks/config/__init__.py. Builders are resolved in kerasflow/tasks/train/build.py and
tasks in tasks/learning/learning_tasks.py; here names are only checked, without importing Keras.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from kerasflow.models.builders import REFERENCE as BUILDER_REFERENCE
from kerasflow.models.builders import family_names
from kerasflow.models.registry import validate_name
from kerasflow.tasks.config.runtime import ConfigSection as _Section


class Augmentation(_Section):
    """The Keras guide's image augmentation, as layers in front of the model (inactive at inference)."""

    flip: Literal["horizontal", "vertical", "horizontal_and_vertical"] | None = "horizontal"
    rotation: float = Field(0.1, ge=0, le=1, description="a fraction of a full turn, either way (RandomRotation)")
    zoom: float = Field(0.1, ge=0, lt=1, description="a fraction of the size, in or out (RandomZoom)")


class ModelConfig(_Section):
    """Which builder makes the model, with what parameters, and the name it is registered under.

    ``family`` names a registered builder (the zoo's: see models/families.py); ``builder``
    names any importable ``package.module:function``. Give one; without either the zoo's
    builder for the kind of data the recipe reads is built (:func:`default_family`).
    """

    name: str = "digits"
    family: str | None = None
    builder: str | None = Field(
        None, description="'package.module:function' called as build(*, input_spec, **params) -> keras.Model"
    )
    task: str | None = Field(
        None,
        description="multiclass, binary, regression (or a task a team registered); default: a classifier, "
        "binary for two classes and multiclass for more. Regression reads the label column as numbers",
    )
    num_classes: int | None = Field(
        None, ge=2, description="classes the model predicts; default: the classes found in the data"
    )
    params: dict[str, Any] = Field(default_factory=dict)
    augmentation: Augmentation | None = Field(
        None, description="images: random flips, rotations and zooms in front of the model, active in training only"
    )
    trusted_packages: tuple[str, ...] = Field(
        (),
        description="packages whose Keras classes (registered with keras.saving.register_keras_serializable"
        "(package=...)) a model file may use; imported before every load. Nothing else outside Keras loads",
    )

    @model_validator(mode="before")
    @classmethod
    def _one_builder(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and raw.get("family") and raw.get("builder"):
            raise ValueError(
                f"received model.family={raw['family']!r} and model.builder={raw['builder']!r}, expected one of them"
            )
        return raw

    @property
    def builder_reference(self) -> str:
        """What names the builder: the family's registered name or the import path."""
        return self.builder or self.family or "digits_cnn"

    @field_validator("name")
    @classmethod
    def _registry_name(cls, value: str) -> str:
        return validate_name(value)

    @field_validator("trusted_packages")
    @classmethod
    def _package_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not all(part.isidentifier() for part in name.split(".")):
                raise ValueError(f"received trusted package {name!r}, expected an importable name such as 'mylayers'")
        return value

    @field_validator("task")
    @classmethod
    def _task_name(cls, value: str | None) -> str | None:
        from kerasflow.tasks.learning.learning_tasks import TASK_REGISTRY

        if value is not None and TASK_REGISTRY.find(value) is None:
            raise ValueError(f"received {value!r}, expected one of {TASK_REGISTRY.names()}")
        return value

    @field_validator("family")
    @classmethod
    def _family_name(cls, value: str | None) -> str | None:
        # Checked without importing Keras: the zoo's names, those of installed packages' entry
        # points, and any a team's code registered in this process (models/builders.py)
        # before the recipe was read.
        known = set(family_names())
        if value is not None and value not in known:
            raise ValueError(
                f"received {value!r}, expected one of {sorted(known)} (or model.builder: 'package.module:function')"
            )
        return value

    @field_validator("builder")
    @classmethod
    def _builder_reference(cls, value: str | None) -> str | None:
        if value is not None and not BUILDER_REFERENCE.fullmatch(value):
            raise ValueError(f"received {value!r}, expected 'package.module:function'")
        return value


# The zoo's builder for each source when a recipe names none: a table's MLP, a CNN for images
# of any size (TFDS's are mostly images; a TFDS text dataset names imdb_text or its own).
DEFAULT_FAMILIES: dict[str, str] = {"files": "tabular_mlp", "images": "image_cnn", "tfds": "image_cnn"}


def default_family(data: Mapping[str, Any]) -> str:
    """The family built for ``data`` when the recipe names neither ``model.family`` nor ``model.builder``.

    The bundled ``digits`` images get the quickstart's ``digits_cnn``; the other bundled
    samples are tables. A source a team registered gets the entry of
    :data:`DEFAULT_FAMILIES` its name has, which the team may add, else ``digits_cnn``.

    Args:
        data: the recipe's ``data`` section, as a mapping (its defaults where a key is absent).
    """
    source = data.get("source") or "sample"
    if source == "sample":
        return "digits_cnn" if (data.get("name") or "digits") == "digits" else "tabular_mlp"
    return DEFAULT_FAMILIES.get(source, "digits_cnn")
