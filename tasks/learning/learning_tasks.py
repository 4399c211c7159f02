"""The built-in learning tasks: multiclass, binary and regression, each in one place.

Importing this module registers them. What a task is, the registry of tasks and the
choice of one for a run are tasks/learning/task_registry.py, re-exported here: kerasflow
imports them from this module, so the built-in tasks are registered whenever a task is
looked up.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kerasflow.tasks.learning import plots

# Measured and Measurer are the tasks' API too: re-exported for a team's own task.
from kerasflow.tasks.learning.measurers import ClassificationMeasurer, Measured, Measurer, RegressionMeasurer
from kerasflow.tasks.learning.task_registry import (
    TASK_REGISTRY,
    TASKS,
    LabelKind,
    LearningTask,
    choose_task,
    find_task,
    register_task,
    task_of_metadata,
)

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


# ---------------------------------------------------------------- classification

_EPSILON = 1e-7  # keras.backend.epsilon(): how Keras's cross-entropies clip probabilities


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

    def row_statistics(self, y_true, y_pred):
        """Each row's correctness and cross-entropy (normalized and clipped as Keras's losses do)."""
        y_true = np.asarray(y_true).astype("int64").reshape(-1)
        probabilities = self.probabilities(y_pred).astype("float64")
        probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
        chosen = np.clip(probabilities[np.arange(len(y_true)), y_true], _EPSILON, 1 - _EPSILON)
        return {"correct": (self.predicted_classes(y_pred) == y_true).astype("float64"), "loss": -np.log(chosen)}

    def metrics_of_means(self, means):
        """Accuracy and loss: the means of correctness and cross-entropy."""
        return {"accuracy": means["correct"], "loss": means["loss"]}

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

    def row_statistics(self, y_true, y_pred):
        """Besides correctness and loss, what precision and recall count (a score above 0.5, as Keras's metrics)."""
        stats = super().row_statistics(y_true, y_pred)
        actual = np.asarray(y_true).astype("float64").reshape(-1)
        predicted = (self.positive(y_pred) > 0.5).astype("float64")
        return {**stats, "actual": actual, "predicted": predicted, "found": actual * predicted}

    def metrics_of_means(self, means):
        """Accuracy and loss; precision = found / predicted and recall = found / actual (0 without any, as Keras)."""
        found, predicted, actual = means["found"], means["predicted"], means["actual"]
        return {
            **super().metrics_of_means(means),
            "precision": found / predicted if predicted > 0 else 0.0,
            "recall": found / actual if actual > 0 else 0.0,
        }

    def ranking_score(self, y_pred):
        """The positive class's probability, whose ``auc`` the task reports."""
        return self.positive(y_pred)

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

    def row_statistics(self, y_true, y_pred):
        """Each row's squared and absolute residual, its target and the target's square (R²'s spread)."""
        y_true = np.asarray(y_true, dtype="float64").reshape(-1)
        residuals = np.asarray(y_pred, dtype="float64").reshape(len(y_true), -1)[:, 0] - y_true
        return {"squared": residuals**2, "absolute": np.abs(residuals), "target": y_true, "target_squared": y_true**2}

    def metrics_of_means(self, means):
        """MSE (the loss), MAE, RMSE and R² = 1 - MSE / the target's variance (0 for a constant target, as Keras)."""
        mse = means["squared"]
        spread = means["target_squared"] - means["target"] ** 2
        r2 = 1.0 - mse / spread if spread > 0 else 0.0
        return {"loss": mse, "mse": mse, "mae": means["absolute"], "rmse": max(mse, 0.0) ** 0.5, "r2": r2}

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
