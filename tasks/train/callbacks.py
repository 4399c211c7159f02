"""Callbacks of a training run: progress in Prefect, NaN guard, and their order.

Modelled on Keras's own callbacks: each does one thing at one hook.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import keras

from kerasflow.tasks.config import TrainingConfig
from kerasflow.tasks.failures import DeterministicFailure
from kerasflow.tasks.train.recipe_objects import schedule_callbacks


class TrainingDivergedError(DeterministicFailure):
    """The loss became NaN or infinite; retrying the same run diverges the same way."""


class TerminateOnNaN(keras.callbacks.TerminateOnNaN):
    """Keras's TerminateOnNaN with ``raise_error=True``, raising a non-retryable error.

    Args:
        learning_rate: the recipe's learning rate, named in the error's advice.
    """

    def __init__(self, *, learning_rate: float):
        super().__init__(raise_error=True)
        self.learning_rate = learning_rate
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Remember the epoch, for the error's message.

        Args:
            epoch: the epoch starting, 0 up.
            logs: not used.
        """
        self.epoch = epoch

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Raise when the batch's loss is NaN or infinite.

        Args:
            batch: the batch ended, 0 up within its epoch.
            logs: the batch's metrics; ``loss`` is checked.

        Raises:
            TrainingDivergedError: the loss is NaN or infinite.
        """
        try:
            super().on_batch_end(batch, logs)
        except RuntimeError as error:
            raise TrainingDivergedError(
                f"training diverged: loss is {(logs or {}).get('loss')} at epoch {self.epoch + 1}, "
                f"by batch {batch + 1}; lower training.learning_rate (now {self.learning_rate}) or check "
                "the data for extreme values"
            ) from error


class PrefectProgress(keras.callbacks.Callback):
    """Log each epoch's metrics to the Prefect run logger and move a progress artifact.

    Args:
        logger: the Prefect run logger the epochs are logged to.
        epochs: the epochs the training runs, for "epoch i/n" and the percentage.
        description: the progress artifact's description.
        min_update_seconds: the fewest seconds between two updates of the artifact (the last is always sent).
    """

    def __init__(self, *, logger: Any, epochs: int, description: str, min_update_seconds: float = 2.0):
        super().__init__()
        self.logger = logger
        self.epochs = epochs
        self.description = description
        # Each artifact update is an API round trip (9.4 ms measured here); short epochs
        # would spend more time reporting progress than a person can watch.
        self.min_update_seconds = min_update_seconds
        self.artifact_id = None
        self.first_epoch: int | None = None
        self._epoch_started = 0.0
        self._last_update = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Create the progress artifact at 0 %."""
        from prefect.artifacts import create_progress_artifact

        self.artifact_id = create_progress_artifact(progress=0.0, key="training-progress", description=self.description)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Note the first epoch (logging a resume from the backup) and when this one started.

        Args:
            epoch: the epoch starting, 0 up.
            logs: not used.
        """
        if self.first_epoch is None:
            self.first_epoch = epoch
            if epoch > 0:
                self.logger.info("resuming from the backup: epoch %d of %d", epoch + 1, self.epochs)
        self._epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Log the epoch's metrics and time; move the artifact unless it moved less than ``min_update_seconds`` ago.

        Args:
            epoch: the epoch ended, 0 up.
            logs: the epoch's metrics; those that are numbers are logged.
        """
        from prefect.artifacts import update_progress_artifact

        values = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items()) if _is_number(v))
        self.logger.info(
            "epoch %d/%d (%.1fs) %s", epoch + 1, self.epochs, time.perf_counter() - self._epoch_started, values
        )
        now = time.monotonic()
        if self.artifact_id is not None and now - self._last_update >= self.min_update_seconds:
            update_progress_artifact(self.artifact_id, progress=100.0 * (epoch + 1) / self.epochs)
            self._last_update = now

    def on_train_end(self, logs: dict | None = None) -> None:
        """Set the progress artifact to 100 %."""
        from prefect.artifacts import update_progress_artifact

        if self.artifact_id is not None:
            update_progress_artifact(self.artifact_id, progress=100.0)


def _is_number(value: Any) -> bool:
    try:
        return not math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def standard_callbacks(
    training: TrainingConfig,
    *,
    backup: keras.callbacks.Callback,
    progress: keras.callbacks.Callback | None = None,
    tensorboard_dir: Path | None = None,
) -> list[keras.callbacks.Callback]:
    """Early stopping, NaN guard, the durable backup, TensorBoard and progress, in hook order.

    The backup comes after the NaN guard, so a diverged epoch is not published, and
    before progress, so an epoch reported is an epoch kept. (Early stopping's own state,
    its best weights and patience, is not in the backup: Keras does not save it.)
    Progress and TensorBoard belong to the process that reports (the chief).

    Args:
        training: the recipe's ``training`` section (early stopping, schedule, its own callbacks).
        backup: the callback that publishes each epoch's backup.
        progress: the callback that reports progress; None on a worker that does not report.
        tensorboard_dir: where TensorBoard's logs go; None for no TensorBoard.
    """
    callbacks: list[keras.callbacks.Callback] = [TerminateOnNaN(learning_rate=training.learning_rate)]
    stopping = training.early_stopping
    if stopping.enabled:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=stopping.monitor,
                patience=stopping.patience,
                min_delta=stopping.min_delta,
                restore_best_weights=True,
            )
        )
    # The schedule's ReduceLROnPlateau and the recipe's own callbacks (tasks/train/recipe_objects.py),
    # before the backup so the state an epoch leaves is the state published.

    callbacks += schedule_callbacks(training)
    callbacks.append(backup)
    if tensorboard_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(os.fspath(tensorboard_dir), write_graph=False, profile_batch=0))
    if progress is not None:
        callbacks.append(progress)
    return callbacks
