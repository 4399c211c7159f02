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


class _RowFailures:
    """How many rows of a split failed one check, and the first of them."""

    def __init__(self) -> None:
        self.count = 0
        self.first_row: int | None = None
        self.first_label: int | None = None

    def add(self, failed: np.ndarray, offset: int, labels: np.ndarray) -> None:
        if not failed.any():
            return
        if self.first_row is None:
            index = int(failed.argmax())
            self.first_row, self.first_label = offset + index, int(labels[index])
        self.count += int(failed.sum())


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
        # One pass per split: count every failing row and remember the first of each check.
        nonfinite = _RowFailures()
        out_of_range = _RowFailures()
        offset = 0
        for features, labels in load_split(ref, split).batch(batch_size).as_numpy_iterator():
            if features.dtype.kind == "f":
                nonfinite.add(~np.isfinite(features.reshape(len(features), -1)).all(axis=1), offset, labels)
            out_of_range.add((labels < 0) | (labels >= num_classes), offset, labels)
            offset += len(labels)
        if nonfinite.count:
            raise DataValidationError(
                f"split '{split}': check 'finite features' failed: {nonfinite.count} row(s) have NaN or "
                f"infinite features, first at row {nonfinite.first_row}; impute or drop those rows at the source"
            )
        if out_of_range.count:
            raise DataValidationError(
                f"split '{split}': check 'label range' failed: {out_of_range.count} row(s) have labels outside "
                f"0..{num_classes - 1}, first at row {out_of_range.first_row} (label {out_of_range.first_label}); "
                "fix the labels or set model.num_classes"
            )
    return ValidationReport(
        fingerprint=ref.fingerprint,
        splits=dict(ref.splits),
        checks=["feature shape", "not empty", "finite features", "label range"],
    )


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
