"""Step time of two worker processes over one process with two replicas (informational on CPU).

    python bench/multiworker.py [--epochs 4] [--batch-size 32] [--rounds 3]

Both train the digits CNN with the loop of tasks/train/loop.py on the same data and
global batch: once as one process with two logical CPU devices under
MirroredStrategy, once as two processes with one device each under
MultiWorkerMirroredStrategy on loopback. The first epoch (tracing) is left out. On a
2-core machine both share the same cores; the ratio measures the cost of gRPC
collectives between processes against in-process all-reduce, not a speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(root: str, epochs: int, batch_size: int, mode: str) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    from kerasflow.tasks.config import TrainConfig
    from kerasflow.tasks.data import materialize
    from kerasflow.tasks.ingest.sources import fingerprint, identify, load_source
    from kerasflow.tasks.train import fit, loop
    from kerasflow.tasks.train.plan import make_plan

    config = TrainConfig.smoke(storage={"root": root}, training={"epochs": epochs, "batch_size": batch_size})
    identity = identify(config.data)
    ref = materialize.find_materialized(root, fingerprint(identity)) or materialize.materialize(
        load_source(config.data, identity), root
    )
    keras.utils.set_random_seed(0)
    if mode == "mirrored":
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    else:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    global_batch = batch_size * strategy.num_replicas_in_sync
    with strategy.scope():
        model = fit.build_compiled_model(config, ref, replicas=2)
    steps = ref.splits["train"] // global_batch
    ends = []

    class Times(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            ends.append(time.perf_counter())

    train_fn = fit.dataset_fn(ref, "train", make_plan(config, ref, replicas=strategy.num_replicas_in_sync))
    loop.train_loop(
        model, strategy, train_fn=train_fn, validation_fn=None, epochs=epochs, steps_per_epoch=steps,
        validation_steps=0, callbacks=[Times()],
    )  # fmt: skip
    per_step = (ends[-1] - ends[0]) / ((epochs - 1) * steps)
    print(json.dumps({"step_seconds": per_step}), flush=True)


def measure(root: str, epochs: int, batch_size: int, mode: str) -> float:
    command = [sys.executable, __file__, "--child", root, "--epochs", str(epochs), "--batch-size", str(batch_size)]
    if mode == "mirrored":
        out = subprocess.run([*command, "--mode", "mirrored"], capture_output=True, text=True, cwd=ROOT, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])["step_seconds"]
    from kerasflow.tasks.train.cluster import tf_config
    from kerasflow.tasks.train.launch.local_processes import free_ports

    addresses = [f"127.0.0.1:{p}" for p in free_ports(2)]
    workers = [
        subprocess.Popen(
            [*command, "--mode", "multi_worker"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
            env={**os.environ, "TF_CONFIG": tf_config(addresses, i)},
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=900)[0] for w in workers]
    return json.loads(outputs[0].strip().splitlines()[-1])["step_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--mode", default="mirrored")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.epochs, args.batch_size, args.mode)
        return
    ratios = []
    with tempfile.TemporaryDirectory() as root:
        for round_ in range(args.rounds):
            one = measure(root, args.epochs, args.batch_size, "mirrored")
            two = measure(root, args.epochs, args.batch_size, "multi_worker")
            ratios.append(two / one)
            print(
                f"round {round_ + 1}: one process x2 replicas {one * 1000:.1f} ms/step, "
                f"two processes {two * 1000:.1f} ms/step, ratio {ratios[-1]:.2f}"
            )
    print(f"multi-worker / mirrored step time (median of {args.rounds}): {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
