"""Batch scoring: a registered model's predictions for a table or a dataset split, as Parquet.

Plain functions and one Prefect task. The model is loaded verified and in safe mode; the
input is checked against the signature recorded at registration before anything is
scored; the output appears whole or not at all (written aside, then moved or PUT).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from kerasflow.models.registry import ModelRegistry, RegistryError, parse_model_ref
from kerasflow.tasks import storage
from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.failures import DataValidationError, retry_unless_deterministic
from kerasflow.tasks.learning_tasks import LearningTask, task_of_metadata
from kerasflow.tasks.refs import DatasetRef, ScoredTable

__all__ = ["predictions_frame", "score", "score_rows", "write_parquet"]


def signature_of(metadata: dict[str, Any]) -> dict[str, Any]:
    dataset = metadata.get("dataset", {})
    return {
        "shape": list(dataset.get("feature_shape") or []),
        "dtype": dataset.get("feature_dtype"),
        "columns": dataset.get("feature_names"),
        "classes": dataset.get("class_names"),
    }


def check_signature(metadata: dict[str, Any], features: np.ndarray, *, source: str) -> None:
    """Refuse data whose examples are not what the model was trained on, before scoring."""
    expected = tuple(signature_of(metadata)["shape"])
    if expected and tuple(features.shape[1:]) != expected:
        raise DataValidationError(
            f"{source}: check 'input signature' failed: examples have shape {tuple(features.shape[1:])}, "
            f"{metadata['name']} v{metadata['version']} expects {expected}; score data with the same "
            "columns or image size as its training data"
        )


def read_table_features(url: str, *, columns: list[str], key_column: str | None) -> tuple[np.ndarray, Any]:
    """Feature columns (and the key column) of every file ``url`` names; labels not needed."""
    from kerasflow.tasks.ingest import tabular

    files = tabular.list_files(url)
    features, keys = [], []
    with tempfile.TemporaryDirectory(prefix="kerasflow-score-") as tmp:
        for file, path in zip(files, tabular.download_files(files, Path(tmp)), strict=True):
            frame = tabular.read_frame(file.url, path)
            wanted = [*columns, *([key_column] if key_column else [])]
            missing = [c for c in wanted if c not in frame.columns]
            if missing:
                raise DataValidationError(
                    f"{file.url}: check 'input signature' failed: missing column(s) {missing} the model was "
                    f"trained on; the file has {list(frame.columns)}"
                )
            features.append(tabular.numeric_features(file.url, frame, columns))
            if key_column:
                keys.append(frame[key_column].to_numpy())
    return np.concatenate(features), (np.concatenate(keys) if key_column else None)


def split_arrays(ref: DatasetRef, split: str) -> tuple[np.ndarray, np.ndarray]:
    from kerasflow.tasks.ingest.pipeline import load_split

    batches = list(load_split(ref, split).batch(4096).as_numpy_iterator())
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])


def score_rows(model: Any, features: np.ndarray, *, batch_size: int = 1024) -> np.ndarray:
    """The model's raw outputs for ``features`` (probabilities, or numbers), batch by batch."""
    return np.asarray(model.predict(features, batch_size=batch_size, verbose=0))


def predictions_frame(
    outputs: np.ndarray,
    *,
    task: LearningTask,
    class_names: list[str],
    name: str,
    version: int,
    keys: Any = None,
    key_column: str | None = None,
    labels: np.ndarray | None = None,
):
    """One row per example: its key, row number, the task's prediction columns, the label, the model."""
    import pandas as pd

    columns: dict[str, Any] = {}
    if key_column is not None and keys is not None:
        columns[key_column] = keys
    columns["row"] = np.arange(len(outputs))
    columns.update(task.prediction_columns(outputs, class_names=class_names))
    if labels is not None:
        columns["label"] = task.label_column(labels, class_names=class_names)
    columns["model_name"] = name
    columns["model_version"] = int(version)
    return pd.DataFrame(columns)


def write_parquet(frame, url: str) -> None:
    """Write ``frame`` to ``url`` whole: aside and renamed on a disk, one PUT on object stores."""
    if storage.is_local(url):
        target = Path(url.removeprefix("file://"))
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
        try:
            frame.to_parquet(partial, index=False)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return
    with tempfile.TemporaryDirectory(prefix="kerasflow-score-") as tmp:
        local = Path(tmp) / "scores.parquet"
        frame.to_parquet(local, index=False)
        fs, path = storage.filesystem(url)
        with storage.reaching(url):
            fs.put_file(os.fspath(local), path)


@task(
    name="score",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=retry_unless_deterministic,
    cache_policy=NO_CACHE,
)
def score(
    model_ref: str,
    *,
    root: str,
    output: str,
    data: DataConfig | None = None,
    dataset: DatasetRef | None = None,
    split: str = "test",
    key_column: str | None = None,
    trusted_packages: tuple[str, ...] = (),
) -> ScoredTable:
    """Score a table (``data``, files) or a materialized split (``dataset``) and write Parquet.

    ``trusted_packages`` are the packages whose registered Keras classes the model may use;
    they come from whoever runs the scoring, never from the version's metadata.
    """
    logger = get_run_logger()
    name, selector = parse_model_ref(model_ref)
    registry = ModelRegistry(storage.registry_url(root))
    try:
        metadata = registry.resolve(name, selector)
    except (RegistryError, ValueError) as error:
        raise DataValidationError(f"cannot score with {model_ref!r}: {error}") from None
    signature = signature_of(metadata)
    labels = keys = None
    if dataset is not None:
        features, labels = split_arrays(dataset, split)
        source = f"split '{split}' of dataset {dataset.fingerprint}"
    else:
        columns = signature["columns"] or (data.feature_columns if data else None)
        if not columns:
            raise DataValidationError(f"{model_ref}: its metadata names no feature columns to read from a table")
        features, keys = read_table_features(data.url or "", columns=columns, key_column=key_column)
        source = data.url or ""
    check_signature(metadata, features, source=source)
    # Verified against its sha256, inspected, in safe mode; a refused file is not retried.
    model = registry.load(name, metadata["version"], trusted_packages=trusted_packages)
    outputs = score_rows(model, features)
    frame = predictions_frame(
        outputs,
        task=task_of_metadata(metadata),
        class_names=list(signature["classes"] or []),
        name=name,
        version=metadata["version"],
        keys=keys,
        key_column=key_column,
        labels=labels,
    )
    write_parquet(frame, output)
    logger.info("scored %d row(s) of %s with %s v%d into %s", len(frame), source, name, metadata["version"], output)
    return ScoredTable(model_name=name, model_version=metadata["version"], rows=len(frame), output=output)
