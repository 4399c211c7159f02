"""Data checks run before any training: refuse data the model cannot learn from.

Each failed check raises :class:`DataValidationError` naming the split, the check, how
many rows failed, the first bad row and the fix; nothing is trained after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from prefect import task
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict

from tasks.config import TrainConfig
from tasks.failures import DataValidationError
from tasks.refs import DatasetRef

__all__ = ["DataValidationError", "ValidationReport", "check_dataset", "validate"]


class ValidationReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    fingerprint: str
    splits: dict[str, int]
    checks: list[str]


def _expected_shape(params: Mapping[str, Any]) -> tuple[int, ...] | None:
    if "input_shape" in params:
        return tuple(int(d) for d in params["input_shape"])
    if "num_features" in params:
        return (int(params["num_features"]),)
    return None


def check_dataset(
    ref: DatasetRef,
    *,
    model_params: Mapping[str, Any],
    num_classes: int | None = None,
    batch_size: int = 1024,
) -> ValidationReport:
    """Run every check over every split; raise on the first failure."""
    from tasks.ingest.pipeline import load_split

    expected = _expected_shape(model_params)
    if expected is not None and tuple(expected) != tuple(ref.feature_shape):
        raise DataValidationError(
            f"dataset {ref.fingerprint}: check 'feature shape' failed: examples have shape "
            f"{tuple(ref.feature_shape)}, the model expects {tuple(expected)}; fix "
            "model.params in the recipe or choose the matching dataset"
        )
    num_classes = int(num_classes or ref.num_classes)
    for split in ("train", "validation", "test"):
        if ref.splits.get(split, 0) == 0:
            raise DataValidationError(
                f"split '{split}': check 'not empty' failed: 0 rows; the source produced no "
                f"examples for it (splits: {ref.splits}); widen the split spec or add data"
            )
        offset = 0
        for features, labels in load_split(ref, split).batch(batch_size).as_numpy_iterator():
            if features.dtype.kind == "f":
                flat = features.reshape(len(features), -1)
                bad = ~np.isfinite(flat).all(axis=1)
                if bad.any():
                    raise DataValidationError(
                        f"split '{split}': check 'finite features' failed: {_count(ref, split, 'nan')} "
                        f"row(s) have NaN or infinite features, first at row {offset + int(bad.argmax())}; "
                        "impute or drop those rows at the source"
                    )
            out = (labels < 0) | (labels >= num_classes)
            if out.any():
                raise DataValidationError(
                    f"split '{split}': check 'label range' failed: {_count(ref, split, 'label', num_classes)} "
                    f"row(s) have labels outside 0..{num_classes - 1}, first at row "
                    f"{offset + int(out.argmax())} (label {int(labels[out.argmax()])}); fix the labels "
                    "or set model.num_classes"
                )
            offset += len(labels)
    return ValidationReport(
        fingerprint=ref.fingerprint,
        splits=dict(ref.splits),
        checks=["feature shape", "not empty", "finite features", "label range"],
    )


def _count(ref: DatasetRef, split: str, what: str, num_classes: int = 0) -> int:
    """Count the failing rows of a split (only run once a check has failed)."""
    from tasks.ingest.pipeline import load_split

    total = 0
    for features, labels in load_split(ref, split).batch(4096).as_numpy_iterator():
        if what == "nan":
            total += int((~np.isfinite(features.reshape(len(features), -1)).all(axis=1)).sum())
        else:
            total += int(((labels < 0) | (labels >= num_classes)).sum())
    return total


@task(name="validate")
def validate(dataset: DatasetRef, config: TrainConfig) -> ValidationReport:
    """Refuse data the model cannot learn from, and publish what was checked."""
    report = check_dataset(dataset, model_params=config.model.params, num_classes=config.model.num_classes)
    rows = "\n".join(f"| {name} | {count} |" for name, count in report.splits.items())
    create_markdown_artifact(
        key="validation-report",
        markdown=(
            f"### Data validation: passed\n\nDataset `{report.fingerprint}`\n\n| split | rows |\n|---|---|\n{rows}\n\n"
            f"Checks: {', '.join(report.checks)}"
        ),
        description="data checks run before training",
    )
    return report
