"""A table's label column as class ids (a classifier) or numbers (a regression target).

The one place labels are read and refused: each refusal names the file and its row
(``locate`` turns a row of the stacked column into the row within its file and the file).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from kerasflow.tasks.failures import DataValidationError


def label_class_ids(
    labels: np.ndarray, *, classes: list[str | int] | None, locate: Callable[[int], tuple[int, str]]
) -> tuple[np.ndarray, list[str]]:
    """A label column as class ids and the class names, in id order.

    The one place a label column becomes class ids. Numeric labels must be whole numbers
    (``1.0`` is class ``1``; a soft label such as ``0.16`` is refused by name); with
    ``classes`` (the recipe's ``data.classes``) each label must be one of them, else the
    ids are the integers found (``0..max``) or the sorted text values. ``locate`` turns
    a row of the stacked column into (row within its file, file URL) for messages.

    Args:
        labels: the label column, stacked over the table's files: numbers or text.
        classes: the recipe's ``data.classes``; None to take the classes from the labels.
        locate: a row of the stacked column -> (row within its file, file URL).

    Returns:
        (each row's class id as int64, the class names in id order).

    Raises:
        DataValidationError: a numeric label is not a whole number or is negative, or a label is not one of
            ``classes``.
    """
    if labels.dtype.kind == "f":
        fractional = ~np.isfinite(labels) | (np.mod(labels, 1) != 0)
        if fractional.any():
            first = int(fractional.argmax())
            row, file = locate(first)
            raise DataValidationError(
                f"{file}: check 'class labels' failed: {int(fractional.sum())} row(s) have labels that are not "
                f"whole numbers (soft labels or probabilities), first at row {row} ({labels[first].item()!r}); "
                "a classifier learns from class ids: write each label as its class (0, 1, ... or a name) at the "
                "source, or set model.task: regression if the label is a number to predict"
            )
        labels = labels.astype("int64")
    # The few distinct labels are named and looked up, each row by its index among them: a
    # text copy of every label and a lookup per row took 168 MB and 0.8 s at 2M rows.
    # Text labels (object columns, which may mix numbers and names across files) as text.
    distinct, inverse = np.unique(labels.astype(str) if labels.dtype.kind == "O" else labels, return_inverse=True)
    text = distinct.astype(str)
    if classes is not None:
        class_names = [str(c) for c in classes]
    elif labels.dtype.kind in "iu":
        if distinct.size and distinct.min() < 0:
            row, file = locate(int((labels < 0).argmax()))
            raise DataValidationError(
                f"{file}: check 'label range' failed: {int((labels < 0).sum())} row(s) have negative labels, "
                f"first at row {row}; labels must be class ids 0..N-1"
            )
        class_names = [str(i) for i in range(max(2, int(distinct.max(initial=0)) + 1))]
    else:
        class_names = sorted(text.tolist())
    index = {name: i for i, name in enumerate(class_names)}
    ids = np.array([index.get(t, -1) for t in text], dtype="int64")[inverse.reshape(-1)]
    unseen = ids < 0
    if unseen.any():
        row, file = locate(int(unseen.argmax()))
        values = sorted(set(text[inverse.reshape(-1)[unseen]].tolist()))
        raise DataValidationError(
            f"{file}: check 'known classes' failed: {int(unseen.sum())} row(s) have label(s) {values[:5]} not in "
            f"data.classes {class_names}, first at row {row}; add the class to the recipe or fix the labels"
        )
    return ids, class_names


def label_numbers(labels: np.ndarray, *, locate: Callable[[int], tuple[int, str]], column: str) -> np.ndarray:
    """A regression target column as float32, refusing text and missing or infinite values by row.

    Args:
        labels: the target column, stacked over the table's files.
        locate: a row of the stacked column -> (row within its file, file URL).
        column: the column's name, for messages.

    Raises:
        DataValidationError: a value is text, missing, infinite or beyond float32's range.
    """
    import pandas as pd

    values = pd.to_numeric(pd.Series(labels), errors="coerce").to_numpy(dtype="float64")
    text = np.isnan(values) & ~pd.isna(pd.Series(labels)).to_numpy()
    if text.any():
        first = int(text.argmax())
        row, file = locate(first)
        raise DataValidationError(
            f"{file}: check 'numeric target' failed: {int(text.sum())} row(s) have a target that is not a number "
            f"in column {column!r}, first at row {row} ({labels[first]!r}); a regression learns from numbers: "
            "clean the column, or drop model.task: regression if the label is a class"
        )
    nonfinite = ~np.isfinite(values) | (np.abs(values) > np.finfo(np.float32).max)
    if nonfinite.any():
        first = int(nonfinite.argmax())
        row, file = locate(first)
        raise DataValidationError(
            f"{file}: check 'finite target' failed: {int(nonfinite.sum())} row(s) have a NaN or infinite target in "
            f"column {column!r}, first at row {row}; drop those rows or fix the target at the source"
        )
    return values.astype("float32")
