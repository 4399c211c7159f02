"""The input signature a model version records at registration, and the checks of data against it.

Scoring refuses data whose examples are not what the model was trained on before any row
is scored: a table's columns by name (a file or a DataFrame), a typed table's batch by its
columns, other examples by shape. The signature also gives a placeholder row, scored to
learn the output's columns when the input has none.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kerasflow.models.column_types import column_type
from kerasflow.tasks.failures import DataValidationError


def signature_of(metadata: dict[str, Any]) -> dict[str, Any]:
    """The input signature a version's ``metadata`` records: shape, dtype, columns, column types, missing, classes."""
    dataset = metadata.get("dataset", {})
    columns, types = dataset.get("feature_names"), dataset.get("column_types")
    if columns and types and set(columns) == set(types):
        # In the table's order, which says each column's place in the numbers block (models/number_block.py):
        # metadata.json is written with sorted keys, its list of feature names keeps the order.
        types = {column: types[column] for column in columns}
    return {
        "shape": list(dataset.get("feature_shape") or []),
        "dtype": dataset.get("feature_dtype"),
        "columns": columns,
        # A typed table's columns and types (models registered before typed tables have none).
        "column_types": types,
        "missing": dataset.get("missing", "error"),
        "classes": dataset.get("class_names"),
    }


def check_columns(present: list[str], wanted: list[str], *, source: str) -> None:
    """Refuse a table (a file, a DataFrame) that lacks a column the model reads, before any row is scored.

    Args:
        present: the table's columns, in its order.
        wanted: the columns scoring reads: the recorded feature columns, and a key column when one is asked for.
        source: the file or frame, for the message.

    Raises:
        DataValidationError: a column of ``wanted`` is not in ``present``.
    """
    absent = [c for c in wanted if c not in present]
    if absent:
        raise DataValidationError(
            f"{source}: check 'input signature' failed: missing column(s) {absent} the model was trained on; "
            f"it has {list(present)}"
        )


def check_signature(metadata: dict[str, Any], features: np.ndarray | dict[str, np.ndarray], *, source: str) -> None:
    """Refuse data whose examples are not what the model was trained on, before scoring.

    Args:
        metadata: the version's metadata.
        features: one batch: an array of examples, or a typed table's columns by name.
        source: the file or split the batch came from, for the message.

    Raises:
        DataValidationError: a typed table's columns, or the examples' shape, differ from the recorded ones.
    """
    if isinstance(features, dict):  # a typed table's columns: read by name and type from the signature
        expected_columns = sorted(signature_of(metadata)["column_types"] or {})
        if sorted(features) != expected_columns:
            raise DataValidationError(
                f"{source}: check 'input signature' failed: columns {sorted(features)}, {metadata['name']} "
                f"v{metadata['version']} expects {expected_columns}"
            )
        return
    expected = tuple(signature_of(metadata)["shape"])
    if expected and tuple(features.shape[1:]) != expected:
        raise DataValidationError(
            f"{source}: check 'input signature' failed: examples have shape {tuple(features.shape[1:])}, "
            f"{metadata['name']} v{metadata['version']} expects {expected}; score data with the same "
            "columns or image size as its training data"
        )


def one_row(signature: dict[str, Any], feature_shape: tuple[int, ...]) -> np.ndarray | dict[str, np.ndarray]:
    """A placeholder row the model accepts (scored to learn the output's columns when there are no rows).

    Args:
        signature: the version's input signature (:func:`signature_of`).
        feature_shape: one example's shape, for a model without column types.
    """
    if signature["column_types"] is None:
        return np.zeros((1, *feature_shape), dtype="float32")

    blank = {"float": np.zeros(1, "float32"), "integer": np.zeros(1, "int64"), "string": np.array([""], object)}
    return {name: blank[column_type(t).storage] for name, t in signature["column_types"].items()}
