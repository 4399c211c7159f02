"""Batch scoring: a registered model's predictions for a table or a dataset split, as Parquet.

Plain functions and one Prefect task. The model is loaded verified and in safe mode; the
input is checked against the signature recorded at registration (every file's columns
before any row is scored, each batch's shape before it is); the input is read, scored and
written batch by batch, so memory holds one batch whatever the table's size; the output
appears whole or not at all (row groups written aside, then moved or PUT).
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from kerasflow.models.column_types import column_type
from kerasflow.models.registry import ModelRegistry, RegistryError, parse_model_ref
from kerasflow.tasks import drift, storage
from kerasflow.tasks.config import ConfigError, DataConfig, DriftConfig, WindowConfig
from kerasflow.tasks.data.pipeline import load_batches
from kerasflow.tasks.data.statistics import SplitStatistics
from kerasflow.tasks.data.typed_arrays import statistics_of
from kerasflow.tasks.failures import DataValidationError, retry_unless_deterministic
from kerasflow.tasks.ingest.sources.tables import tabular, typed_columns, window
from kerasflow.tasks.learning.learning_tasks import LearningTask, task_of_metadata
from kerasflow.tasks.progress import ProgressArtifact
from kerasflow.tasks.refs import DatasetRef, ScoredTable
from kerasflow.tasks.storage.output_location import SCORES_METADATA_KEY, check_output_location
from kerasflow.tasks.storage.parquet_output import ParquetOutput

__all__ = ["check_scoring_output", "output_columns", "predictions_frame", "score", "score_rows"]

# Rows read, scored and written at a time; see tabular.FRAME_ROWS.
SCORE_ROWS = 65_536


def signature_of(metadata: dict[str, Any]) -> dict[str, Any]:
    """The input signature a version's ``metadata`` records: shape, dtype, columns, column types, missing, classes."""
    dataset = metadata.get("dataset", {})
    return {
        "shape": list(dataset.get("feature_shape") or []),
        "dtype": dataset.get("feature_dtype"),
        "columns": dataset.get("feature_names"),
        # A typed table's columns and types (models registered before typed tables have none).
        "column_types": dataset.get("column_types"),
        "missing": dataset.get("missing", "error"),
        "classes": dataset.get("class_names"),
    }


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


def table_batches(
    files: list,
    paths: list[Path],
    *,
    columns: list[str],
    key_column: str | None,
    rows: int,
    column_types: dict[str, str] | None = None,
    missing: str = "error",
    time_window: WindowConfig | None = None,
) -> Iterator[tuple[np.ndarray | dict[str, np.ndarray], Any, str]]:
    """(features, keys, file URL) of ``files`` batch by batch, feature and key columns only; labels not needed.

    ``column_types``: a typed table's columns and types as recorded at registration; each
    column is then read as ingestion read it (tasks/ingest/sources/tables/typed_columns.py), its values
    checked against its type, and fed by name. ``missing``: the model's ``data.missing``.
    ``time_window``: a window over a timestamp column; only its rows are scored.

    Args:
        files: the table's files (``TableFile``), in order.
        paths: the local copy of each of ``files``.
        columns: the feature columns to read.
        key_column: a column read beside the features and returned as the keys; None for none.
        rows: rows read at a time.
        column_types: feature column -> type, as recorded at registration; None for a table of numbers.
        missing: the model's ``data.missing`` (``error`` or ``fill``).
        time_window: a window over a timestamp column; None to score every row.

    Raises:
        DataValidationError: a file lacks a column, or a value does not fit its column's type.
    """

    kept = [c for c in (key_column, time_window.column if time_window else None) if c and c not in columns]
    wanted = [*columns, *dict.fromkeys(kept)]
    # Every file's columns first, from its schema or header: a file that lacks one fails the
    # scoring before any row is scored, not after the files before it.
    for file, path in zip(files, paths, strict=True):
        present = tabular.columns_of(file.url, path)
        absent = [c for c in wanted if c not in present]
        if absent:
            raise DataValidationError(
                f"{file.url}: check 'input signature' failed: missing column(s) {absent} the model was "
                f"trained on; the file has {present}"
            )
    for file, path in zip(files, paths, strict=True):
        for first_row, frame in tabular.iter_frames(file.url, path, columns=wanted, rows=rows):
            if time_window is not None:
                frame = window.rows_in_window(file.url, frame, time_window, first_row=first_row)
                if frame.empty:
                    continue
            if column_types is not None:
                arrays = typed_columns.read_columns(file.url, frame, column_types, missing=missing, first_row=first_row)
                features: Any = arrays.columns(column_types)
            else:
                features = tabular.numeric_features(file.url, frame, columns, first_row=first_row)
            yield features, (frame[key_column].to_numpy() if key_column else None), file.url


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


def split_batches(ref: DatasetRef, split: str, *, rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(features, labels) of a stored dataset's ``split``, ``rows`` at a time, in stored order.

    Args:
        ref: the stored dataset.
        split: the split's name.
        rows: rows per batch.
    """
    yield from load_batches(ref, split, batch_size=rows).as_numpy_iterator()


def score_rows(model: Any, features: np.ndarray, *, batch_size: int = 1024) -> np.ndarray:
    """The model's raw outputs for ``features`` (probabilities, or numbers), batch by batch.

    Args:
        model: a loaded Keras model.
        features: the examples, or a typed table's columns by name.
        batch_size: rows per ``model.predict`` step.
    """
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
    rows: int = SCORE_ROWS,
    fail_on_skew: bool = False,
    overwrite: bool = False,
) -> ScoredTable:
    """Score a table (``data``, files) or a materialized split (``dataset``) and write Parquet.

    ``trusted_packages`` are the packages whose registered Keras classes the model may use;
    they come from whoever runs the scoring, never from the version's metadata. ``rows``:
    rows read, scored and written at a time (one Parquet row group each), so memory holds
    one batch whatever the size of the input. A typed table's columns are compared with
    the model's training data (tasks/drift.py): the skew report is written beside the
    output (``<output>.skew.json``) and shown as an artifact; with ``fail_on_skew`` a
    skewed column fails the scoring and no output is written.

    The output is checked before any row is read (:func:`check_scoring_output`): never under
    the root's kept folders, never an input, never a link or a device, and an existing file
    only when kerasflow wrote it as scores, unless ``overwrite``.

    Args:
        model_ref: the model to score with: ``NAME``, ``NAME@ALIAS`` or ``NAME@VERSION``.
        root: the storage root whose registry holds the model.
        output: where the Parquet file of scores goes, any fsspec URL.
        data: the table to score (``source: files``); used when ``dataset`` is None.
        dataset: a materialized dataset, whose ``split`` is scored.
        split: the split of ``dataset`` to score.
        key_column: a table column copied beside the scores; None for none.
        trusted_packages: packages whose registered Keras classes the model may use.
        rows: rows read, scored and written at a time.
        fail_on_skew: fail, writing nothing, when a scored column is skewed.
        overwrite: replace an existing file at ``output`` that kerasflow did not write.

    Raises:
        DataValidationError: the model cannot be resolved, or the data does not match its signature.
        ConfigError: the output location is refused, or the key collides with a score column.
        DataDrifted: a column is skewed and ``fail_on_skew`` is set.
    """
    logger = get_run_logger()
    registry, name, metadata = resolve_version(model_ref, root=root)
    with tempfile.TemporaryDirectory(prefix="kerasflow-score-") as tmp:
        if dataset is not None:
            check_scoring_output(metadata, output=output, root=root, key_column=key_column, overwrite=overwrite)
            scoring = split_input(dataset, split, rows=rows)
        else:
            files = tabular.list_files(data.url or "")
            check_scoring_output(
                metadata,
                output=output,
                root=root,
                key_column=key_column,
                inputs=[file.url for file in files],
                input_url=data.url or "",
                overwrite=overwrite,
            )
            scoring = table_input(
                files, data, metadata, model_ref=model_ref, key_column=key_column, rows=rows, folder=Path(tmp)
            )
        rows_written = write_scores(
            scoring,
            registry=registry,
            name=name,
            metadata=metadata,
            output=output,
            root=root,
            key_column=key_column,
            trusted_packages=trusted_packages,
            fail_on_skew=fail_on_skew,
            progress=ScoringProgress(logger, total=scoring.total, source=scoring.source),
        )
    logger.info(
        "scored %d row(s) of %s with %s v%d into %s", rows_written, scoring.source, name, metadata["version"], output
    )
    return ScoredTable(model_name=name, model_version=metadata["version"], rows=rows_written, output=output)


class ScoringInput(NamedTuple):
    """What is scored: where it comes from, how many rows (when known), one example's shape, its batches.

    Each batch is ``(features, keys or None, labels or None, the file or split it came from)``.

    Attributes:
        source: where the rows come from (the table's URL, or the split and dataset), for messages.
        total: the rows to score, when known (a split); None for a table.
        feature_shape: one example's shape.
        batches: the batches, read as they are iterated.
        from_table: the rows are a team's files, not a split of a stored dataset.
    """

    source: str
    total: int | None
    feature_shape: tuple[int, ...]
    batches: Iterator[tuple[Any, np.ndarray | None, np.ndarray | None, str]]
    from_table: bool  # a team's files, not a split of a stored dataset


def resolve_version(model_ref: str, *, root: str) -> tuple[ModelRegistry, str, dict[str, Any]]:
    """(the registry, the model's name, the version's metadata) that ``NAME[@ALIAS|@VERSION]`` names.

    Args:
        model_ref: ``NAME``, ``NAME@ALIAS`` or ``NAME@VERSION``.
        root: the storage root whose registry holds it.

    Raises:
        DataValidationError: no such model, alias or version (a retry cannot help).
    """
    name, selector = parse_model_ref(model_ref)
    registry = ModelRegistry(storage.registry_url(root))
    try:
        return registry, name, registry.resolve(name, selector)
    except (RegistryError, ValueError) as error:
        raise DataValidationError(f"cannot score with {model_ref!r}: {error}") from None


def split_input(dataset: DatasetRef, split: str, *, rows: int) -> ScoringInput:
    """A split of a stored dataset, ``rows`` at a time, with its labels.

    Args:
        dataset: the stored dataset.
        split: its split to score (``test``, ``validation``, ``train``).
        rows: rows per batch.
    """
    source = f"split '{split}' of dataset {dataset.fingerprint}"
    return ScoringInput(
        source=source,
        total=dataset.splits.get(split),
        feature_shape=tuple(dataset.feature_shape),
        batches=((x, None, y, source) for x, y in split_batches(dataset, split, rows=rows)),
        from_table=False,
    )


def table_input(
    files: list[Any],
    data: DataConfig,
    metadata: dict[str, Any],
    *,
    model_ref: str,
    key_column: str | None,
    rows: int,
    folder: Path,
) -> ScoringInput:
    """A table's files (CSV or Parquet), in the recorded columns, ``rows`` at a time.

    Args:
        files: the table's files, as listed from ``data.url``.
        data: the data section naming the table (its URL, window and, for versions without a
            recorded signature, its feature columns).
        metadata: the version's metadata: its columns, their types and how missing values are read.
        model_ref: the model as the user named it, for messages.
        key_column: a column copied beside the scores, or None.
        rows: rows per batch.
        folder: where remote files are downloaded for the duration of the scoring.

    Raises:
        DataValidationError: the version records no feature columns to read.
    """

    signature = signature_of(metadata)
    source = data.url or ""
    columns = signature["columns"] or data.feature_columns
    if not columns:
        raise DataValidationError(f"{model_ref}: its metadata names no feature columns to read from a table")
    time_window = data.window if data.window is not None and data.window.column else None
    if time_window is not None:
        files = window.files_for_time_window(files, time_window, url=source)
    elif data.window is not None:
        files = window.in_window(files, data.window, url=source)
    paths = tabular.download_files(files, folder)
    batches = (
        (x, keys, None, url)
        for x, keys, url in table_batches(
            files,
            paths,
            columns=columns,
            key_column=key_column,
            rows=rows,
            column_types=signature["column_types"],
            missing=signature["missing"],
            time_window=time_window,
        )
    )
    return ScoringInput(source=source, total=None, feature_shape=(len(columns),), batches=batches, from_table=True)


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
                frame_of(score_rows(model, features), keys=keys, labels=labels, first_row=written.rows),
                source=batch_source,
            )
            progress.scored(written.rows)
        if written.rows == 0:  # empty files: an empty table with the columns, typed as one row's
            model = model or registry.load(name, version, trusted_packages=trusted_packages)
            empty = score_rows(model, one_row(signature, scoring.feature_shape))[:0]
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


class ScoringProgress:
    """A log line and a progress artifact as batches are scored, at most every few seconds.

    Args:
        logger: the logger of the scoring's lines (a Prefect run logger).
        total: the rows to score, when known; without it no percentage is shown.
        source: what is scored, for the log lines and the artifact.
        min_update_seconds: the fewest seconds between two reports.
    """

    def __init__(self, logger: Any, *, total: int | None, source: str, min_update_seconds: float = 5.0):
        self.logger, self.total, self.source = logger, total, source
        self.min_update_seconds = min_update_seconds
        self._last = time.monotonic()
        self._artifact = ProgressArtifact("scoring-progress", f"scoring {source}")

    def scored(self, rows: int) -> None:
        """Report ``rows`` scored so far, unless the last report is less than ``min_update_seconds`` old."""
        now = time.monotonic()
        if now - self._last < self.min_update_seconds:
            return
        self._last = now
        of_total = f" of {self.total}" if self.total else ""
        self.logger.info("scored %d row(s)%s of %s so far", rows, of_total, self.source)
        if self.total:
            self._artifact.show(100.0 * rows / self.total)

    def done(self, rows: int) -> None:
        """Complete the progress artifact (100 %) if one was shown; ``rows``, the rows scored, is not used."""
        self._artifact.finish()
