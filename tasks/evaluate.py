"""Evaluate: the candidate's metrics on the test split, and production's on the same data.

Metrics are computed here from predictions, with the same Keras metric objects for both
models, so the candidate and the baseline are measured identically whatever each was
compiled with. With a baseline both models predict each chunk of one read of the split,
and a paired accumulator (tasks/learning/paired.py) measures candidate - baseline on
those same rows with its noise: the evidence the gate decides on (tasks/gate.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from kerasflow.models import io
from kerasflow.models.number_block import model_feed, takes_block
from kerasflow.models.registry import ModelRegistry, RegistryError
from kerasflow.tasks import storage
from kerasflow.tasks.config import ModelConfig
from kerasflow.tasks.data.pipeline import load_batches, load_slices
from kerasflow.tasks.data.row_memory import feature_bytes
from kerasflow.tasks.evaluation_report import describe_baseline, evaluation_rows, save_plots, summary_line
from kerasflow.tasks.failures import KerasflowError
from kerasflow.tasks.learning.learning_tasks import LearningTask, Measurer
from kerasflow.tasks.learning.paired import BOOTSTRAP_SEED, PairedAccumulator
from kerasflow.tasks.refs import DatasetRef, Evaluation, GateEvidence, Metrics, RunTarget, TrainedModel
from kerasflow.tasks.train.build import class_names_of, task_of

__all__ = [
    "Measurement",
    "compute_metrics",
    "evaluate",
    "evaluate_candidate",
    "evaluate_model",
    "measure_together",
    "predicted_chunks",
    "predicted_together",
]

# Rows handed to the task's measurers at a time: each update runs a few Keras ops, so
# chunks of several predictions keep that cost off the per-batch path.
CHUNK_ROWS = 8192
# Rows predicted at a time: about PREDICT_BYTES of input, at least MIN_PREDICT_BATCH (an
# image model's activations stay small) and at most CHUNK_ROWS. 256-row batches of a
# table's 30 floats spent 3 s of every million rows in per-call overhead (issue 14).
PREDICT_BYTES = 1 << 20
MIN_PREDICT_BATCH = 256


def predict_batch(ref: DatasetRef) -> int:
    """Rows of ``ref`` predicted at a time."""
    return max(MIN_PREDICT_BATCH, min(CHUNK_ROWS, PREDICT_BYTES // max(feature_bytes(ref), 1)))


def compute_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, *, task: LearningTask, class_names: Sequence[str], split: str
) -> Metrics:
    """The task's metrics of one set of predictions (tasks/learning/learning_tasks.py).

    Args:
        y_true: the labels: class ids, or numbers for a regression.
        y_pred: the model's outputs for the same rows.
        task: the learning task whose measurer computes the metrics.
        class_names: the classes, in the order of the model's outputs.
        split: the split's name, recorded with the metrics.
    """
    measurer = task.measurer(class_names)
    measurer.update(y_true, y_pred)
    return _metrics(measurer, split=split)


def _metrics(measurer: Measurer, *, split: str) -> Metrics:
    measured = measurer.result()
    return Metrics(
        split=split,
        num_examples=measurer.rows,
        values=measured.values,
        per_class=measured.per_class,
        confusion=measured.confusion,
    )


def predicted_chunks(model, ref: DatasetRef, *, split: str = "test") -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(labels, the model's outputs) of ``split`` in stored order, about CHUNK_ROWS rows at a time.

    Args:
        model: a loaded Keras model.
        ref: the dataset to read ``split`` of.
        split: the split to predict.
    """
    for labels, (outputs,) in predicted_together([model], ref, split=split):
        yield labels, outputs


class BaselineFailed(KerasflowError):
    """The baseline failed to predict or be measured in a joint pass: its fault, not the candidate's (cause chained)."""


@contextmanager
def _baseline_faults() -> Iterator[None]:
    try:
        yield
    except BaselineFailed:
        raise
    except Exception as error:
        raise BaselineFailed(f"{type(error).__name__}: {error}") from error


def predicted_together(
    models: Sequence, ref: DatasetRef, *, split: str = "test"
) -> Iterator[tuple[np.ndarray, tuple[np.ndarray, ...]]]:
    """(labels, each model's outputs) of ``split`` in stored order, one read for all, about CHUNK_ROWS rows at a time.

    Args:
        models: loaded Keras models (the candidate, then the baseline); the split is read once for all.
        ref: the dataset to read ``split`` of.
        split: the split to predict.

    Raises:
        BaselineFailed: a model after the first could not predict a batch (its cause chained).
    """
    labels: list[np.ndarray] = []
    outputs: list[list[np.ndarray]] = [[] for _ in models]
    pending = 0
    blocks = [takes_block(model) for model in models]
    batches = load_batches(ref, split, batch_size=predict_batch(ref), numbers_block=blocks[0]).prefetch(2)
    for x, y in batches.as_numpy_iterator():
        for index, (model, block) in enumerate(zip(models, blocks, strict=True)):
            # A typed table's columns, read under their own names, go in under the model's input names, the numbers
            # as one block or (a model registered before the block, a production baseline) one by one.
            with _baseline_faults() if index else nullcontext():
                fed = model_feed(x, types=ref.column_types or {}, block=block) if isinstance(x, dict) else x
                outputs[index].append(np.asarray(model.predict_on_batch(fed)))
        labels.append(y)
        pending += len(labels[-1])
        if pending >= CHUNK_ROWS:
            yield np.concatenate(labels), tuple(np.concatenate(o) for o in outputs)
            labels, outputs, pending = [], [[] for _ in models], 0
    if labels:
        yield np.concatenate(labels), tuple(np.concatenate(o) for o in outputs)


def evaluate_model(
    model, ref: DatasetRef, *, task: LearningTask, class_names: Sequence[str], split: str = "test"
) -> tuple[Metrics, Measurer]:
    """(metrics of ``model`` on ``split``, overall and per slice; the measurer, to draw its figures).

    Batch by batch: the split is never held, only the task's counts and sums (a bounded
    sample for figures), so a test split larger than memory is evaluated like a small one.

    Args:
        model: a loaded Keras model.
        ref: the dataset to read ``split`` of; its slice columns give the per-slice metrics.
        task: the learning task whose measurers compute the metrics.
        class_names: the classes, in the order of the model's outputs.
        split: the split to measure.
    """
    measured = measure_together(model, None, ref, task=task, class_names=class_names, split=split)
    return measured.candidate, measured.measurer


@dataclass(frozen=True)
class Measurement:
    """What one pass over a split measured: both models' metrics, the gate's evidence, the candidate's measurer.

    Args:
        candidate: the candidate's metrics, overall and per slice.
        baseline: the baseline's metrics on the same rows; None without a baseline.
        evidence: candidate - baseline of each metric with its noise, and each slice's noise.
        measurer: the candidate's measurer, to draw its figures.
    """

    candidate: Metrics
    baseline: Metrics | None
    evidence: GateEvidence
    measurer: Measurer


def measure_together(
    candidate, baseline, ref: DatasetRef, *, task: LearningTask, class_names: Sequence[str], split: str = "test"
) -> Measurement:
    """Metrics of ``candidate`` and ``baseline`` on ``split`` and the paired evidence, in one read of it.

    Batch by batch: the split is never held, only the task's counts and sums (a bounded
    sample for figures) and the paired accumulators' fixed state, so a test split larger
    than memory is evaluated like a small one.

    Args:
        candidate: a loaded Keras model.
        baseline: the production model, predicting the same chunks; None to measure the candidate alone.
        ref: the dataset to read ``split`` of; its slice columns give the per-slice metrics.
        task: the learning task whose measurers compute the metrics.
        class_names: the classes, in the order of the models' outputs.
        split: the split to measure.

    Raises:
        BaselineFailed: the baseline could not predict.
    """
    models = [candidate] if baseline is None else [candidate, baseline]
    overall = [task.measurer(class_names) for _ in models]
    paired = PairedAccumulator(task, class_names, models=2) if baseline is not None else None
    # Sliced by the values of each slice column (TFX's slicing specs): same metrics, subsets; each slice's
    # noise for the gate's per-slice bounds.
    slice_codes = load_slices(ref, split)
    by_slice: dict[tuple[str, int], tuple[list[Measurer], PairedAccumulator]] = {}
    seen = 0
    for y_true, outputs in predicted_together(models, ref, split=split):
        overall[0].update(y_true, outputs[0])
        if paired is not None:
            with _baseline_faults():
                overall[1].update(y_true, outputs[1])
                paired.update(y_true, *outputs)
        for column, codes in slice_codes.items():
            chunk = codes[seen : seen + len(y_true)]
            for i in np.unique(chunk).tolist():
                rows = chunk == i
                if (column, i) not in by_slice:
                    noise = PairedAccumulator(task, class_names, models=1)  # the candidate's alone
                    by_slice[(column, i)] = ([task.measurer(class_names) for _ in models], noise)
                measurers, noise = by_slice[(column, i)]
                measurers[0].update(y_true[rows], outputs[0][rows])
                noise.update(y_true[rows], outputs[0][rows])
                if paired is not None:
                    with _baseline_faults():
                        measurers[1].update(y_true[rows], outputs[1][rows])
        seen += len(y_true)
    present = {c: [(i, v) for i, v in enumerate(ref.slices[c]) if (c, i) in by_slice] for c in slice_codes}
    metrics = [_metrics(measurer, split=split) for measurer in overall]
    for index, measured in enumerate(metrics):
        per_slice = {
            c: {v: by_slice[(c, i)][0][index].result().values for i, v in pairs} for c, pairs in present.items()
        }
        if per_slice:
            metrics[index] = measured.model_copy(update={"per_slice": per_slice})
    slices = {c: {v: by_slice[(c, i)][1].result() for i, v in pairs} for c, pairs in present.items()}
    changes = paired.result() if paired is not None else {}
    replicates = max([paired.replicates if paired else 0] + [noise.replicates for _, noise in by_slice.values()])
    evidence = GateEvidence(rows=seen, changes=changes, slices=slices, seed=BOOTSTRAP_SEED, replicates=replicates)
    return Measurement(
        candidate=metrics[0],
        baseline=metrics[1] if baseline is not None else None,
        evidence=evidence,
        measurer=overall[0],
    )


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate(trained: TrainedModel, dataset: DatasetRef, model: ModelConfig, *, target: RunTarget) -> Evaluation:
    """Metrics of the candidate and, when the alias has a model, of that baseline; shown as artifacts.

    Args:
        trained: the candidate the train step wrote.
        dataset: the dataset it was trained on; its test split is measured.
        model: the recipe's model section (task, classes, the packages its file may name).
        target: the storage root, the model's name and the alias whose model is the baseline.
    """
    logger = get_run_logger()
    evaluation, figures = evaluate_candidate(trained, dataset, model, target=target)
    if evaluation.baseline_error is not None:
        logger.warning(evaluation.baseline_error)
    create_table_artifact(
        key="evaluation", table=evaluation_rows(evaluation), description=describe_baseline(evaluation)
    )
    logger.info(summary_line(evaluation))
    return evaluation.model_copy(update={"plots": save_plots(trained, figures, target=target)})


def evaluate_candidate(
    trained: TrainedModel, dataset: DatasetRef, model: ModelConfig, *, target: RunTarget
) -> tuple[Evaluation, dict[str, bytes]]:
    """(the candidate's and the baseline's metrics on the test split, the task's figures of the candidate).

    Args:
        trained: the candidate the train step wrote.
        dataset: the dataset whose test split both models are measured on.
        model: the recipe's model section.
        target: the storage root, and the name and alias of the baseline.
    """
    task, class_names = task_of(model, dataset), class_names_of(model, dataset)
    candidate = io.load_model(
        storage.fetch_file(target.root, trained.model_uri),
        expected_sha256=trained.sha256,
        trusted_packages=model.trusted_packages,
    )
    baseline, baseline_version, note, error = load_baseline(target, trusted_packages=model.trusted_packages)
    measured = None
    if baseline is not None:  # both predict each chunk of one read of the split
        try:
            measured = measure_together(candidate, baseline, dataset, task=task, class_names=class_names)
        except BaselineFailed as failure:  # judged by the gate; the candidate is measured alone
            error = _baseline_error(target, baseline_version, failure.__cause__ or failure)
    if measured is None:
        measured = measure_together(candidate, None, dataset, task=task, class_names=class_names)
    evaluation = Evaluation(
        candidate=measured.candidate,
        baseline=measured.baseline,
        evidence=measured.evidence,
        baseline_version=baseline_version if measured.baseline else None,
        baseline_note=note,
        baseline_error=error,
        alias_version=baseline_version,
    )
    split = measured.candidate
    title = f"{target.name} candidate, {split.split} split ({split.num_examples} examples)"
    return evaluation, measured.measurer.figures(title=title)


def load_baseline(
    target: RunTarget, *, trusted_packages: Sequence[str]
) -> tuple[object, int | None, str | None, str | None]:
    """(the loaded model, version, note, error) of the model under the alias.

    No model under the alias is a note (a first run). A model that exists but cannot be
    loaded or evaluated, whatever the reason (a refused or corrupt file, a changed input,
    memory), is an error the gate judges: it is never taken as "no baseline".

    Args:
        target: the storage root, and the name and alias of the baseline.
        trusted_packages: packages whose registered classes the baseline's file may name.
    """
    registry = ModelRegistry(storage.registry_url(target.root))
    alias, name = target.alias, target.name
    try:
        version = registry.alias_target(name, alias)
    except (RegistryError, ValueError, OSError) as error:
        return None, None, None, f"the model under {name}@{alias} could not be read: {error}"
    if version is None:
        return None, None, f"no model under alias {alias!r} yet: first run", None
    try:
        return registry.load(name, version, trusted_packages=trusted_packages), version, None, None
    except Exception as error:  # noqa: BLE001 - any failure of the baseline goes to the gate, by name
        return None, version, None, _baseline_error(target, version, error)


def _baseline_error(target: RunTarget, version: int | None, error: BaseException) -> str:
    cause = str(error) if isinstance(error, io.ModelFileError) else f"{type(error).__name__}: {error}"
    return f"baseline {target.name} v{version} could not be evaluated: {cause.splitlines()[0][:500]}"
