"""Every private Keras and TensorFlow API kerasflow uses, in one place, each with why.

kerasflow reaches past the public API only where the public API cannot do what is needed.
Each entry below says what it works around, the upstream issue, and the versions it was
written against (Keras 3.15, TensorFlow 2.21). ``tests/models/test_private_apis.py``
checks that every name used here still exists, and, for each workaround of an upstream
bug, that the bug is still there: once upstream fixes it that test fails, and the
workaround is deleted with it.

Nothing is imported here until a function is called: this module is imported by the
model file checks, which must not load TensorFlow to be imported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

# Keras -----------------------------------------------------------------------------------

def builtin_keras_modules() -> tuple[str, ...]:
    """The module names Keras itself deserializes from without registration.

    No public API lists them (``keras.src.saving.serialization_lib.BUILTIN_MODULES``); the
    model file check must refuse what Keras would import from anywhere else.
    """
    from keras.src.saving.serialization_lib import BUILTIN_MODULES

    return tuple(BUILTIN_MODULES)


def keras_builtin_functions() -> Iterable[Any]:
    """Every activation, loss and metric function Keras deserializes by name.

    Keras exports them one by one; ``ALL_OBJECTS`` of their private modules is the list
    ``deserialize`` itself consults.
    """
    from keras.src import activations, losses, metrics

    for module in (activations, losses, metrics):
        yield from module.ALL_OBJECTS


def public_symbol(api_name: str) -> Any:
    """An object of Keras's public API by its exported name (``keras.layers.Dense``), or None.

    Never imports a module: a model file naming a module must not make kerasflow import it.
    """
    from keras.src.api_export import get_symbol_from_name

    return get_symbol_from_name(api_name)


@contextlib.contextmanager
def unallocated_variables() -> Iterator[None]:
    """Build models inside the block without ever allocating their variables.

    Under ``keras.StatelessScope(initialize_variables=False)`` Keras records each new
    variable in a global list to be allocated later by ``initialize_all_variables``; those
    recorded here are dropped on the way out, so no later call allocates a hostile
    file's gigabytes. Keras has no public way to discard them.
    """
    import keras
    from keras.src.backend.common import global_state
    from keras.src.saving.serialization_lib import SafeModeScope

    recorded = global_state.get_global_attribute("uninitialized_variables", [], set_to_default=True)
    before = len(recorded)
    try:
        with keras.StatelessScope(initialize_variables=False), SafeModeScope(True):
            yield
    finally:
        del recorded[before:]


def sublayers(model: Any) -> Iterator[Any]:
    """Every layer inside ``model``, nested ones included (``Layer._flatten_layers``).

    ``model.layers`` lists only the top level; Keras walks nested layers with this private
    method and has no public equivalent.
    """
    yield from model._flatten_layers(include_self=False)


def call_nodes(layer: Any) -> list[Any]:
    """The nodes at which ``layer`` is called in a functional model (``Layer._inbound_nodes``).

    Which inputs a layer is called on is known only from its nodes; Keras has no public
    accessor for them.

    Args:
        layer: a layer of a built functional model.

    Returns:
        Its call nodes, each with ``input_tensors``; none for a layer never called.
    """
    return list(getattr(layer, "_inbound_nodes", []))


def clear_resumed_epoch(model: Any) -> None:
    """Forget the epoch a previous training resumed from (``Model._initial_epoch``), before a new one starts.

    ``BackupAndRestore.on_train_begin`` records the epoch it restored in this private
    attribute, and ``fit`` reads it to start there; a training loop of its own does the same.

    Args:
        model: the model about to train.
    """
    model._initial_epoch = None


def resumed_epoch(model: Any) -> int:
    """The epoch ``BackupAndRestore`` restored on train begin (``Model._initial_epoch``), 0 for a fresh start.

    Args:
        model: the model whose callbacks ran ``on_train_begin``.
    """
    return model._initial_epoch or 0


def build_state(model: Any, element_spec: Any) -> None:
    """Build the model's, optimizer's and metrics' variables from a dataset's element spec.

    ``fit`` does this on its first batch (``Trainer._symbolic_build``); a training loop of
    its own must do it before its first step under the strategy, since variables created
    inside a step function sit in a conditional branch that tf.distribute cannot mirror.
    Keras has no public method for it.

    Args:
        model: a compiled Keras model.
        element_spec: the ``element_spec`` of the training dataset (a ``tf.data.Dataset``'s).
    """
    model._symbolic_build(data_batch=element_spec)


def build_before_fit(model: Any, element_spec: Any) -> None:
    """Let ``model.fit`` under several replicas take a string input (a text column, a category).

    Upstream: keras-team/keras#21172 (string inputs under MirroredStrategy), Keras 3.7 to
    at least 3.15 with TensorFlow 2.21. ``fit`` learns the inputs' shapes by averaging its
    first batch across the replicas (``Trainer._maybe_symbolic_build``), and a string
    cannot be averaged ("AddN" of string). With the state built from the spec here that
    step has nothing left to learn: it still draws its batch (the epochs' shuffle orders
    follow from the iterators drawn, which the multi-worker loop matches) but averages
    nothing. For this model only; a no-op when no input is a string.

    Args:
        model: a compiled Keras model about to be fitted.
        element_spec: the ``element_spec`` of the training dataset (a ``tf.data.Dataset``'s).
    """
    import tensorflow as tf

    if not any(spec.dtype == tf.string for spec in tf.nest.flatten(element_spec)):
        return
    build_state(model, element_spec)

    def draw_only(iterator=None, data_batch=None):
        for _, _, batches in iterator or ():
            next(batches)
            break

    model._maybe_symbolic_build = draw_only


# TensorFlow ------------------------------------------------------------------------------

# Collective keys per MirroredStrategy: every strategy of a process counts its keys from
# the class's `_collective_key_base`.
_KEY_SPAN = 100_000


def mirrored_strategy(devices: list[str] | None) -> Any:
    """A MirroredStrategy over ``devices`` whose collectives cannot meet another strategy's.

    Upstream: tensorflow/tensorflow#62790 (closed unfixed), TensorFlow 2.15 to at least
    2.21. Every MirroredStrategy of a process counts its collective keys from the class's
    ``_collective_key_base``, so a second strategy's all-reduce of another model's
    gradients meets the first one's cached collective instance and aborts ("Shape mismatch
    in the collective instance 100"): a process that trains two models one after the
    other (``kerasflow serve``, tests) fails. TensorFlow's own tests give each strategy a
    base of its own the same way. The base moves on after each strategy too, so one a
    caller builds directly afterwards (a notebook, a comparison with plain Keras) cannot
    meet ours either.

    Args:
        devices: the device names to mirror over (``/gpu:0``); None for TensorFlow's default (every visible
            GPU, else the CPU).
    """
    import tensorflow as tf

    cls = tf.distribute.MirroredStrategy
    base = cls._collective_key_base + _KEY_SPAN
    cls._collective_key_base = base
    strategy = cls(devices=devices)
    cls._collective_key_base = base + _KEY_SPAN
    return strategy


def configure_peer_heartbeats(cluster_spec: Any, timeout_seconds: float) -> None:
    """Have TensorFlow's coordination service declare a silent peer dead after ``timeout_seconds``.

    A killed worker must surface as an error, not a hang: the coordination service (which
    MultiWorkerMirroredStrategy starts unless one is configured) aborts every pending
    collective once a worker misses its heartbeats. The strategy has no public argument
    for how long that takes (no upstream issue; TensorFlow 2.21), so the service is
    configured here, before the strategy is built, through the eager context.

    Args:
        cluster_spec: the cluster's ``tf.train.ClusterSpec`` (its ``chief`` and ``worker`` jobs).
        timeout_seconds: how long a peer may miss its heartbeats before it is declared dead, in seconds.
    """
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context

    if context.context().coordination_service is not None:
        return
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=multi_worker_util.coordination_leader(cluster_spec),
        coordinated_jobs=[
            coordination_config_pb2.CoordinatedJob(name=job, num_tasks=cluster_spec.num_tasks(job))
            for job in ("chief", "worker")
            if job in cluster_spec.jobs
        ],
        heartbeat_timeout_in_ms=int(timeout_seconds * 1000),
    )
