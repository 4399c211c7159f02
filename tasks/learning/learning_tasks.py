"""Learning tasks: multiclass, binary and regression, each in one place, in a registry.

A task owns everything that depends on what the model predicts: how the label column is
read (class ids or numbers), the output layer the zoo builds and the widths a builder's
output may have, the default loss and training metrics, the evaluation metrics computed
from predictions (batch by batch, :class:`Measurer`), the figures drawn of them, the
direction of its metrics for the gate, and the columns batch scoring writes. Nothing else
branches on the task's name: the rest of kerasflow asks the task object. A team adds a
task with :func:`register_task` (for instance an ordinal or a multi-output one) and names
it in ``model.task``; an installed package adds tasks through the
``kerasflow.learning_tasks`` entry point group.

The recipe's ``model.task`` picks one; without it, a classifier is chosen from the
number of classes (two: ``binary``, more: ``multiclass``). Regression is never guessed
from the data, because a 0/1 label column reads as numbers as well as it reads as classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from kerasflow.models.errors import ConfigError
from kerasflow.models.plugins import PluginRegistry
from kerasflow.tasks.learning import plots

# Measured and Measurer are the tasks' API too: re-exported for a team's own task.
from kerasflow.tasks.learning.measurers import ClassificationMeasurer, Measured, Measurer, RegressionMeasurer

__all__ = [
    "TASKS",
    "TASK_REGISTRY",
    "LabelKind",
    "LearningTask",
    "Measured",
    "Measurer",
    "choose_task",
    "find_task",
    "register_task",
    "task_of_metadata",
]

LabelKind = Literal["classes", "numbers"]


class LearningTask:
    """What a model predicts, and everything that depends on it. Subclass and register to add one.

    Attributes:
        name: the value of ``model.task``.
        labels: how ingestion reads the label column: ``classes`` (ids into class names) or ``numbers``.
        lower_is_better: metric names whose lower values are better (the gate's direction).
        per_class_accuracy: a classifier's per-class figures also name each class's recall its accuracy.
    """

    name: str = ""
    labels: LabelKind = "classes"
    lower_is_better: tuple[str, ...] = ("loss",)
    per_class_accuracy: bool = False

    def output(self, num_classes: int) -> tuple[int, str | None]:
        """(units, activation) of the output layer the zoo's builders end with.

        Args:
            num_classes: the dataset's classes; 0 for a regression.
        """
        raise NotImplementedError

    def output_widths(self, num_classes: int) -> tuple[int, ...]:
        """The last-axis widths a builder's model may output for this task.

        Args:
            num_classes: the dataset's classes; 0 for a regression.
        """
        return (self.output(num_classes)[0],)

    def training_objects(self, *, label_smoothing: float, one_hot: bool, output_width: int) -> tuple[Any, list[Any]]:
        """(default loss, metrics tracked in training) as Keras objects, for a model of that output width.

        Args:
            label_smoothing: the recipe's ``training.label_smoothing``.
            one_hot: the labels are fed one-hot (label smoothing), not as class ids.
            output_width: the last-axis width of the model's output.
        """
        raise NotImplementedError

    def measurer(self, class_names: Sequence[str]) -> Measurer:
        """An accumulator of evaluation metrics, fed batch by batch (evaluation never holds a split).

        The default keeps every prediction and calls :meth:`measure` once at the end, so a
        task that only implements ``measure`` is right, with memory growing with the split;
        override this to stream, as the built-in tasks do.

        Args:
            class_names: the classes, in the order of the model's outputs.
        """
        return Measurer(self, class_names)

    def measure(self, y_true: np.ndarray, y_pred: np.ndarray, *, class_names: Sequence[str]) -> Measured:
        """Evaluation metrics from labels and the model's raw outputs (implement this, or :meth:`measurer`).

        Args:
            y_true: the labels: class ids, or numbers.
            y_pred: the model's raw outputs for the same rows.
            class_names: the classes, in the order of the model's outputs.
        """
        if type(self).measurer is LearningTask.measurer:
            raise NotImplementedError(f"learning task {self.name!r} implements neither measure() nor measurer()")
        measurer = self.measurer(class_names)
        measurer.update(y_true, y_pred)
        return measurer.result()

    def figures(
        self, y_true: np.ndarray, y_pred: np.ndarray, *, class_names: Sequence[str], title: str
    ) -> dict[str, bytes]:
        """PNG file name -> figure of the predictions (besides the learning curves).

        Args:
            y_true: the labels: class ids, or numbers.
            y_pred: the model's raw outputs for the same rows.
            class_names: the classes, in the order of the model's outputs.
            title: the figures' title.
        """
        return {}

    def prediction_columns(self, y_pred: np.ndarray, *, class_names: Sequence[str]) -> dict[str, np.ndarray]:
        """The columns batch scoring writes for these outputs.

        Args:
            y_pred: the model's raw outputs, one row per example.
            class_names: the classes, in the order of the model's outputs.

        Returns:
            Column name -> one value per example.
        """
        raise NotImplementedError

    def label_column(self, labels: np.ndarray, *, class_names: Sequence[str]) -> np.ndarray:
        """Labels as scoring writes them beside the predictions.

        Args:
            labels: the labels as stored: class ids, or numbers.
            class_names: the classes, by id.
        """
        return labels

    def is_lower_better(self, metric: str) -> bool:
        """Whether a lower value of ``metric`` is better: it is one of ``lower_is_better``."""
        return metric in self.lower_is_better


# The built-in tasks register at the end of this module; a team's with register_task, or
# from an installed package's ``kerasflow.learning_tasks`` entry point (a LearningTask, or a
# module that registers its tasks when loaded).
TASK_REGISTRY: PluginRegistry[LearningTask] = PluginRegistry(
    setting="model.task",
    group="kerasflow.learning_tasks",
    error=ConfigError,
    accepts=lambda loaded: isinstance(loaded, LearningTask),
)
TASKS: dict[str, LearningTask] = TASK_REGISTRY.items


def register_task(task: LearningTask) -> LearningTask:
    """Make ``task`` nameable as ``model.task: <task.name>``."""
    if not task.name:
        raise ValueError("received a learning task without a name, expected name = 'my_task'")
    return TASK_REGISTRY.register(task.name, task)


def find_task(name: str) -> LearningTask | None:
    """The learning task ``name`` (built in, registered or from an installed package), or None."""
    return TASK_REGISTRY.find(name)


def choose_task(name: str | None, *, num_classes: int, labels: LabelKind = "classes") -> LearningTask:
    """The recipe's task, or the classifier that fits ``num_classes``; refuses what does not fit.

    Args:
        name: the recipe's ``model.task``; None to choose a classifier by ``num_classes``, or regression for
            labels read as numbers.
        num_classes: the dataset's classes.
        labels: how the dataset's labels were read.

    Raises:
        ConfigError: no task is named ``name``, it reads labels another way than the dataset's were read, or it
            is ``binary`` and ``num_classes`` is not 2.
    """
    if name is None:
        if labels == "numbers":
            return TASKS["regression"]
        return TASKS["binary" if num_classes == 2 else "multiclass"]
    task = TASK_REGISTRY.get(name)
    if task.labels != labels:
        raise ConfigError(
            f"received model.task={name!r}, which learns from {task.labels}, but the dataset's labels were read as "
            f"{labels}; ingest again with the task set (it decides how the label column is read)"
        )
    if task.labels == "classes" and task.name == "binary" and num_classes != 2:
        raise ConfigError(f"received model.task='binary' with {num_classes} classes, expected 2 (or 'multiclass')")
    return task


# ---------------------------------------------------------------- classification


class _Classification(LearningTask):
    labels: LabelKind = "classes"

    def measurer(self, class_names):
        return ClassificationMeasurer(self, class_names)

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
    per_class_accuracy = True

    def output(self, num_classes):
        """``num_classes`` softmax units."""
        return num_classes, "softmax"

    def training_objects(self, *, label_smoothing, one_hot, output_width):
        """Cross-entropy and accuracy: categorical over one-hot labels (label smoothing), else sparse.

        Args:
            label_smoothing: the recipe's ``training.label_smoothing``; used with ``one_hot``.
            one_hot: the labels are fed one-hot, not as class ids.
            output_width: not used.
        """
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
        """One sigmoid unit, whatever ``num_classes``."""
        return 1, "sigmoid"

    def output_widths(self, num_classes):
        """1 (a sigmoid) or 2 (a softmax over the two classes), whatever ``num_classes``."""
        return (1, 2)  # a sigmoid, or a softmax over the two classes

    def positive(self, y_pred: np.ndarray) -> np.ndarray:
        """The probability of the second class, from a sigmoid or a two-class softmax."""
        y_pred = np.asarray(y_pred)
        return y_pred[:, 1] if y_pred.ndim > 1 and y_pred.shape[-1] == 2 else y_pred.reshape(-1)

    def predicted_classes(self, y_pred):
        """Class 1 where the second class's probability is at least 0.5, else class 0."""
        return (self.positive(y_pred) >= 0.5).astype("int64")

    def training_objects(self, *, label_smoothing, one_hot, output_width):
        """Binary cross-entropy with accuracy, precision, recall and AUC; a two-unit softmax learns as multiclass.

        Args:
            label_smoothing: the recipe's ``training.label_smoothing``.
            one_hot: the labels are fed one-hot (for a two-unit softmax).
            output_width: 1 for a sigmoid, 2 for a softmax over the two classes.
        """
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
        """The evaluation loss summed over a batch: binary cross-entropy, or a softmax's categorical one.

        Args:
            y_true: the class ids, 0 or 1.
            y_pred: the model's raw outputs: a sigmoid, or a two-class softmax.
        """
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
        """One linear unit; ``num_classes`` is not used."""
        return 1, None

    def training_objects(self, *, label_smoothing, one_hot, output_width):
        """Mean squared error, with MAE and RMSE tracked.

        Args:
            label_smoothing: not used.
            one_hot: not used.
            output_width: not used.
        """
        import keras

        return keras.losses.MeanSquaredError(), [
            keras.metrics.MeanAbsoluteError(name="mae"),
            keras.metrics.RootMeanSquaredError(name="rmse"),
        ]

    def measurer(self, class_names):
        """A streaming accumulator of MSE, MAE, RMSE and R²; ``class_names`` is not used."""
        return RegressionMeasurer(self, class_names)

    def figures(self, y_true, y_pred, *, class_names, title):
        """Predicted against actual values, and the residuals' histogram.

        Args:
            y_true: the targets.
            y_pred: the model's outputs for the same rows.
            class_names: not used.
            title: the figures' title.
        """
        y_true = np.asarray(y_true, dtype="float64").reshape(-1)
        y_pred = np.asarray(y_pred, dtype="float64").reshape(-1)
        return {
            plots.PREDICTED_VS_ACTUAL: plots.predicted_vs_actual_png(y_true, y_pred, title=title),
            plots.RESIDUALS: plots.residuals_png(y_true, y_pred, title=title),
        }

    def prediction_columns(self, y_pred, *, class_names):
        """One ``prediction`` column: each output's first unit.

        Args:
            y_pred: the model's outputs, one row per example.
            class_names: not used.
        """
        return {"prediction": np.asarray(y_pred, dtype="float64").reshape(len(y_pred), -1)[:, 0]}


for _task in (MulticlassTask(), BinaryTask(), RegressionTask()):
    register_task(_task)


def task_of_metadata(metadata: dict[str, Any]) -> LearningTask:
    """The task a registered version was trained for; versions recorded before tasks were classifiers."""
    recorded = metadata.get("task")
    if isinstance(recorded, str) and (task := find_task(recorded)) is not None:
        return task
    classes = (metadata.get("dataset") or {}).get("class_names") or []
    return TASKS["binary" if len(classes) == 2 else "multiclass"]
