"""The cluster a training process belongs to: TF_CONFIG, Slurm, or an Indexed Job's index.

TensorFlow's multi-worker runtime reads ``TF_CONFIG`` (a JSON cluster spec plus this
task's place in it). Launchers write it; on Slurm TensorFlow's own
``SlurmClusterResolver`` derives it from the job's nodes; in a Kubernetes Indexed Job
each pod builds it from ``KERASFLOW_WORKERS`` and its ``JOB_COMPLETION_INDEX``.
Nothing here starts TensorFlow's runtime; it only reads the environment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

# Environment of a Kubernetes worker pod (deploy/k8s/): the stable DNS names of every
# worker, in index order, comma-separated, and the index Kubernetes gives this pod.
WORKERS_ENV = "KERASFLOW_WORKERS"
INDEX_ENV = "JOB_COMPLETION_INDEX"


def tf_config(workers: Sequence[str], index: int) -> str:
    """The TF_CONFIG of worker ``index`` in a cluster of ``workers`` (host:port each).

    Args:
        workers: every worker's ``host:port``, in index order.
        index: this worker's index in ``workers``.
    """
    if not 0 <= index < len(workers):
        raise ValueError(f"received worker index {index}, expected 0..{len(workers) - 1}")
    return json.dumps({"cluster": {"worker": list(workers)}, "task": {"type": "worker", "index": index}})


def tf_config_from_index(env: Mapping[str, str]) -> str | None:
    """TF_CONFIG for an Indexed Job pod from ``KERASFLOW_WORKERS`` and ``JOB_COMPLETION_INDEX``.

    Args:
        env: the process environment (``os.environ`` or a mapping like it).

    Returns:
        The TF_CONFIG JSON; None when either variable is unset.
    """
    workers = [w.strip() for w in env.get(WORKERS_ENV, "").split(",") if w.strip()]
    if not workers or INDEX_ENV not in env:
        return None
    return tf_config(workers, int(env[INDEX_ENV]))


def cluster_workers(env: Mapping[str, str] | None = None) -> int:
    """How many workers the environment's cluster spec names (1 when there is none).

    TF_CONFIG wins; else a Slurm allocation of several tasks, resolved the way
    ``tf.distribute.cluster_resolver.SlurmClusterResolver`` resolves it.

    Args:
        env: the process environment; None for ``os.environ``.
    """
    env = os.environ if env is None else env
    spec = env.get("TF_CONFIG")
    if spec:
        cluster = json.loads(spec).get("cluster", {})
        return len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    if env.get("SLURM_JOB_ID") and int(env.get("SLURM_NTASKS", "1") or 1) > 1:
        return int(env["SLURM_NTASKS"])
    return 1


def is_chief(env: Mapping[str, str] | None = None) -> bool:
    """Whether this process writes the run's outputs: worker 0, or the only process.

    Args:
        env: the process environment; None for ``os.environ``.
    """
    env = os.environ if env is None else env
    spec = env.get("TF_CONFIG")
    if spec:
        task = json.loads(spec).get("task", {})
        return task.get("type") == "chief" or (task.get("type", "worker") == "worker" and task.get("index", 0) == 0)
    if env.get("SLURM_JOB_ID") and int(env.get("SLURM_NTASKS", "1") or 1) > 1:
        return int(env.get("SLURM_PROCID", "0")) == 0
    return True


def slurm_gpu_arguments(env: Mapping[str, str], gpus_per_task: int) -> dict[str, int | bool]:
    """GPU arguments of ``SlurmClusterResolver`` that work on CPU nodes and under ``--gpus-per-task``.

    Left to itself the resolver counts a node's GPUs with ``nvidia-smi`` (absent on a CPU
    node: it raises) or from ``CUDA_VISIBLE_DEVICES`` (which ``--gpus-per-task`` narrows to
    the task's own GPUs, so GPUs per task rounds down to 0), and it lists one worker per
    GPU slot, so with 0 GPUs per task it lists no worker at all. So it is told one slot
    per task (``gpus_per_task`` of them, at least 1) on every node, and it sets
    ``CUDA_VISIBLE_DEVICES`` itself only when GPUs are wanted and Slurm did not bind them.

    Args:
        env: the process environment, inside the Slurm job step.
        gpus_per_task: the GPUs each task uses (``runtime.launcher.gpus_per_worker``); 0 for CPU nodes.

    Returns:
        Keyword arguments of ``SlurmClusterResolver``: ``gpus_per_task``, ``gpus_per_node``, ``auto_set_gpu``.
    """
    per_task = max(gpus_per_task, 1)
    tasks = int(env.get("SLURM_STEP_NUM_TASKS") or env.get("SLURM_NTASKS") or 1)
    return {
        "gpus_per_task": per_task,
        "gpus_per_node": per_task * tasks,  # at least the tasks of any one node
        "auto_set_gpu": gpus_per_task > 0 and "CUDA_VISIBLE_DEVICES" not in env,
    }
