"""Which strategy a run gets, and what is refused where it cannot work."""

from __future__ import annotations

import json

import pytest
import tensorflow as tf

from kerasflow.tasks.config import ConfigError, RuntimeConfig, TrainConfig
from kerasflow.tasks.train import cluster
from kerasflow.tasks.train.fit import learning_rate
from kerasflow.tasks.train.strategy import build_strategy, check_accelerator_features, describe

TWO_WORKERS = cluster.tf_config(["127.0.0.1:1", "127.0.0.1:2"], 1)


def test_the_cluster_comes_from_tf_config_slurm_or_an_indexed_job():
    assert cluster.cluster_workers({}) == 1 and cluster.is_chief({})
    assert cluster.cluster_workers({"TF_CONFIG": TWO_WORKERS}) == 2
    assert not cluster.is_chief({"TF_CONFIG": TWO_WORKERS})
    slurm = {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4", "SLURM_PROCID": "0"}
    assert cluster.cluster_workers(slurm) == 4 and cluster.is_chief(slurm)
    assert not cluster.is_chief({**slurm, "SLURM_PROCID": "3"})
    pod = {cluster.WORKERS_ENV: "w-0.svc:2222,w-1.svc:2222,w-2.svc:2222", cluster.INDEX_ENV: "2"}
    spec = json.loads(cluster.tf_config_from_index(pod))
    assert spec == {
        "cluster": {"worker": ["w-0.svc:2222", "w-1.svc:2222", "w-2.svc:2222"]},
        "task": {"type": "worker", "index": 2},
    }
    assert cluster.tf_config_from_index({}) is None
    with pytest.raises(ValueError, match=r"received worker index 3, expected 0\.\.2"):
        cluster.tf_config(["a:1", "b:1", "c:1"], 3)


def test_slurm_cluster_resolver_arguments_list_every_task_on_cpu_nodes_and_under_gpus_per_task(monkeypatch):
    from tensorflow.python.distribute.cluster_resolver import SlurmClusterResolver

    step = {"SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "4", "SLURM_STEP_NODELIST": "n[1-2]"}
    step["SLURM_STEP_TASKS_PER_NODE"] = "2(x2)"
    for name, value in step.items():  # the resolver reads the process's environment
        monkeypatch.setenv(name, value)
    # A CPU node (no nvidia-smi): left to itself the resolver raises or lists no worker at all.
    cpu = cluster.slurm_gpu_arguments(step, 0)
    assert cpu == {"gpus_per_task": 1, "gpus_per_node": 4, "auto_set_gpu": False}
    resolver = SlurmClusterResolver(port_base=5000, **cpu)
    assert resolver.cluster_spec().as_dict() == {"worker": ["n1:5000", "n1:5001", "n2:5000", "n2:5001"]}
    assert resolver.get_task_info() == ("worker", 1)
    # --gpus-per-task: Slurm already bound each task's GPUs, so the resolver leaves them alone.
    bound = cluster.slurm_gpu_arguments({**step, "CUDA_VISIBLE_DEVICES": "2,3"}, 2)
    assert bound == {"gpus_per_task": 2, "gpus_per_node": 8, "auto_set_gpu": False}
    assert cluster.slurm_gpu_arguments(step, 2)["auto_set_gpu"], "GPUs wanted, none bound: the resolver binds them"


def test_one_device_and_mirrored_on_this_machine():
    assert describe(build_strategy(RuntimeConfig(), env={})) == "DefaultStrategy x1"
    assert describe(build_strategy(RuntimeConfig(strategy="one_device"), env={})) == "DefaultStrategy x1"
    mirrored = build_strategy(RuntimeConfig(devices=["/cpu:0", "/cpu:1"]), env={})
    assert describe(mirrored) == "MirroredStrategy x2"
    with pytest.raises(ConfigError, match=r"\['/gpu:3'\] do not exist here"):
        build_strategy(RuntimeConfig(devices=["/gpu:3"]), env={})


def test_multi_worker_without_a_cluster_spec_is_refused_with_the_way_out():
    with pytest.raises(ConfigError, match="neither TF_CONFIG nor a Slurm allocation names the workers"):
        build_strategy(RuntimeConfig(strategy="multi_worker"), env={})


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="the refusal is for machines without a GPU")
@pytest.mark.parametrize(
    "runtime, named",
    [
        ({"mixed_precision": "mixed_float16"}, "runtime.mixed_precision='mixed_float16'"),
        ({"mixed_precision": "mixed_bfloat16"}, "runtime.mixed_precision='mixed_bfloat16'"),
        ({"jit_compile": True}, "runtime.jit_compile=true"),
    ],
)
def test_mixed_precision_and_xla_are_refused_without_a_gpu(runtime, named):
    with pytest.raises(ConfigError, match="this machine has no GPU") as info:
        check_accelerator_features(RuntimeConfig(**runtime))
    assert named in str(info.value) and "runtime.mixed_precision='none'" in str(info.value)


def test_linear_learning_rate_scaling_is_opt_in():
    config = TrainConfig.smoke(training={"learning_rate": 0.001})
    assert learning_rate(config, 4) == 0.001
    scaled = TrainConfig.smoke(training={"learning_rate": 0.001}, runtime={"scale_learning_rate": True})
    assert learning_rate(scaled, 4) == pytest.approx(0.004)


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="the refusal is for machines without a GPU")
def test_the_flow_refuses_mixed_precision_without_a_gpu_before_any_work(root, prefect_server):
    from kerasflow.flows.train import train_flow

    config = TrainConfig.smoke(storage={"root": str(root)}, runtime={"mixed_precision": "mixed_float16"})
    with pytest.raises(ConfigError, match=r"runtime\.mixed_precision='mixed_float16', but this machine has no GPU"):
        train_flow(config=config)
    assert not root.exists(), "nothing was ingested or written"


def test_one_process_trains_two_models_one_after_the_other_under_mirrored_strategy():
    # Every MirroredStrategy counted its collective keys from the same start: the second
    # model's all-reduce met the first's cached collective instance ("Shape mismatch in the
    # collective instance"), as in `kerasflow serve` training recipe after recipe.
    import keras
    import numpy as np

    runtime = RuntimeConfig(devices=["/cpu:0", "/cpu:1"])
    # The third is built directly, as a notebook or a test comparing with plain Keras does:
    # it met the key base kerasflow's previous strategy had left on the class. (Two built
    # directly one after the other still meet: TensorFlow's own behaviour.)
    for units, width, direct in ((64, 30, False), (8, 5, False), (200, 7, True), (16, 3, False)):
        strategy = tf.distribute.MirroredStrategy(runtime.devices) if direct else build_strategy(runtime)
        assert strategy.num_replicas_in_sync == 2
        with strategy.scope():
            model = keras.Sequential([keras.Input((width,)), keras.layers.Dense(units), keras.layers.Dense(1)])
            model.compile("adam", "mse")
        data = tf.data.Dataset.from_tensor_slices((np.ones((64, width), "float32"), np.ones(64))).batch(16)
        history = model.fit(data, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
