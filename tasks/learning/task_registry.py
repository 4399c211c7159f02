"""What a learning task is (:class:`LearningTask`), the registry of them, and the one a run uses.

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

The built-in tasks register in tasks/learning/learning_tasks.py, which re-exports these
names and is where kerasflow looks tasks up, so they are registered first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from kerasflow.models.errors import ConfigError
from kerasflow.models.plugins import PluginRegistry
from kerasflow.tasks.learning.measurers import Measured, Measurer

__all__ = [
    "TASKS",
    "TASK_REGISTRY",
    "LabelKind",
    "LearningTask",
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

    def row_statistics(self, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, np.ndarray] | None:
        """Per-row numbers whose means give the metrics (:meth:`metrics_of_means`), for the gate's paired evidence.

        With them, the candidate - baseline of each metric and its standard error come from
        a few sums (tasks/learning/paired.py); without them (the default, None) from a
        bootstrap of replicate measurers, right for any task but costlier.

        Args:
            y_true: the labels: class ids, or numbers.
            y_pred: the model's raw outputs for the same rows.

        Returns:
            Name -> one number per row, the same names for every chunk; or None.
        """
        return None

    def metrics_of_means(self, means: dict[str, float]) -> dict[str, float]:
        """The metrics as smooth functions of the means of :meth:`row_statistics` (a ratio, a square root...).

        Args:
            means: each row statistic's mean over the rows measured.
        """
        return {}

    def ranking_score(self, y_pred: np.ndarray) -> np.ndarray | None:
        """The score whose ROC ``auc`` the task reports (a binary classifier's positive probability), or None."""
        return None

    def is_lower_better(self, metric: str) -> bool:
        """Whether a lower value of ``metric`` is better: it is one of ``lower_is_better``."""
        return metric in self.lower_is_better


# The built-in tasks register in learning_tasks.py, when it is imported; a team's with
# register_task, or from an installed package's ``kerasflow.learning_tasks`` entry point (a
# LearningTask, or a module that registers its tasks when loaded).
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


def task_of_metadata(metadata: dict[str, Any]) -> LearningTask:
    """The task a registered version was trained for; versions recorded before tasks were classifiers."""
    recorded = metadata.get("task")
    if isinstance(recorded, str) and (task := find_task(recorded)) is not None:
        return task
    classes = (metadata.get("dataset") or {}).get("class_names") or []
    return TASKS["binary" if len(classes) == 2 else "multiclass"]
