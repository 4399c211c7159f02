"""What scoring writes: the prediction columns, where they may go, the Parquet file, and the skew beside it.

The output is checked before any row is read (never under the root's kept folders, never
an input, and a key column that a score column would overwrite is refused); the scores are
written batch by batch and appear whole or not at all; a typed table's columns are
compared with the model's training data and the skew report is written beside the scores.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from kerasflow.models.number_block import model_feed, takes_block
from kerasflow.models.registry import ModelRegistry
from kerasflow.tasks import drift, storage
from kerasflow.tasks.config import ConfigError, DriftConfig
from kerasflow.tasks.data.statistics import SplitStatistics
from kerasflow.tasks.data.typed_arrays import statistics_of
from kerasflow.tasks.learning.learning_tasks import LearningTask, task_of_metadata
from kerasflow.tasks.score.inputs import ScoringInput
from kerasflow.tasks.score.progress import ScoringProgress
from kerasflow.tasks.score.signature import check_signature, one_row, signature_of
from kerasflow.tasks.storage.output_location import SCORES_METADATA_KEY, check_output_location
from kerasflow.tasks.storage.parquet_output import ParquetOutput


def score_rows(
    model: Any,
    features: np.ndarray | dict[str, np.ndarray],
    *,
    column_types: dict[str, str] | None = None,
    batch_size: int = 1024,
) -> np.ndarray:
    """The model's raw outputs for ``features`` (probabilities, or numbers), ``batch_size`` rows at a time.

    Each step is one ``predict_on_batch``, as evaluation scores (tasks/evaluate.py):
    ``model.predict`` builds a data adapter and an iterator on every call (about 70 ms on
    two cores), where a hundred rows take 2 ms to score in process (bench/predictor.py).

    A typed table's columns go in as training feeds them (``model_feed``): under the model's
    input names (a column Keras would not take as a name, ``a/b``, under its safe one), the
    numbers stacked as one block, or one by one for a model registered before the block.

    Args:
        model: a loaded Keras model.
        features: the examples, or a typed table's columns by name.
        column_types: a typed table's columns and types, in order, as recorded at registration; None for
            examples.
        batch_size: rows per step.
    """
    if isinstance(features, dict):
        features = model_feed(features, types=column_types or {}, block=takes_block(model))
    rows = len(next(iter(features.values()))) if isinstance(features, dict) else len(features)
    if rows <= batch_size:
        return np.asarray(model.predict_on_batch(features))
    steps = []
    for start in range(0, rows, batch_size):
        if isinstance(features, dict):
            step: Any = {name: column[start : start + batch_size] for name, column in features.items()}
        else:
            step = features[start : start + batch_size]
        steps.append(np.asarray(model.predict_on_batch(step)))
    return np.concatenate(steps)


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
    first_row: int = 0,
):
    """One row per example: its key, row number, the task's prediction columns, the label, the model.

    Args:
        outputs: the model's raw outputs, one row per example.
        task: the learning task that turns outputs into prediction columns.
        class_names: the classes, in the order of the model's outputs.
        name: the model's name, written in ``model_name``.
        version: the version, written in ``model_version``.
        keys: the key column's values, one per example; None for none.
        key_column: the key column's name; None for none.
        labels: the labels, one per example; None when the input has none.
        first_row: the row number of the first example (``row`` counts on from it).

    Raises:
        ConfigError: ``key_column`` is the name of a column the scores write.
    """
    import pandas as pd

    columns: dict[str, Any] = {}
    if key_column is not None and keys is not None:
        columns[key_column] = keys
    columns["row"] = np.arange(first_row, first_row + len(outputs))
    predicted = task.prediction_columns(outputs, class_names=class_names)
    if key_column is not None and key_column in {"row", *predicted, "label", "model_name", "model_version"}:
        raise _key_collides(key_column, [*columns, *predicted, "label", "model_name", "model_version"])
    columns.update(predicted)
    if labels is not None:
        columns["label"] = task.label_column(labels, class_names=class_names)
    columns["model_name"] = name
    columns["model_version"] = int(version)
    return pd.DataFrame(columns)


def output_columns(metadata: dict[str, Any]) -> list[str]:
    """The columns scoring with the version ``metadata`` describes writes, besides the key."""
    task = task_of_metadata(metadata)
    classes = list(signature_of(metadata)["classes"] or [])
    units = task.output(len(classes))[0]
    predicted = task.prediction_columns(np.zeros((1, units), "float32"), class_names=classes)
    return ["row", *predicted, "label", "model_name", "model_version"]


def _key_collides(key_column: str, columns: list[str]) -> ConfigError:
    return ConfigError(
        f"received --key {key_column!r}, which is also a column the scores write ({', '.join(columns)}); "
        "the key would be overwritten. Score with the key under another name (rename the column in the data)"
    )


def check_scoring_output(
    metadata: dict[str, Any],
    *,
    output: str,
    root: str,
    key_column: str | None = None,
    inputs: list[str] | None = None,
    input_url: str | None = None,
    overwrite: bool = False,
) -> None:
    """Refuse, before any row is read, an output that would destroy something, or a key the scores overwrite.

    Args:
        metadata: the version's metadata (its task and classes name the output's columns).
        output: where the scores go; the skew report goes beside it.
        root: the storage root, whose kept folders are never written.
        key_column: the column copied from the input beside the scores.
        inputs: the URLs of the files scored.
        input_url: the data URL as given (a folder or glob).
        overwrite: replace an existing file kerasflow did not write.

    Raises:
        ConfigError: the key collides with an output column, or (OutputLocationError) the output
            location is refused (tasks/storage/output_location.py).
    """
    if key_column is not None:
        columns = output_columns(metadata)
        if key_column in columns:
            raise _key_collides(key_column, columns)
    check_output_location(
        output, root=root, inputs=inputs or (), input_url=input_url, overwrite=overwrite, beside=[skew_url(output)]
    )


def write_scores(
    scoring: ScoringInput,
    *,
    registry: ModelRegistry,
    name: str,
    metadata: dict[str, Any],
    output: str,
    root: str,
    key_column: str | None,
    trusted_packages: tuple[str, ...],
    fail_on_skew: bool,
    progress: ScoringProgress,
) -> int:
    """Score every batch of ``scoring`` and write the scores to ``output`` as Parquet; the rows written.

    Each batch is checked against the recorded signature before it is scored; the model is
    loaded (verified, in safe mode) once the first batch passed. A typed table's skew
    against the training data is reported beside the output, and fails the scoring with
    ``fail_on_skew`` before the output is committed.

    Args:
        scoring: what is scored.
        registry: the registry holding the version.
        name: the model's name.
        metadata: the version's metadata.
        output: where the scores go (any fsspec URL); it appears whole or not at all.
        root: the storage root (the skew report reads the version's training statistics).
        key_column: a column copied beside the scores, or None.
        trusted_packages: packages whose registered Keras classes the model may use.
        fail_on_skew: fail, writing nothing, when a column is skewed.
        progress: reports the rows scored.
    """
    version = metadata["version"]
    signature = signature_of(metadata)
    frame_of = functools.partial(
        predictions_frame,
        task=task_of_metadata(metadata),
        class_names=list(signature["classes"] or []),
        name=name,
        version=version,
        key_column=key_column,
    )
    model = None
    types = signature["column_types"]
    # A team's table is compared with the training data; a stored split is that data's own.
    observed = SplitStatistics() if scoring.from_table and signature["column_types"] else None
    marker = {SCORES_METADATA_KEY: f"{name} v{version}".encode()}
    with ParquetOutput(output, metadata=marker) as written:
        for features, keys, labels, batch_source in scoring.batches:
            check_signature(metadata, features, source=batch_source)
            if observed is not None:
                observed.merge(statistics_of(features, signature["column_types"]))
            if model is None:
                # Verified against its sha256, inspected, in safe mode; a refused file is not retried.
                model = registry.load(name, version, trusted_packages=trusted_packages)
            written.write(
                frame_of(
                    score_rows(model, features, column_types=types), keys=keys, labels=labels, first_row=written.rows
                ),
                source=batch_source,
            )
            progress.scored(written.rows)
        if written.rows == 0:  # empty files: an empty table with the columns, typed as one row's
            model = model or registry.load(name, version, trusted_packages=trusted_packages)
            empty = score_rows(model, one_row(signature, scoring.feature_shape), column_types=types)[:0]
            written.write(frame_of(empty, keys=np.array([]) if key_column else None), source=scoring.source)
        if observed is not None and written.rows:
            check_skew(observed, metadata, root=root, output=output, source=scoring.source, fail=fail_on_skew)
    progress.done(written.rows)
    return written.rows


def skew_url(output: str) -> str:
    """Where the skew report of the scores at ``output`` goes: beside them, ``<stem>.skew.json``."""
    return f"{output.removesuffix('.parquet')}.skew.json"


def check_skew(
    observed: SplitStatistics, metadata: dict[str, Any], *, root: str, output: str, source: str, fail: bool
) -> None:
    """Compare the scored columns with the model's training data; write the report; raise when asked to fail.

    The thresholds are the model's own (its recipe's ``validation.drift``).

    Args:
        observed: the statistics of the rows scored.
        metadata: the version's metadata (its training data and thresholds).
        root: the storage root holding the version's training data.
        output: where the scores go; the report is written beside it.
        source: what was scored, for the report.
        fail: raise when a column is skewed.

    Raises:
        DataDrifted: a column is skewed and ``fail`` is set.
    """

    logger = get_run_logger()
    baseline = drift.training_statistics(root, metadata)
    if baseline is None:
        logger.info(
            "skew: not checked (the training data of %s v%s has no statistics)", metadata["name"], metadata["version"]
        )
        return
    thresholds = DriftConfig.model_validate(metadata.get("config", {}).get("validation", {}).get("drift", {}))
    report = drift.compare(
        baseline[0],
        observed,
        numeric_threshold=thresholds.numeric_threshold,
        categorical_threshold=thresholds.categorical_threshold,
        thresholds=thresholds.columns,
        baseline_name=baseline[1],
        current_name=f"the scored rows of {source}",
        label=False,
    )
    storage.write_file(skew_url(output), report.model_dump_json(indent=2).encode())
    create_markdown_artifact(
        key="scoring-skew",
        markdown=drift.report_markdown(report, title="Training/serving skew", labels=("training data", "scored rows")),
        description="the scored table against the model's training data, column by column",
    )
    if report.drifted() and fail:
        raise drift.DataDrifted(
            f"skew: {report.summary()}. The scores were not written (asked to fail on skew); the report is at "
            f"{skew_url(output)}. Check the input, or score without --fail-on-skew"
        )
    (logger.warning if report.drifted() else logger.info)("skew: %s (report: %s)", report.summary(), skew_url(output))
