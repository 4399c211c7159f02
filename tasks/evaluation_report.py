"""What an evaluation shows: its table in the Prefect UI, its line in the log, its plots.

The evaluate step (tasks/evaluate.py) measures; this module presents what it measured:
each metric of the candidate beside the baseline's, overall, per class and per slice; one
log line; the learning curves beside the task's figures, saved with the run and shown as
an artifact.
"""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact

from kerasflow.tasks import storage
from kerasflow.tasks.learning import plots
from kerasflow.tasks.refs import Evaluation, RunTarget, TrainedModel

__all__ = ["describe_baseline", "evaluation_rows", "save_plots", "summary_line"]


def evaluation_rows(evaluation: Evaluation) -> list[dict[str, object]]:
    """The evaluation as table rows: each metric overall, per class and per slice, candidate beside baseline."""
    candidate, baseline = evaluation.candidate, evaluation.baseline
    return (
        [
            {
                "metric": n,
                "candidate": round(candidate.values[n], 4),
                "baseline": round(baseline.values[n], 4) if baseline and n in baseline.values else None,
            }
            for n in sorted(candidate.values)
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
        ]
    )


def describe_baseline(evaluation: Evaluation) -> str:
    """What the evaluation compared: the test split's size and the baseline's version, or why there is none."""
    baseline = f"v{evaluation.baseline_version}" if evaluation.baseline else None
    return (
        f"test split, {evaluation.candidate.num_examples} examples; baseline: "
        f"{baseline or evaluation.baseline_error or evaluation.baseline_note or 'none'}"
    )


def summary_line(evaluation: Evaluation) -> str:
    """One line for the log: each metric of the candidate, then of the baseline (or why there is none)."""
    candidate, baseline = evaluation.candidate, evaluation.baseline
    names = sorted(candidate.values)
    ours = " ".join(f"{n}={candidate.values[n]:.4f}" for n in names)
    theirs = (
        " ".join(f"{n}={baseline.values[n]:.4f}" for n in names if n in baseline.values)
        if baseline
        else (evaluation.baseline_error or evaluation.baseline_note)
    )
    return f"candidate: {ours}; baseline: {theirs}"


def save_plots(trained: TrainedModel, figures: dict[str, bytes], *, target: RunTarget) -> dict[str, str]:
    """Draw the learning curves beside the task's ``figures`` into ``<run>/plots/``; show them in an artifact.

    Args:
        trained: the candidate, whose history gives the learning curves and whose run folder holds the plots.
        figures: PNG file name -> bytes, drawn by the task's measurer.
        target: the storage root and the model's name.

    Returns:
        File name -> URL, for the registry to copy them into the version.
    """
    root, name = target.root, target.name
    run_dir = storage.run_dir(root, trained.run_id)
    first = trained.initial_epoch + 1
    curves = plots.learning_curves_png(
        trained.history, first_epoch=first, title=f"{name}: {trained.epochs_completed} epoch(s), {trained.strategy}"
    )
    figures = {plots.LEARNING_CURVES: curves, **figures}
    folder = run_dir / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, png in figures.items():
        (folder / file_name).write_bytes(png)
    plots_url = storage.join(storage.run_url(root, trained.run_id), "plots")
    if not storage.is_local(root):
        storage.upload_dir(folder, plots_url)
    urls = {file_name: storage.join(plots_url, file_name) for file_name in figures}
    resumed = f" (resumed after epoch {trained.initial_epoch})" if trained.initial_epoch else ""
    sections = []
    for file_name, png in figures.items():
        title = file_name.removesuffix(".png").replace("_", " ")
        heading = f"## {title[:1].upper()}{title[1:]}{resumed if file_name == plots.LEARNING_CURVES else ''}"
        sections += [heading, plots.embed_png(png, alt=title)]
    sections.append("Saved with the run: " + ", ".join(f"`{url}`" for url in urls.values()))
    create_markdown_artifact(
        key="training-plots",
        markdown="\n\n".join(sections),
        description=f"{name}: " + ", ".join(f.removesuffix(".png").replace("_", " ") for f in figures),
    )
    return urls
