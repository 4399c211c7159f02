"""The one place a ``tf.distribute`` strategy is built, with the precision it runs in.

``auto`` takes the cluster from the environment: several workers named by TF_CONFIG or
a Slurm allocation -> MultiWorkerMirroredStrategy; else every local GPU under
MirroredStrategy when there are several; else TensorFlow's default strategy (one
device). ``runtime.devices`` names the devices outright (two logical CPUs in tests, a
subset of GPUs on a shared node). Mixed precision and XLA are GPU features here: on a
machine without a GPU they are refused with the reason, not silently slow.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from kerasflow.models import private_apis
from kerasflow.tasks.config import ConfigError, RuntimeConfig
from kerasflow.tasks.train import cluster


def build_strategy(runtime: RuntimeConfig, *, env: dict[str, str] | None = None):
    """A strategy for ``runtime``; ConfigError when it cannot work on this machine.

    Args:
        runtime: the recipe's ``runtime`` section (``strategy``, ``devices``, precision, XLA, the launcher).
        env: the process environment, which names a cluster (TF_CONFIG, Slurm); None for ``os.environ``.

    Raises:
        ConfigError: ``runtime.devices`` names a device that does not exist here, mixed precision or XLA is
            asked for without a GPU, or a multi-worker strategy has no cluster to run on.
    """
    import tensorflow as tf

    env = dict(os.environ) if env is None else env
    check_accelerator_features(runtime)
    workers = cluster.cluster_workers(env)
    if runtime.strategy == "multi_worker" or (runtime.strategy == "auto" and workers > 1):
        return multi_worker_strategy(runtime, env)
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if runtime.devices:
        available = {_short(d.name) for d in tf.config.list_logical_devices()}
        unknown = [d for d in runtime.devices if _short(d) not in available]
        if unknown:
            raise ConfigError(
                f"received runtime.devices={runtime.devices}, but {unknown} do not exist here; "
                f"expected some of {sorted(available)}"
            )
        if len(runtime.devices) > 1 or runtime.strategy == "mirrored":
            return private_apis.mirrored_strategy(list(runtime.devices))
        return tf.distribute.OneDeviceStrategy(runtime.devices[0])
    if runtime.strategy == "mirrored" or (runtime.strategy == "auto" and len(gpus) > 1):
        return private_apis.mirrored_strategy(gpus or None)
    # One device: TensorFlow's default strategy already places work on the first GPU (or
    # the CPU). OneDeviceStrategy would route every step through the distribution
    # machinery: measured here at 3.2x the epoch time of the same fit on digits.
    return tf.distribute.get_strategy()


def multi_worker_strategy(runtime: RuntimeConfig, env: dict[str, str]):
    """MultiWorkerMirroredStrategy over TF_CONFIG or Slurm, failing fast on a dead peer.

    Args:
        runtime: the recipe's ``runtime`` section (the launcher's port and GPUs, ``peer_timeout_seconds``).
        env: the process environment, which names the cluster.

    Raises:
        ConfigError: neither TF_CONFIG nor a Slurm allocation names the workers.
    """
    import tensorflow as tf

    if env.get("TF_CONFIG"):
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    elif env.get("SLURM_JOB_ID"):
        resolver = tf.distribute.cluster_resolver.SlurmClusterResolver(
            port_base=runtime.launcher.port, **cluster.slurm_gpu_arguments(env, runtime.launcher.gpus_per_worker)
        )
    else:
        raise ConfigError(
            "received runtime.strategy='multi_worker', but neither TF_CONFIG nor a Slurm allocation names "
            "the workers; expected runtime.launcher.kind local_processes or kubernetes (which set TF_CONFIG), "
            "or a run under srun"
        )
    implementation = tf.distribute.experimental.CommunicationImplementation
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=implementation.NCCL if tf.config.list_physical_devices("GPU") else implementation.RING,
    )
    # A killed peer must surface as an error, not a hang (configure_peer_heartbeats says how).
    private_apis.configure_peer_heartbeats(resolver.cluster_spec(), runtime.peer_timeout_seconds)
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver, communication_options=options)


def check_accelerator_features(runtime: RuntimeConfig) -> None:
    """Refuse mixed precision and XLA where they cannot work: a machine without a GPU.

    Raises:
        ConfigError: mixed precision or XLA is asked for without a GPU, or bfloat16 on a GPU older than Ampere.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    wanted = []
    if runtime.mixed_precision != "none":
        wanted.append(f"runtime.mixed_precision={runtime.mixed_precision!r}")
    if runtime.jit_compile:
        wanted.append("runtime.jit_compile=true")
    if wanted and not gpus:
        raise ConfigError(
            f"received {' and '.join(wanted)}, but this machine has no GPU that TensorFlow can use: mixed "
            "precision is slower than float32 on a CPU and XLA is enabled here for GPUs only; expected "
            "runtime.mixed_precision='none' and runtime.jit_compile=false on CPU, or a GPU node"
        )
    if runtime.mixed_precision == "mixed_bfloat16" and gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        capability = details.get("compute_capability") or (0, 0)
        if tuple(capability) < (8, 0):
            raise ConfigError(
                f"received runtime.mixed_precision='mixed_bfloat16', but GPU 0 has compute capability "
                f"{capability}; bfloat16 needs 8.0 (Ampere) or newer; use 'mixed_float16'"
            )


@contextlib.contextmanager
def precision(runtime: RuntimeConfig) -> Iterator[str]:
    """Build the model under ``runtime.mixed_precision`` (Keras's global dtype policy).

    Keras wraps the optimizer in a LossScaleOptimizer for ``mixed_float16`` itself.
    The policy is global to the process, so the previous one is restored afterwards.
    """
    import keras

    previous = keras.config.dtype_policy()
    name = "float32" if runtime.mixed_precision == "none" else runtime.mixed_precision
    keras.config.set_dtype_policy(name)
    try:
        yield name
    finally:
        keras.config.set_dtype_policy(previous)


def describe(strategy) -> str:
    """``MirroredStrategy x2`` style name for logs and refs."""
    name = type(strategy).__name__
    if name.startswith("_Default"):
        name = "DefaultStrategy"
    elif name == "CollectiveAllReduceStrategy":  # what tf.distribute.MultiWorkerMirroredStrategy builds
        name = "MultiWorkerMirroredStrategy"
    return f"{name} x{strategy.num_replicas_in_sync}"


def _short(device: str) -> str:
    """'/job:localhost/replica:0/task:0/device:CPU:1' and '/cpu:1' -> 'cpu:1'."""
    tail = device.lower().rsplit("/", 1)[-1]
    return tail.removeprefix("device:")
