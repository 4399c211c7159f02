"""Learning tasks: multiclass, binary and regression, each in one place, in a registry.

A task owns everything that depends on what the model predicts: how the label column is
read (class ids or numbers), the output layer the zoo builds and the widths a builder's
output may have, the default loss and training metrics, the evaluation metrics computed
from predictions (batch by batch, :class:`Measurer`), the figures drawn of them, the
direction of its metrics for the gate, and the columns batch scoring writes. Nothing else
branches on the task's name: the rest of kerasflow asks the task object. A team adds a
task with :func:`register_task` (for instance an ordinal or a multi-output one) and names
it in ``model.task``.

The recipe's ``model.task`` picks one; without it, a classifier is chosen from the
number of classes (two: ``binary``, more: ``multiclass``). Regression is never guessed
from the data, because a 0/1 label column reads as numbers as well as it reads as classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = [
    "TASKS",
    "LabelKind",
    "LearningTask",
    "Measured",
    "Measurer",
    "choose_task",
    "register_task",
    "task_of_metadata",
]

LabelKind = Literal["classes", "numbers"]


@dataclass(frozen=True)
class Measured:
    """What evaluation computes from one set of predictions."""

    values: dict[str, float]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: list[list[int]] | None = None


class LearningTask:
    """What a model predicts, and everything that depends on it. Subclass and register to add one.

    Attributes:
        name: the value of ``model.task``.
        labels: how ingestion reads the label column: ``classes`` (ids into class names) or ``numbers``.
        lower_is_better: metric names whose lower values are better (the gate's direction).
    """

    name: str = ""
    labels: LabelKind = "classes"
    lower_is_better: tuple[str, ...] = ("loss",)

    def output(self, num_classes: int) -> tuple[int, str | None]:
        """(units, activation) of the output layer the zoo's builders end with."""
        raise NotImplementedError

    def output_widths(self, num_classes: int) -> tuple[int, ...]:
        """The last-axis widths a builder's model may output for this task."""
        return (self.output(num_classes)[0],)

    def training_objects(self, *, label_smoothing: float, one_hot: bool, output_width: int) -> tuple[Any, list[Any]]:
        """(default loss, metrics tracked in training) as Keras objects, for a model of that output width."""
        raise NotImplementedError

    def measurer(self, class_names: Sequence[str]) -> Measurer:
        """An accumulator of evaluation metrics, fed batch by batch (evaluation never holds a split).

        The default keeps every prediction and calls :meth:`measure` once at the end, so a
        task that only implements ``measure`` is right, with memory growing with the split;
        override this to stream, as the built-in tasks do.
        """
        return Measurer(self, class_names)

    def measure(self, y_true: np.ndarray, y_pred: np.ndarray, *, class_names: Sequence[str]) -> Measured:
        """Evaluation metrics from labels and the model's raw outputs (implement this, or :meth:`measurer`)."""
        if type(self).measurer is LearningTask.measurer:
            raise NotImplementedError(f"learning task {self.name!r} implements neither measure() nor measurer()")
        measurer = self.measurer(class_names)
        measurer.update(y_true, y_pred)
        return measurer.result()

    def figures(
        self, y_true: np.ndarray, y_pred: np.ndarray, *, class_names: Sequence[str], title: str
    ) -> dict[str, bytes]:
        """PNG file name -> figure of the predictions (besides the learning curves)."""
        return {}

    def prediction_columns(self, y_pred: np.ndarray, *, class_names: Sequence[str]) -> dict[str, np.ndarray]:
        """The columns batch scoring writes for these outputs."""
        raise NotImplementedError

    def label_column(self, labels: np.ndarray, *, class_names: Sequence[str]) -> np.ndarray:
        """Labels as scoring writes them beside the predictions."""
        return labels

    def is_lower_better(self, metric: str) -> bool:
        return metric in self.lower_is_better


TASKS: dict[str, LearningTask] = {}


def register_task(task: LearningTask) -> LearningTask:
    """Make ``task`` nameable as ``model.task: <task.name>``."""
    if not task.name:
        raise ValueError("received a learning task without a name, expected name = 'my_task'")
    TASKS[task.name] = task
    return task


def choose_task(name: str | None, *, num_classes: int, labels: LabelKind = "classes") -> LearningTask:
    """The recipe's task, or the classifier that fits ``num_classes``; refuses what does not fit."""
    from kerasflow.tasks.config import ConfigError

    if name is None:
        if labels == "numbers":
            return TASKS["regression"]
        return TASKS["binary" if num_classes == 2 else "multiclass"]
    try:
        task = TASKS[name]
    except KeyError:
        raise ConfigError(f"received model.task={name!r}, expected one of {sorted(TASKS)}") from None
    if task.labels != labels:
        raise ConfigError(
            f"received model.task={name!r}, which learns from {task.labels}, but the dataset's labels were read as "
            f"{labels}; ingest again with the task set (it decides how the label column is read)"
        )
    if task.labels == "classes" and task.name == "binary" and num_classes != 2:
        raise ConfigError(f"received model.task='binary' with {num_classes} classes, expected 2 (or 'multiclass')")
    return task


class Measurer:
    """One model's evaluation, accumulated batch by batch like a Keras metric (``update`` then ``result``).

    This one keeps every prediction for the task's ``measure`` and ``figures``; the built-in
    tasks' own keep counts and sums (and a bounded sample to draw), so memory stays flat.
    """

    def __init__(self, task: LearningTask, class_names: Sequence[str]):
        self.task, self.class_names = task, list(class_names)
        self.rows = 0  # examples seen
        self._true: list[np.ndarray] = []
        self._pred: list[np.ndarray] = []

    def update(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
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
        """PNG file name -> figure of the predictions seen (:meth:`LearningTask.figures`)."""
        return self.task.figures(*self._all(), class_names=self.class_names, title=title)


class Sample:
    """A uniform random sample of at most ``limit`` rows of a stream, in arrival order (for figures)."""

    def __init__(self, limit: int, *, seed: int = 0):
        self.limit, self._rng = limit, np.random.default_rng(seed)
        self._keys = np.zeros(0)
        self._columns: list[np.ndarray] | None = None

    def add(self, *columns: np.ndarray) -> None:
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


# ---------------------------------------------------------------- classification


def _class_ids(y_true: np.ndarray) -> np.ndarray:
    return np.asarray(y_true).astype("int64").reshape(-1)


def _per_class(confusion: np.ndarray, class_names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Recall (the share of the class found) and precision of every class present, by name."""
    found, truth, predicted = np.diag(confusion), confusion.sum(axis=1), confusion.sum(axis=0)
    present = [c for c in range(len(class_names)) if truth[c]]
    recall = {class_names[c]: float(found[c] / truth[c]) for c in present}
    precision = {class_names[c]: float(found[c] / predicted[c]) if predicted[c] else 0.0 for c in present}
    return {"recall": recall, "precision": precision}


class _ClassificationMeasurer(Measurer):
    """Confusion counts and the summed loss; a binary task's precision, recall and AUC as Keras metrics."""

    def __init__(self, task: _Classification, class_names: Sequence[str]):
        super().__init__(task, class_names)
        width = len(self.class_names)
        self.confusion = np.zeros((width, width), dtype=np.int64)
        self.loss_sum = 0.0
        self.metrics = task.streaming_metrics()

    def update(self, y_true, y_pred):
        y_true, y_pred = _class_ids(y_true), np.asarray(y_pred)
        if not len(y_true):
            return
        width = len(self.confusion)
        pred = self.task.predicted_classes(y_pred)
        if max(int(y_true.max()), int(pred.max())) >= width or min(int(y_true.min()), int(pred.min())) < 0:
            raise ValueError(f"received a class id outside 0..{width - 1} (class names: {self.class_names})")
        self.confusion += np.bincount(y_true * width + pred, minlength=width * width).reshape(width, width)
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
        if isinstance(self.task, MulticlassTask):  # a class's accuracy is its recall; kept by that name too
            per_class["accuracy"] = dict(per_class["recall"])
        return Measured(values=values, per_class=per_class, confusion=self.confusion.tolist())

    def figures(self, *, title):
        from kerasflow.tasks import plots

        png = plots.confusion_matrix_png(self.confusion.tolist(), self.class_names, title=title)
        return {plots.CONFUSION_MATRIX: png}


class _Classification(LearningTask):
    labels: LabelKind = "classes"

    def measurer(self, class_names):
        return _ClassificationMeasurer(self, class_names)

    def loss_sum(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        """The evaluation loss summed over a batch (class ids, raw outputs)."""
        import keras

        return float(keras.losses.SparseCategoricalCrossentropy(reduction="sum")(y_true, y_pred))

    def streaming_metrics(self) -> dict[str, Any]:
        """Keras metrics of the positive class's probability, updated batch by batch (none for multiclass)."""
        return {}

    def predicted_classes(self, y_pred: np.ndarray) -> np.ndarray:
        """The class id each output predicts (the most probable class)."""
        return self.probabilities(y_pred).argmax(axis=1)

    def figures(self, y_true, y_pred, *, class_names, title):
        measurer = self.measurer(class_names)
        measurer.update(y_true, y_pred)
        return measurer.figures(title=title)

    def probabilities(self, y_pred: np.ndarray) -> np.ndarray:
        """(rows, classes) probabilities; a single sigmoid output becomes two columns."""
        y_pred = np.asarray(y_pred)
        if y_pred.ndim == 1 or y_pred.shape[-1] == 1:
            positive = y_pred.reshape(-1)
            return np.stack([1 - positive, positive], axis=1)
        return y_pred

    def prediction_columns(self, y_pred, *, class_names):
        probabilities = self.probabilities(y_pred)
        class_id = probabilities.argmax(axis=1)
        width = probabilities.shape[1]
        names = list(class_names)[:width] + [str(i) for i in range(len(class_names), width)]
        columns = {
            "prediction": np.asarray(names, dtype=object)[class_id],
            "class_id": class_id.astype("int64"),
            "probability": probabilities.max(axis=1),
        }
        columns.update({f"p_{name}": probabilities[:, i] for i, name in enumerate(names)})
        return columns

    def label_column(self, labels, *, class_names):
        return np.asarray(list(class_names), dtype=object)[np.asarray(labels, dtype="int64")]


class MulticlassTask(_Classification):
    """One of N classes: softmax over them, sparse categorical cross-entropy, accuracy."""

    name = "multiclass"

    def output(self, num_classes):
        return num_classes, "softmax"

    def training_objects(self, *, label_smoothing, one_hot, output_width):
        import keras

        if one_hot:  # label smoothing needs one-hot labels (tasks/train/plan.py)
            return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing), [
                keras.metrics.CategoricalAccuracy(name="accuracy")
            ]
        return keras.losses.SparseCategoricalCrossentropy(), [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]


class BinaryTask(_Classification):
    """Two classes: a sigmoid probability of the second, binary cross-entropy, precision, recall and AUC."""

    name = "binary"

    def output(self, num_classes):
        return 1, "sigmoid"

    def output_widths(self, num_classes):
        return (1, 2)  # a sigmoid, or a softmax over the two classes

    def positive(self, y_pred: np.ndarray) -> np.ndarray:
        """The probability of the second class, from a sigmoid or a two-class softmax."""
        y_pred = np.asarray(y_pred)
        return y_pred[:, 1] if y_pred.ndim > 1 and y_pred.shape[-1] == 2 else y_pred.reshape(-1)

    def predicted_classes(self, y_pred):
        return (self.positive(y_pred) >= 0.5).astype("int64")

    def training_objects(self, *, label_smoothing, one_hot, output_width):
        import keras

        if output_width == 2:  # a softmax over the two classes learns as a two-class multiclass model
            return TASKS["multiclass"].training_objects(
                label_smoothing=label_smoothing, one_hot=one_hot, output_width=output_width
            )
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing), [
            keras.metrics.BinaryAccuracy(name="accuracy"),
            keras.metrics.Precision(name="precision"),
            keras.metrics.Recall(name="recall"),
            keras.metrics.AUC(name="auc"),
        ]

    def loss_sum(self, y_true, y_pred):
        import keras

        y_pred = np.asarray(y_pred)
        if y_pred.ndim > 1 and y_pred.shape[-1] == 2:  # a softmax over the two classes
            return super().loss_sum(y_true, y_pred)
        # (rows, 1): Keras averages the last axis first, so a flat vector would be one "row".
        loss = keras.losses.BinaryCrossentropy(reduction="sum")
        return float(loss(y_true.astype("float32")[:, None], self.positive(y_pred)[:, None]))

    def streaming_metrics(self):
        import keras

        # Keras's own: AUC over fixed thresholds, so batch by batch is the same as all at once.
        return {"precision": keras.metrics.Precision(), "recall": keras.metrics.Recall(), "auc": keras.metrics.AUC()}


# ---------------------------------------------------------------- regression


class RegressionTask(LearningTask):
    """A number: one linear output, mean squared error (the guide's MSE), MAE, RMSE and R²."""

    name = "regression"
    labels: LabelKind = "numbers"
    lower_is_better = ("loss", "mse", "mae", "rmse")

    def output(self, num_classes):
        return 1, None

    def training_objects(self, *, label_smoothing, one_hot, output_width):
        import keras

        return keras.losses.MeanSquaredError(), [
            keras.metrics.MeanAbsoluteError(name="mae"),
            keras.metrics.RootMeanSquaredError(name="rmse"),
        ]

    def measurer(self, class_names):
        return _RegressionMeasurer(self, class_names)

    def figures(self, y_true, y_pred, *, class_names, title):
        from kerasflow.tasks import plots

        y_true = np.asarray(y_true, dtype="float64").reshape(-1)
        y_pred = np.asarray(y_pred, dtype="float64").reshape(-1)
        return {
            plots.PREDICTED_VS_ACTUAL: plots.predicted_vs_actual_png(y_true, y_pred, title=title),
            plots.RESIDUALS: plots.residuals_png(y_true, y_pred, title=title),
        }

    def prediction_columns(self, y_pred, *, class_names):
        return {"prediction": np.asarray(y_pred, dtype="float64").reshape(len(y_pred), -1)[:, 0]}


class _RegressionMeasurer(Measurer):
    """Sums of the residuals' squares and sizes, the target's mean and spread (Chan's merge), a sample to draw."""

    def __init__(self, task: RegressionTask, class_names: Sequence[str]):
        super().__init__(task, class_names)
        self.squared, self.absolute = 0.0, 0.0
        self.mean, self.m2 = 0.0, 0.0  # the target's: R² compares the residuals with its spread
        from kerasflow.tasks import plots

        self.sample = Sample(plots.MAX_POINTS)

    def update(self, y_true, y_pred):
        y_true = np.asarray(y_true, dtype="float64").reshape(-1)
        y_pred = np.asarray(y_pred, dtype="float64").reshape(len(y_true), -1)[:, 0] if len(y_true) else np.zeros(0)
        if not len(y_true):
            return
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
        return self.task.figures(*self.sample.columns(), class_names=self.class_names, title=title)


for _task in (MulticlassTask(), BinaryTask(), RegressionTask()):
    register_task(_task)


def task_of_metadata(metadata: dict[str, Any]) -> LearningTask:
    """The task a registered version was trained for; versions recorded before tasks were classifiers."""
    recorded = metadata.get("task")
    if recorded in TASKS:
        return TASKS[recorded]
    classes = (metadata.get("dataset") or {}).get("class_names") or []
    return TASKS["binary" if len(classes) == 2 else "multiclass"]
