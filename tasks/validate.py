"""Data checks run before any training: refuse data the model cannot learn from.

Every check runs (one pass over each split) and lands in a :class:`ValidationReport`,
published as a markdown artifact whether the data passed or not, so the UI shows all
that is wrong at once. A failed check then raises :class:`DataValidationError` naming
the split, the check, how many rows failed, the first bad row and the fix; nothing is
trained after it. Warnings (a skewed class balance, ignored columns) are reported only.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Literal

import numpy as np
from prefect import task
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict

from kerasflow.tasks.config import TrainConfig, ValidationConfig
from kerasflow.tasks.data.pipeline import load_batches
from kerasflow.tasks.data.splits import mix64
from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.refs import DatasetRef

__all__ = ["CheckResult", "DataValidationError", "ValidationReport", "check_dataset", "validate"]

SPLITS = ("train", "validation", "test")


class CheckResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    check: str
    status: Literal["passed", "warning", "failed"]
    detail: str


class ValidationReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    fingerprint: str
    splits: dict[str, int]
    class_counts: dict[str, int]
    results: list[CheckResult]

    @property
    def passed(self) -> bool:
        return all(r.status != "failed" for r in self.results)

    @property
    def checks(self) -> list[str]:
        return [r.check for r in self.results]

    def raise_for_failures(self) -> None:
        failed = [r for r in self.results if r.status == "failed"]
        if failed:
            more = f" ({len(failed) - 1} more check(s) failed; see the validation report)" if len(failed) > 1 else ""
            raise DataValidationError(failed[0].detail + more)

    def markdown(self) -> str:
        icon = {"passed": "passed", "warning": "**warning**", "failed": "**FAILED**"}
        verdict = "passed" if self.passed else "failed"
        rows = "\n".join(f"| {r.check} | {icon[r.status]} | {r.detail} |" for r in self.results)
        sizes = " · ".join(f"{k} {v}" for k, v in self.splits.items())
        return (
            f"### Data validation: {verdict}\n\nDataset `{self.fingerprint}`: {sizes}\n\n"
            f"| check | result | detail |\n|---|---|---|\n{rows}\n"
        )


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
            self.first_row, self.first_label = offset + index, labels[index].item()
        self.count += int(failed.sum())


class _SplitScan:
    """What one pass over a split found: bad rows, class counts, and example hashes."""

    def __init__(self) -> None:
        self.nonfinite = _RowFailures()
        self.out_of_range = _RowFailures()  # class ids outside the classes, or targets that are not finite
        self.classes: Counter[int] = Counter()
        self.hash_blocks: list[np.ndarray] = []  # uint64 per row, batch by batch

    @property
    def hashes(self) -> np.ndarray:
        return np.concatenate(self.hash_blocks) if self.hash_blocks else np.zeros(0, np.uint64)


# 64-bit hashes of each row's bytes, 8 B a row in one array: 12M rows keep 96 MB, where a
# Python bytes object per row kept over 1 GB. Two different rows share a hash with odds
# of about n^2 / 2^65 (4e-6 for 12M rows), and that only miscounts the leakage check.
# The mixer is the split rule's (tasks/data/splits.py); unlike a row's split hash,
# this one reads the raw bytes, so rows are equal here only when they are bit for bit.


def _row_hashes(features: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
    """A 64-bit hash of every row's bytes, vectorized over the rows (text: one digest per example).

    A typed table's row (one array per column) hashes its columns' hashes in column order.
    """
    if isinstance(features, dict):
        columns = list(features.values())
        hashes = np.full(len(columns[0]) if columns else 0, np.uint64(len(columns)), dtype=np.uint64)
        for values in columns:
            hashes = mix64(hashes ^ _row_hashes(values))
        return hashes
    if features.dtype.kind in "OSU":  # text: one byte string per value
        values = features.reshape(len(features), -1)
        if values.shape[1] != 1:  # several text columns (a typed table's text group): hashed column by column
            hashes = np.full(len(values), np.uint64(values.shape[1]), dtype=np.uint64)
            for column in range(values.shape[1]):
                hashes = mix64(hashes ^ _row_hashes(values[:, column]))
            return hashes
        digests = (hashlib.blake2b(bytes(row), digest_size=8).digest() for row in values[:, 0])
        return np.fromiter((int.from_bytes(d, "little") for d in digests), dtype=np.uint64, count=len(features))
    raw = np.ascontiguousarray(features.reshape(len(features), -1)).view(np.uint8).reshape(len(features), -1)
    width = raw.shape[1]
    if width % 8:  # zero-padded to whole words (np.pad took 0.45 s per million rows of 30 float32 columns)
        padded = np.zeros((len(raw), width + 8 - width % 8), dtype=np.uint8)
        padded[:, :width] = raw
        raw = padded
    words = raw.view("<u8")
    hashes = np.full(len(features), np.uint64(width), dtype=np.uint64)  # the unpadded width: padding is not data
    for column in range(words.shape[1]):
        hashes = mix64(hashes ^ words[:, column])
    return hashes


def _scan(ref: DatasetRef, split: str, num_classes: int, batch_size: int) -> _SplitScan:
    scan = _SplitScan()
    offset = 0
    numbers = ref.labels == "numbers"
    # A typed table is scanned as stored (a tensor per storage group, not per column): one
    # array of floats to check and hash instead of 30.
    for features, labels in load_batches(ref, split, batch_size=batch_size, by_column=False).as_numpy_iterator():
        if isinstance(features, dict):  # a typed table: a number may be missing (NaN, data.missing: fill), not infinite
            floats = [values.reshape(len(values), -1) for values in features.values() if values.dtype.kind == "f"]
            if floats:
                scan.nonfinite.add(np.isinf(np.concatenate(floats, axis=1)).any(axis=1), offset, labels)
        elif features.dtype.kind == "f":
            scan.nonfinite.add(~np.isfinite(features.reshape(len(features), -1)).all(axis=1), offset, labels)
        if numbers:
            scan.out_of_range.add(~np.isfinite(labels), offset, labels)
        else:
            scan.out_of_range.add((labels < 0) | (labels >= num_classes), offset, labels)
            scan.classes.update(labels.tolist())
        scan.hash_blocks.append(_row_hashes(features))
        offset += len(labels)
    return scan


def check_dataset(
    ref: DatasetRef,
    *,
    num_classes: int | None = None,
    global_batch_size: int = 1,
    replicas: int = 1,
    rules: ValidationConfig | None = None,
    batch_size: int = 16_384,
    declared_types: bool = False,
) -> ValidationReport:
    """Run every check over every split and report each; never raises for bad data.

    Args:
        ref: the materialized dataset.
        num_classes: the classes the labels must fall in (ids ``0..num_classes-1``); None for the dataset's.
        global_batch_size: rows of one training step across every replica; the training split must hold one.
        replicas: replicas in sync; above 1, the validation split must hold a global batch too.
        rules: the recipe's ``validation`` section; None for its defaults.
        batch_size: rows read at a time while the splits are scanned.
        declared_types: the recipe declares the column types (``data.columns``); only the report's wording
            depends on it.
    """
    rules = rules or ValidationConfig()
    num_classes = int(num_classes or ref.num_classes)
    results: list[CheckResult] = []

    def record(check: str, problem: str | None, passed: str, *, warning: bool = False) -> None:
        status = "passed" if problem is None else ("warning" if warning else "failed")
        results.append(CheckResult(check=check, status=status, detail=problem or passed))

    # The builder sizes the model from this shape (its input spec), so there is nothing to
    # mismatch; the row records what the model will be fed.
    if ref.typed:
        described = ", ".join(f"{column}: {type_name}" for column, type_name in (ref.column_types or {}).items())
        how = (
            "as data.columns declares"
            if declared_types
            else "inferred (numbers float_normalized, text string_categorical; data.columns sets them)"
        )
        record("column types", None, f"{described} ({how})")
    else:
        record("feature shape", None, f"{tuple(ref.feature_shape)} {ref.feature_dtype}")
    if ref.ignored_columns:
        record("columns", f"ignored, outside the recipe's schema: {', '.join(ref.ignored_columns)}", "", warning=True)

    empty = [s for s in SPLITS if ref.splits.get(s, 0) == 0]
    record(
        "not empty",
        f"split '{empty[0]}': check 'not empty' failed: 0 rows; the source produced no examples for it "
        f"(splits: {ref.splits}); widen the split spec or add data"
        if empty
        else None,
        "every split has rows",
    )
    # Validation drops its partial batch under several replicas (see tasks/train/fit.py).
    batched = ("train", "validation") if replicas > 1 else ("train",)
    small = [s for s in batched if 0 < ref.splits.get(s, 0) < global_batch_size]
    record(
        "at least one batch",
        f"split '{small[0]}': check 'at least one batch' failed: {ref.splits[small[0]]} rows, fewer than one "
        f"global batch of {global_batch_size}; lower training.batch_size or add data"
        if small
        else None,
        f"{' and '.join(batched)} hold(s) at least one global batch ({global_batch_size})",
    )
    scans = {s: _scan(ref, s, num_classes, batch_size) for s in SPLITS if s not in empty}

    nonfinite = next(((s, scan.nonfinite) for s, scan in scans.items() if scan.nonfinite.count), None)
    record(
        "finite features",
        f"split '{nonfinite[0]}': check 'finite features' failed: {nonfinite[1].count} row(s) have NaN or "
        f"infinite features, first at row {nonfinite[1].first_row}; impute or drop those rows at the source"
        if nonfinite
        else None,
        "no NaN or infinite values" if ref.feature_dtype.startswith("float") else "not numeric: not applicable",
    )
    bad_label = next(((s, scan.out_of_range) for s, scan in scans.items() if scan.out_of_range.count), None)
    if ref.labels == "numbers":
        record(
            "finite target",
            f"split '{bad_label[0]}': check 'finite target' failed: {bad_label[1].count} row(s) have a NaN or "
            f"infinite target, first at row {bad_label[1].first_row}; drop or fix those rows at the source"
            if bad_label
            else None,
            "every target is a finite number (class checks do not apply to a regression)",
        )
    else:
        record(
            "label range",
            f"split '{bad_label[0]}': check 'label range' failed: {bad_label[1].count} row(s) have labels outside "
            f"0..{num_classes - 1}, first at row {bad_label[1].first_row} (label {bad_label[1].first_label}); "
            "fix the labels or set model.num_classes"
            if bad_label
            else None,
            f"labels within 0..{num_classes - 1}",
        )
    train = scans.get("train")
    if train is not None:
        if ref.labels != "numbers":
            _check_classes(ref, scans, num_classes, rules, record)
        _check_leakage(scans, rules, record)
    class_counts = {
        ref.class_names[c] if c < len(ref.class_names) else str(c): n
        for c, n in sorted((train.classes if train else Counter()).items())
    }
    return ValidationReport(
        fingerprint=ref.fingerprint, splits=dict(ref.splits), class_counts=class_counts, results=results
    )


def _check_classes(ref: DatasetRef, scans: dict[str, _SplitScan], num_classes: int, rules, record) -> None:
    train = scans["train"].classes

    def name(c: int) -> str:
        return ref.class_names[c] if 0 <= c < len(ref.class_names) else str(c)

    unseen = next(
        ((s, sorted(set(sc.classes) - set(train))) for s, sc in scans.items() if set(sc.classes) - set(train)), None
    )
    record(
        "classes seen in training",
        f"split '{unseen[0]}': check 'classes seen in training' failed: class(es) {[name(c) for c in unseen[1]]} "
        f"occur in {unseen[0]} but never in train, so the model cannot learn them; add training data for them"
        if unseen
        else None,
        "every evaluated class occurs in train",
    )
    present = [train.get(c, 0) for c in range(num_classes)]
    smallest, largest = min(present), max(present)
    ratio = largest / smallest if smallest else float("inf")
    counts = ", ".join(f"{name(c)}: {n}" for c, n in enumerate(present))
    summary = f"majority/minority {ratio:.1f} ({counts})"
    if rules.max_class_imbalance is not None and ratio > rules.max_class_imbalance:
        cause = (
            f"class(es) {[name(c) for c, n in enumerate(present) if n == 0]} have no training examples"
            if not smallest
            else f"majority/minority ratio {ratio:.1f} exceeds validation.max_class_imbalance="
            f"{rules.max_class_imbalance:g}"
        )
        record(
            "class balance",
            f"split 'train': check 'class balance' failed: {cause} ({counts}); rebalance the data, "
            "set model.num_classes, or raise validation.max_class_imbalance",
            "",
        )
    elif ratio > rules.warn_class_imbalance:
        record("class balance", f"skewed: {summary}; consider class weights or resampling", "", warning=True)
    else:
        record("class balance", None, summary)


def _check_leakage(scans: dict[str, _SplitScan], rules, record) -> None:
    # Sorted and searched: np.unique and np.isin took 2.1 s per million rows here, this 0.1 s.
    # The split's hashes are searched in sorted order too: looked up in row order, each
    # search lands far from the last (0.46 s for 750k rows in 3.5M, 0.10 s sorted).
    seen = np.sort(scans["train"].hashes)
    for split in ("validation", "test"):
        scan = scans.get(split)
        if scan is None:
            continue
        hashes = scan.hashes
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        found = np.minimum(np.searchsorted(seen, ordered), max(len(seen) - 1, 0))
        shared = np.sort(order[seen[found] == ordered]) if len(seen) else np.zeros(0, dtype=np.int64)
        if len(shared) > rules.max_shared_fraction * len(hashes):
            record(
                f"no train/{split} leakage",
                f"split '{split}': check 'no train/{split} leakage' failed: {len(shared)} of {len(hashes)} "
                f"example(s) also occur exactly in train, first at row {shared[0]}; deduplicate the source before "
                f"splitting (allowed: validation.max_shared_fraction={rules.max_shared_fraction:g})",
                "",
            )
        else:
            record(f"no train/{split} leakage", None, f"{len(shared)} example(s) shared with train")


@task(name="validate")
def validate(dataset: DatasetRef, config: TrainConfig) -> ValidationReport:
    """Run every data check, publish the report, and refuse data that failed one.

    Args:
        dataset: the materialized dataset.
        config: the recipe's config (``model.num_classes``, ``training.batch_size``, ``runtime.devices``,
            ``validation``).

    Raises:
        DataValidationError: a check failed; the message is the first failure's.
    """
    devices = len(config.runtime.devices or []) or 1
    report = check_dataset(
        dataset,
        num_classes=config.model.num_classes,
        global_batch_size=config.training.batch_size * devices,
        replicas=devices,
        rules=config.validation,
        declared_types=config.data.columns is not None,
    )
    create_markdown_artifact(
        key="validation-report", markdown=report.markdown(), description="data checks run before training"
    )
    report.raise_for_failures()
    return report
