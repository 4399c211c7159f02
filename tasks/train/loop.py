"""A training loop over ``strategy.run``, for strategies where ``model.fit`` does not work.

Keras 3's ``model.fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras
issue 20585: its data adapter hands PerReplica values to code that expects tensors).
This loop trains the same compiled Keras model with the model's own ``train_step`` and
``test_step`` (so the recipe's loss, optimizer, metrics and loss scaling are Keras's),
on datasets from ``distribute_datasets_from_function``, and drives the same callbacks
at the same hooks in the same order as ``fit``: early stopping, the NaN guard, the
durable backup and progress behave as they do in one process.

What makes it equal to single-host training (tested against ``fit`` under
MirroredStrategy): each replica's loss is its batch mean scaled by 1/replicas and the
gradients are summed across every replica of every worker (Keras's optimizer under
tf.distribute), i.e. the mean over the global batch; metric variables are aggregated
across workers when read in cross-replica context, as ``fit`` reads them at epoch end;
and the input pipeline gives each worker every n-th row of the same shuffle, so the
workers' batches of a step are the rows of the one-process global batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras

from kerasflow.models import private_apis


def _step_function(strategy: Any, step: Callable[[Any], dict]) -> Callable[[Any], dict]:
    import tensorflow as tf

    @tf.function
    def run(iterator):
        outputs = strategy.run(step, args=(next(iterator),))
        # Batch-level logs for callbacks (the NaN guard): the mean over replicas, as fit's.
        return {name: strategy.reduce("MEAN", value, axis=None) for name, value in outputs.items()}

    return run


def train_loop(
    model: keras.Model,
    strategy: Any,
    *,
    train_fn: Callable[[Any], Any],
    validation_fn: Callable[[Any], Any] | None,
    epochs: int,
    steps_per_epoch: int,
    validation_steps: int,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> keras.callbacks.History:
    """Train ``model`` (compiled under ``strategy.scope()``) for ``epochs``; its History.

    Args:
        model: the compiled Keras model.
        strategy: the tf.distribute strategy it was built and compiled under.
        train_fn, validation_fn: ``dataset_fn(input_context)`` of batched datasets; every
            worker must yield at least ``steps_per_epoch`` (``validation_steps``) batches.
        steps_per_epoch, validation_steps: the same on every worker, since each step is a
            collective that all workers join.
        epochs: the epochs of the whole training; a backup restored on train begin resumes after its epoch.
        callbacks: Keras callbacks, called at ``fit``'s hooks in ``fit``'s order.
    """
    callback_list = keras.callbacks.CallbackList(
        list(callbacks), add_history=True, model=model, epochs=epochs, steps=steps_per_epoch
    )
    train_data = strategy.distribute_datasets_from_function(train_fn)
    validation_data = (
        strategy.distribute_datasets_from_function(validation_fn) if validation_fn and validation_steps else None
    )
    # Build the optimizer's slots and the metrics' variables now, under the strategy, as
    # fit does before its first step: created inside the step function they would be
    # created in a conditional branch of the graph, which tf.distribute cannot mirror.
    import tensorflow as tf

    with strategy.scope():
        private_apis.build_state(model, train_fn(tf.distribute.InputContext()).element_spec)
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    train_step = _step_function(strategy, model.train_step)
    test_step = _step_function(strategy, model.test_step)

    model.stop_training = False
    private_apis.clear_resumed_epoch(model)  # BackupAndRestore sets it on train begin, as fit reads it
    callback_list.on_train_begin()
    training_logs: dict[str, Any] | None = None
    initial_epoch = private_apis.resumed_epoch(model)
    drawn = 0
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        # The training dataset reshuffles on every new iterator, and Keras 3.15's fit
        # draws two per epoch plus one to build the model, training epoch e on the
        # (2e + 2)-th order. Drawing the same ones keeps this loop on fit's batches, and a
        # training resumed at epoch e on the orders of one uninterrupted run.
        while drawn < 2 * epoch + 1:
            iter(train_data)
            drawn += 1
        iterator = iter(train_data)
        drawn += 1
        for step in range(steps_per_epoch):
            callback_list.on_train_batch_begin(step)
            logs = train_step(iterator)
            callback_list.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        epoch_logs = _metric_results(model)
        if validation_data is not None:
            results = _evaluate(model, validation_data, test_step, validation_steps, callback_list)
            epoch_logs.update({f"val_{name}": value for name, value in results.items()})
        callback_list.on_epoch_end(epoch, epoch_logs)
        training_logs = epoch_logs
        if model.stop_training:
            break
    if isinstance(model.optimizer, keras.optimizers.Optimizer) and epochs > 0:
        model.optimizer.finalize_variable_values(model.trainable_weights)
    callback_list.on_train_end(logs=training_logs)
    return model.history


def _evaluate(model: keras.Model, data: Any, test_step: Callable, steps: int, callback_list: Any) -> dict[str, float]:
    """One pass over ``steps`` validation batches, as ``fit``'s call of ``evaluate`` makes it."""
    model.reset_metrics()
    callback_list.on_test_begin()
    iterator = iter(data)
    for step in range(steps):
        callback_list.on_test_batch_begin(step)
        logs = test_step(iterator)
        callback_list.on_test_batch_end(step, logs)
    results = _metric_results(model)
    callback_list.on_test_end(results)
    return results


def _metric_results(model: keras.Model) -> dict[str, float]:
    """The model's metrics read in cross-replica context: aggregated over every worker."""
    return {name: float(value) for name, value in model.get_metrics_result().items()}
