"""The run's figures as PNG: learning curves, the confusion matrix, predicted versus actual, residuals, drift.

Drawn with matplotlib's object API on an Agg canvas (never ``pyplot``): no global figure
state, no display, safe in a worker thread. The PNGs are saved with the run and copied
into the registered version; the UI shows them through a markdown artifact that embeds
them (tasks/evaluate.py), because Prefect's image artifacts need a URL a browser can
reach, which a local or private-bucket root is not.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "confusion_matrix",
    "confusion_matrix_png",
    "distribution_grid_png",
    "distributions_png",
    "embed_png",
    "learning_curves_png",
    "most_confused",
    "predicted_vs_actual_png",
    "residuals_png",
]

# File names of the figures, in <run>/plots/ and in a registered version's plots/.
LEARNING_CURVES = "learning_curves.png"
CONFUSION_MATRIX = "confusion_matrix.png"
PREDICTED_VS_ACTUAL = "predicted_vs_actual.png"
RESIDUALS = "residuals.png"
# Points drawn in a scatter: beyond this a random (seeded) subset, so a million-row test split draws in a second.
MAX_POINTS = 20_000

# Classes a confusion-matrix figure shows, each cell labelled with its count. Beyond it the
# figure shows the classes most often confused: its pixels, text and drawing time would
# otherwise grow with the square of the classes (200 classes took 96 s and 3.3 GB). The
# whole matrix stays data (Measured.confusion, per-class metrics).
MAX_MATRIX_CLASSES = 30

# Wide enough to read epoch ticks in the artifact pane; small enough to embed (about 30 KB).
_SIZE_INCHES, _DPI = (7.0, 3.2), 96


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, *, num_classes: int) -> list[list[int]]:
    """Counts of (true class, predicted class): row = truth, column = prediction.

    Args:
        y_true: the true class ids.
        y_pred: the predicted class ids, one per row of ``y_true``.
        num_classes: the classes, the matrix's side.
    """
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return matrix.tolist()


def learning_curves_png(history: Mapping[str, Sequence[float]], *, first_epoch: int = 1, title: str = "") -> bytes:
    """Loss (left) and every other metric (right) per epoch, training solid and validation dashed.

    Args:
        history: metric name -> one value per epoch, as Keras's ``History.history`` (``val_`` names for validation).
        first_epoch: the number of the first epoch in ``history`` (after a resume, not 1).
        title: the figure's title; empty for none.
    """
    from matplotlib.ticker import MaxNLocator

    figure, canvas = _figure()
    loss_axes, metric_axes = figure.subplots(1, 2)
    for axes, keep in ((loss_axes, lambda m: m == "loss"), (metric_axes, lambda m: m != "loss")):
        for name in sorted(n for n in history if not n.startswith("val_") and keep(n)):
            for key, style in ((name, "-"), (f"val_{name}", "--")):
                values = list(history.get(key, []))
                if values:
                    epochs = range(first_epoch, first_epoch + len(values))
                    axes.plot(epochs, values, style, marker="." if len(values) < 30 else None, label=key)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend(fontsize="small")
    loss_axes.set_title("loss")
    metric_axes.set_title("metrics")
    if title:
        figure.suptitle(title)
    return _png(figure, canvas)


def confusion_matrix_png(matrix: Sequence[Sequence[int]], class_names: Sequence[str], *, title: str = "") -> bytes:
    """The confusion matrix as a heat map, each cell labelled with its count, rows normalised for colour.

    Args:
        matrix: the counts, row = true class, column = predicted class.
        class_names: the classes, in the matrix's order.
        title: the figure's title; empty for one giving the number of examples.
    """
    counts = np.asarray(matrix, dtype=np.int64)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
    total, classes = int(counts.sum()), len(class_names)
    shown = most_confused(counts, MAX_MATRIX_CLASSES)
    counts, share = counts[np.ix_(shown, shown)], share[np.ix_(shown, shown)]
    class_names = [_literal(class_names[i]) for i in shown]
    n = len(class_names)
    side = max(3.2, 0.45 * n + 1.5)
    figure, canvas = _figure(size=(side + 0.8, side))
    axes = figure.subplots()
    image = axes.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true class")
    tilt = max(map(len, class_names), default=0) > 3  # long names overlap side by side
    axes.set_xticks(range(n), labels=list(class_names), rotation=45 if tilt else 0, ha="right" if tilt else "center")
    axes.set_yticks(range(n), labels=list(class_names))
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            colour = "white" if share[i, j] > 0.6 else "black"
            axes.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8, color=colour)
    if not title:
        title = f"confusion matrix ({total} examples)"
        if n < classes:
            title = f"confusion matrix ({total} examples): the {n} of {classes} classes most often confused"
    axes.set_title(_literal(title))
    return _png(figure, canvas)


def most_confused(counts: np.ndarray, limit: int) -> np.ndarray:
    """The ids of at most ``limit`` classes with the most errors, as the truth or as the prediction.

    Args:
        counts: the confusion counts, row = true class, column = predicted class.
        limit: the most classes returned.

    Returns:
        The class ids, in class order; every class when there are at most ``limit``.
    """
    if len(counts) <= limit:
        return np.arange(len(counts))
    errors = counts.sum(axis=0) + counts.sum(axis=1) - 2 * np.diag(counts)
    return np.sort(np.argsort(-errors, kind="stable")[:limit])


def predicted_vs_actual_png(y_true: np.ndarray, y_pred: np.ndarray, *, title: str = "") -> bytes:
    """Each example's prediction against its target, with the line where they are equal.

    Args:
        y_true: the targets.
        y_pred: the predictions, one per target; at most ``MAX_POINTS`` rows are drawn, chosen at random.
        title: the figure's title; empty for "predicted vs actual".
    """
    y_true, y_pred = _subset(np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float))
    figure, canvas = _figure(size=(4.6, 4.2))
    axes = figure.subplots()
    axes.scatter(y_true, y_pred, s=8, alpha=0.5, linewidths=0)
    if len(y_true):
        low = float(min(y_true.min(), y_pred.min()))
        high = float(max(y_true.max(), y_pred.max()))
        axes.plot([low, high], [low, high], "--", color="grey", linewidth=1, label="prediction = target")
        axes.legend(fontsize="small", loc="upper left")
    axes.set_xlabel("actual")
    axes.set_ylabel("predicted")
    axes.grid(alpha=0.3)
    axes.set_title(title or "predicted vs actual", fontsize="medium")
    return _png(figure, canvas)


def residuals_png(y_true: np.ndarray, y_pred: np.ndarray, *, title: str = "") -> bytes:
    """The histogram of residuals (prediction minus target), with their mean marked.

    Args:
        y_true: the targets.
        y_pred: the predictions, one per target.
        title: the figure's title; empty for "residuals".
    """
    residuals = np.asarray(y_pred, dtype=float).reshape(-1) - np.asarray(y_true, dtype=float).reshape(-1)
    figure, canvas = _figure(size=(4.6, 3.2))
    axes = figure.subplots()
    if len(residuals):
        axes.hist(residuals, bins=min(50, max(5, int(np.sqrt(len(residuals))))), alpha=0.8)
        mean = float(residuals.mean())
        axes.axvline(mean, color="black", linestyle="--", linewidth=1, label=f"mean {mean:.3g}")
        axes.axvline(0.0, color="grey", linewidth=1)
        axes.legend(fontsize="small")
    axes.set_xlabel("residual (predicted - actual)")
    axes.set_ylabel("examples")
    axes.grid(alpha=0.3)
    axes.set_title(title or "residuals", fontsize="medium")
    return _png(figure, canvas)


def distributions_png(
    bins: Sequence[str], baseline: Sequence[float], current: Sequence[float], *, labels: tuple[str, str], title: str
) -> bytes:
    """Two distributions of one column side by side: each bin's (or value's) share of the rows.

    Args:
        bins: the bins' (or values') labels.
        baseline: the baseline's share of the rows in each bin.
        current: the current data's share of the rows in each bin.
        labels: the legend's names of the baseline and of the current data.
        title: the figure's title.
    """
    figure, canvas = _figure(size=(7.0, 3.4))
    axes = figure.subplots()
    positions = np.arange(len(bins))
    axes.bar(positions - 0.2, baseline, width=0.4, label=labels[0], alpha=0.8)
    axes.bar(positions + 0.2, current, width=0.4, label=labels[1], alpha=0.8)
    axes.set_xticks(positions, [_short(b, 18) for b in bins], rotation=60, fontsize="x-small")
    axes.set_ylabel("share of rows")
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3, axis="y")
    axes.set_title(_literal(title), fontsize="medium")
    return _png(figure, canvas)


def distribution_grid_png(panels: Sequence[tuple[str, Sequence[str], Sequence[float]]], *, columns: int = 3) -> bytes:
    """Small bar charts side by side, one per ``(title, bins, shares)``: a dataset's columns at a glance.

    Args:
        panels: one ``(title, bin labels, shares)`` per chart.
        columns: charts per row.
    """
    rows = max(1, -(-len(panels) // columns))
    figure, canvas = _figure(size=(3.0 * columns, 2.2 * rows))
    for i, (title, bins, shares) in enumerate(panels):
        axes = figure.add_subplot(rows, columns, i + 1)
        positions = np.arange(len(bins))
        axes.bar(positions, shares, width=0.85, alpha=0.85)
        # Every bin labelled would overlap: the first, middle and last tell the range.
        ticks = sorted({0, len(bins) // 2, len(bins) - 1}) if len(bins) > 6 else list(positions)
        axes.set_xticks(ticks, [_short(bins[t]) for t in ticks], fontsize="x-small", rotation=30)
        axes.tick_params(axis="y", labelsize="x-small")
        axes.grid(alpha=0.3, axis="y")
        axes.set_title(_literal(title), fontsize="small")
    return _png(figure, canvas)


def _short(label: str, width: int = 14) -> str:
    return _literal(label if len(label) <= width else label[: width - 1] + "…")


def _literal(text: str) -> str:
    """``text`` drawn as written: a ``$`` would start matplotlib's math mode (``$x_$`` fails to draw)."""
    return text.replace("$", r"\$")


def _subset(*columns: np.ndarray) -> tuple[np.ndarray, ...]:
    columns = tuple(c.reshape(-1) for c in columns)
    rows = len(columns[0])
    if rows <= MAX_POINTS:
        return columns
    keep = np.sort(np.random.default_rng(0).choice(rows, MAX_POINTS, replace=False))
    return tuple(c[keep] for c in columns)


def embed_png(png: bytes, *, alt: str) -> str:
    """Markdown showing ``png`` inline (a data URL), for an artifact the UI renders as is.

    Args:
        png: the PNG's bytes.
        alt: the image's alternative text.
    """
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def _figure(size: tuple[float, float] = _SIZE_INCHES):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=_DPI, layout="constrained")
    return figure, FigureCanvasAgg(figure)


def _png(figure, canvas) -> bytes:
    buffer = io.BytesIO()
    canvas.print_png(buffer)
    return buffer.getvalue()
