"""Evaluation batch by batch: the accumulators a learning task measures its predictions with.

A :class:`Measurer` is fed chunks of (labels, raw outputs) and gives a :class:`Measured`
at the end, like a Keras metric's ``update_state`` and ``result``. The built-in tasks'
(tasks/learning/learning_tasks.py) keep counts and sums only, so a split is never held: confusion
counts and the summed loss, Keras's own Precision, Recall and AUC (fixed thresholds, so
chunk by chunk equals all at once), the residual sums and the target's spread merged by
Chan's formula, and a bounded uniform :class:`Sample` of rows to draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from kerasflow.tasks.learning import plots

if TYPE_CHECKING:
    from kerasflow.tasks.learning.learning_tasks import LearningTask

__all__ = ["ClassificationMeasurer", "Measured", "Measurer", "RegressionMeasurer", "Sample"]


@dataclass(frozen=True)
class Measured:
    """What evaluation computes from one set of predictions.

    Args:
        values: metric name -> value, over every row.
        per_class: metric name -> class name -> value (a classifier's recall and precision).
        confusion: a classifier's confusion counts, row = true class, column = predicted class.
    """

    values: dict[str, float]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: list[list[int]] | None = None


class Measurer:
    """One model's evaluation, accumulated batch by batch like a Keras metric (``update`` then ``result``).

    This one keeps every prediction for the task's ``measure`` and ``figures``; the built-in
    tasks' own keep counts and sums (and a bounded sample to draw), so memory stays flat.

    Args:
        task: the learning task whose ``measure`` and ``figures`` the rows are handed to.
        class_names: the classes, in the order of the model's outputs.
    """

    def __init__(self, task: LearningTask, class_names: Sequence[str]):
        self.task, self.class_names = task, list(class_names)
        self.rows = 0  # examples seen
        self._true: list[np.ndarray] = []
        self._pred: list[np.ndarray] = []

    def update(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        """Add a chunk of rows.

        Args:
            y_true: the labels: class ids, or numbers.
            y_pred: the model's raw outputs for the same rows.
        """
        self._true.append(np.asarray(y_true))
        self._pred.append(np.asarray(y_pred))
        self.rows += len(self._true[-1])

    def _all(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._true:
            return np.zeros(0), np.zeros((0, 1))
        return np.concatenate(self._true), np.concatenate(self._pred)

    def result(self) -> Measured:
        return self.task.measure(*self._all(), class_names=self.class_names)

    def figures(self, *, title: str) -> dict[str, bytes]:
        """PNG file name -> figure of the predictions seen (:meth:`LearningTask.figures`).

        Args:
            title: the figures' title.
        """
        return self.task.figures(*self._all(), class_names=self.class_names, title=title)


class Sample:
    """A uniform random sample of at most ``limit`` rows of a stream, in arrival order (for figures).

    Args:
        limit: the most rows kept.
        seed: the seed of the random keys that choose the rows.
    """

    def __init__(self, limit: int, *, seed: int = 0):
        self.limit, self._rng = limit, np.random.default_rng(seed)
        self._keys = np.zeros(0)
        self._columns: list[np.ndarray] | None = None

    def add(self, *columns: np.ndarray) -> None:
        """Add rows to the stream; only ``limit`` rows of all those added are kept.

        Args:
            *columns: arrays of the same length, one per column (labels, predictions...).
        """
        keys = np.concatenate([self._keys, self._rng.random(len(columns[0]))])
        kept = list(columns)
        if self._columns is not None:
            kept = [np.concatenate(pair) for pair in zip(self._columns, columns, strict=True)]
        if len(keys) > self.limit:  # keep the rows of the smallest keys: a uniform sample of all seen
            chosen = np.sort(np.argpartition(keys, self.limit)[: self.limit])
            keys, kept = keys[chosen], [c[chosen] for c in kept]
        self._keys, self._columns = keys, list(kept)

    def columns(self) -> list[np.ndarray]:
        return self._columns or []


def _class_ids(y_true: np.ndarray) -> np.ndarray:
    return np.asarray(y_true).astype("int64").reshape(-1)


def _per_class(confusion: np.ndarray, class_names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Recall (the share of the class found) and precision of every class present, by name."""
    found, truth, predicted = np.diag(confusion), confusion.sum(axis=1), confusion.sum(axis=0)
    present = [c for c in range(len(class_names)) if truth[c]]
    recall = {class_names[c]: float(found[c] / truth[c]) for c in present}
    precision = {class_names[c]: float(found[c] / predicted[c]) if predicted[c] else 0.0 for c in present}
    return {"recall": recall, "precision": precision}


class ClassificationMeasurer(Measurer):
    """Confusion counts and the summed loss; a binary task's precision, recall and AUC as Keras metrics.

    Asks its task for ``predicted_classes``, ``loss_sum`` and ``streaming_metrics`` (fed
    the task's ``positive`` probabilities), as tasks/learning/learning_tasks.py's classifiers define them.

    Args:
        task: a classifier task (``predicted_classes``, ``loss_sum``, ``streaming_metrics``, ``positive``).
        class_names: the classes, in the order of the model's outputs.
    """

    def __init__(self, task: Any, class_names: Sequence[str]):
        super().__init__(task, class_names)
        width = len(self.class_names)
        self.confusion = np.zeros((width, width), dtype=np.int64)
        self.loss_sum = 0.0
        self.metrics = task.streaming_metrics()

    def update(self, y_true, y_pred):
        """Add a chunk of rows to the confusion counts, the loss sum and the streaming metrics.

        Args:
            y_true: the class ids.
            y_pred: the model's raw outputs for the same rows.
        """
        y_true, y_pred = _class_ids(y_true), np.asarray(y_pred)
        if not len(y_true):
            return
        width = len(self.confusion)
        pred = self.task.predicted_classes(y_pred)
        if max(int(y_true.max()), int(pred.max())) >= width or min(int(y_true.min()), int(pred.min())) < 0:
            raise ValueError(f"received a class id outside 0..{width - 1} (class names: {self.class_names})")
        np.add.at(self.confusion, (y_true.astype(np.int64), np.asarray(pred, dtype=np.int64)), 1)
        self.loss_sum += self.task.loss_sum(y_true, y_pred)
        self.rows += len(y_true)
        for metric in self.metrics.values():
            metric.update_state(y_true, self.task.positive(y_pred))

    def result(self):
        rows = self.rows
        values = {
            "loss": self.loss_sum / rows if rows else 0.0,
            "accuracy": float(np.trace(self.confusion) / rows) if rows else 0.0,
        }
        values.update({name: float(metric.result()) for name, metric in self.metrics.items()})
        per_class = _per_class(self.confusion, self.class_names)
        if self.task.per_class_accuracy:  # a class's accuracy is its recall; kept by that name too
            per_class["accuracy"] = dict(per_class["recall"])
        return Measured(values=values, per_class=per_class, confusion=self.confusion.tolist())

    def figures(self, *, title):
        """The confusion matrix of every row seen, titled ``title``."""
        png = plots.confusion_matrix_png(self.confusion.tolist(), self.class_names, title=title)
        return {plots.CONFUSION_MATRIX: png}


class RegressionMeasurer(Measurer):
    """Sums of the residuals' squares and sizes, the target's mean and spread (Chan's merge), a sample to draw.

    Args:
        task: the regression task, which draws the figures.
        class_names: not used (a regression has no classes); kept for the task's figures.
    """

    def __init__(self, task: Any, class_names: Sequence[str]):
        super().__init__(task, class_names)
        self.squared, self.absolute = 0.0, 0.0
        self.mean, self.m2 = 0.0, 0.0  # the target's: R² compares the residuals with its spread
        self.sample = Sample(plots.MAX_POINTS)

    def update(self, y_true, y_pred):
        """Add a chunk of rows to the residual sums, the target's mean and spread, and the sample.

        Args:
            y_true: the targets.
            y_pred: the model's outputs for the same rows; the first unit is the prediction.
        """
        y_true = np.asarray(y_true, dtype="float64").reshape(-1)
        if not len(y_true):
            return
        y_pred = np.asarray(y_pred, dtype="float64").reshape(len(y_true), -1)[:, 0]
        residuals = y_pred - y_true
        self.squared += float(np.sum(residuals**2))
        self.absolute += float(np.sum(np.abs(residuals)))
        rows, mean = len(y_true), float(y_true.mean())
        m2 = float(np.sum((y_true - mean) ** 2))
        total = self.rows + rows
        delta = mean - self.mean
        self.m2 += m2 + delta**2 * self.rows * rows / total
        self.mean += delta * rows / total
        self.rows = total
        self.sample.add(y_true, y_pred)

    def result(self):
        if not self.rows:
            return Measured(values={"loss": 0.0, "mse": 0.0, "mae": 0.0, "rmse": 0.0, "r2": 0.0})
        mse = self.squared / self.rows
        # R² as keras.metrics.R2Score defines it (1 - SS_res / SS_tot); in float64 here, so a
        # slice of a few rows is exact; a constant target has no R² (0 by Keras's rule).
        r2 = 1.0 - self.squared / self.m2 if self.m2 > 0 else 0.0
        values = {"loss": mse, "mse": mse, "mae": self.absolute / self.rows, "rmse": mse**0.5, "r2": r2}
        return Measured(values=values)

    def figures(self, *, title):
        """The task's figures of the sampled rows, titled ``title``."""
        return self.task.figures(*self.sample.columns(), class_names=self.class_names, title=title)
