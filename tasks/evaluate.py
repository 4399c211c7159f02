"""Evaluate: the candidate's metrics on the test split, and production's on the same data.

Metrics are computed here from predictions, with the same Keras metric objects for both
models, so the candidate and the baseline are measured identically whatever each was
compiled with.
"""

from __future__ import annotations

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from kerasflow.models import io
from kerasflow.models.registry import ModelRegistry, RegistryError
from kerasflow.tasks import plots, storage
from kerasflow.tasks.config import TrainConfig
from kerasflow.tasks.ingest.pipeline import load_slices, make_dataset
from kerasflow.tasks.refs import DatasetRef, Evaluation, Metrics, TrainedModel

__all__ = ["compute_metrics", "evaluate", "evaluate_model"]

# File names of the run's figures, in <run>/plots/ and in the registered version's plots/.
LEARNING_CURVES, CONFUSION_MATRIX = "learning_curves.png", "confusion_matrix.png"


def compute_metrics(
    y_true: np.ndarray, y_prob: np.ndarray, *, num_classes: int, class_names: list[str], split: str
) -> Metrics:
    """Loss and accuracy (plus precision, recall, AUC for binary), and recall and precision per class."""
    import keras

    y_true = np.asarray(y_true).astype("int64").reshape(-1)
    if num_classes == 2 and y_prob.shape[-1] == 1:
        prob = y_prob.reshape(-1)
        pred = (prob >= 0.5).astype("int64")
        values = {"loss": float(keras.losses.BinaryCrossentropy()(y_true.astype("float32"), prob))}
        for name, metric in {
            "precision": keras.metrics.Precision(),
            "recall": keras.metrics.Recall(),
            "auc": keras.metrics.AUC(),
        }.items():
            metric.update_state(y_true, prob)
            values[name] = float(metric.result())
    else:
        pred = y_prob.argmax(axis=-1)
        values = {"loss": float(keras.losses.SparseCategoricalCrossentropy()(y_true, y_prob))}
    values["accuracy"] = float((pred == y_true).mean()) if len(y_true) else 0.0
    confusion = plots.confusion_matrix(y_true, pred, num_classes=num_classes)
    # Per class, for sliced gates: recall (the share of the class found; "accuracy" of the
    # class is the same number, kept under that name too) and precision.
    present = [c for c in range(num_classes) if (y_true == c).any()]
    recall = {class_names[c]: float((pred[y_true == c] == c).mean()) for c in present}
    precision = {class_names[c]: float((y_true[pred == c] == c).mean()) if (pred == c).any() else 0.0 for c in present}
    per_class: dict[str, dict[str, float]] = {"recall": recall, "precision": precision}
    if num_classes > 2:
        per_class["accuracy"] = dict(recall)
    return Metrics(split=split, num_examples=len(y_true), values=values, per_class=per_class, confusion=confusion)


def evaluate_model(model, ref: DatasetRef, *, num_classes: int, split: str = "test", batch_size: int = 256) -> Metrics:
    """Predict ``split`` with ``model`` and compute its metrics."""
    labels, probs = [], []
    for x, y in make_dataset(ref, split, batch_size=batch_size, cache=False):
        probs.append(np.asarray(model.predict_on_batch(x)))
        labels.append(y.numpy())
    y_true, y_prob = np.concatenate(labels), np.concatenate(probs)
    metrics = compute_metrics(y_true, y_prob, num_classes=num_classes, class_names=ref.class_names, split=split)
    # Sliced by the values of each slice column (TFX's slicing specs): same metrics, subsets.
    per_slice = {
        column: {
            value: compute_metrics(
                y_true[codes == i],
                y_prob[codes == i],
                num_classes=num_classes,
                class_names=ref.class_names,
                split=split,
            ).values
            for i, value in enumerate(ref.slices[column])
            if (codes == i).any()
        }
        for column, codes in load_slices(ref, split).items()
    }
    return metrics.model_copy(update={"per_slice": per_slice}) if per_slice else metrics


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate(trained: TrainedModel, dataset: DatasetRef, config: TrainConfig) -> Evaluation:
    """Metrics of the candidate and, when the alias has a model, of that baseline."""
    logger = get_run_logger()
    num_classes = config.model.num_classes or dataset.num_classes
    candidate = evaluate_model(
        io.load_model(
            storage.fetch_file(config.storage.root, trained.model_uri),
            expected_sha256=trained.sha256,
            trusted_packages=config.model.trusted_packages,
        ),
        dataset,
        num_classes=num_classes,
    )
    baseline, baseline_version, note, error = evaluate_baseline(dataset, config, num_classes=num_classes)
    if error is not None:
        logger.warning(error)
    names = sorted(candidate.values)
    create_table_artifact(
        key="evaluation",
        table=[
            {
                "metric": n,
                "candidate": round(candidate.values[n], 4),
                "baseline": round(baseline.values[n], 4) if baseline and n in baseline.values else None,
            }
            for n in names
        ]
        + [
            {
                "metric": f"{metric}[{class_name}]",
                "candidate": round(value, 4),
                "baseline": round(baseline.per_class[metric][class_name], 4)
                if baseline and class_name in baseline.per_class.get(metric, {})
                else None,
            }
            for metric in ("recall", "precision")
            for class_name, value in candidate.per_class.get(metric, {}).items()
        ]
        + [
            {
                "metric": f"{metric}[{column}={value}]",
                "candidate": round(number, 4),
                "baseline": round(baseline.per_slice[column][value][metric], 4)
                if baseline and metric in baseline.per_slice.get(column, {}).get(value, {})
                else None,
            }
            for column, by_value in candidate.per_slice.items()
            for value, values in by_value.items()
            for metric, number in sorted(values.items())
        ],
        description=f"test split, {candidate.num_examples} examples; baseline: "
        + (f"v{baseline_version}" if baseline else (error or note or "none")),
    )
    logger.info(
        "candidate: %s; baseline: %s",
        " ".join(f"{n}={candidate.values[n]:.4f}" for n in names),
        " ".join(f"{n}={baseline.values[n]:.4f}" for n in names if n in baseline.values)
        if baseline
        else (error or note),
    )
    return Evaluation(
        candidate=candidate,
        baseline=baseline,
        baseline_version=baseline_version if baseline else None,
        baseline_note=note,
        baseline_error=error,
        plots=save_plots(trained, candidate, dataset, config),
    )


def evaluate_baseline(
    dataset: DatasetRef, config: TrainConfig, *, num_classes: int
) -> tuple[Metrics | None, int | None, str | None, str | None]:
    """(metrics, version, note, error) of the model under the alias on the same test split.

    No model under the alias is a note (a first run). A model that exists but cannot be
    loaded or evaluated, whatever the reason (a refused or corrupt file, a changed input,
    memory), is an error the gate judges: it is never taken as "no baseline".
    """
    registry = ModelRegistry(storage.registry_url(config.storage.root))
    alias, name = config.registry.alias, config.model.name
    try:
        version = registry.alias_target(name, alias)
    except (RegistryError, ValueError, OSError) as error:
        return None, None, None, f"the model under {name}@{alias} could not be read: {error}"
    if version is None:
        return None, None, f"no model under alias {alias!r} yet: first run", None
    try:
        model = registry.load(name, version, trusted_packages=config.model.trusted_packages)
        return evaluate_model(model, dataset, num_classes=num_classes), version, None, None
    except Exception as error:  # noqa: BLE001 - any failure of the baseline goes to the gate, by name
        cause = str(error) if isinstance(error, io.ModelFileError) else f"{type(error).__name__}: {error}"
        return None, version, None, f"baseline {name} v{version} could not be evaluated: {cause.splitlines()[0][:500]}"


def save_plots(trained: TrainedModel, candidate: Metrics, dataset: DatasetRef, config: TrainConfig) -> dict[str, str]:
    """Draw the learning curves and confusion matrix into ``<run>/plots/``; show them in an artifact.

    Returns file name -> URL, for the registry to copy them into the version.
    """
    root, name = config.storage.root, config.model.name
    run_dir = storage.run_dir(root, trained.run_id)
    first = trained.initial_epoch + 1
    figures = {
        LEARNING_CURVES: plots.learning_curves_png(
            trained.history, first_epoch=first, title=f"{name}: {trained.epochs_completed} epoch(s), {trained.strategy}"
        )
    }
    if candidate.confusion is not None:
        figures[CONFUSION_MATRIX] = plots.confusion_matrix_png(
            candidate.confusion,
            dataset.class_names[: len(candidate.confusion)],
            title=f"{name} candidate, {candidate.split} split ({candidate.num_examples} examples)",
        )
    folder = run_dir / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, png in figures.items():
        (folder / file_name).write_bytes(png)
    plots_url = storage.join(storage.run_url(root, trained.run_id), "plots")
    if not storage.is_local(root):
        storage.upload_dir(folder, plots_url)
    urls = {file_name: storage.join(plots_url, file_name) for file_name in figures}
    resumed = f" (resumed after epoch {trained.initial_epoch})" if trained.initial_epoch else ""
    sections = [f"## Learning curves{resumed}", plots.embed_png(figures[LEARNING_CURVES], alt="learning curves")]
    if CONFUSION_MATRIX in figures:
        sections += ["## Confusion matrix", plots.embed_png(figures[CONFUSION_MATRIX], alt="confusion matrix")]
    sections.append("Saved with the run: " + ", ".join(f"`{url}`" for url in urls.values()))
    create_markdown_artifact(
        key="training-plots",
        markdown="\n\n".join(sections),
        description=f"{name}: learning curves and confusion matrix",
    )
    return urls
