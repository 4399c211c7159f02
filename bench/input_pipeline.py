"""Does the input pipeline keep the model fed? Steps per second, side by side, one run.

For each case the same model trains on the same examples, fed two ways, in alternating
rounds after a warm-up epoch each:

- **pipeline**: kerasflow's ``make_dataset`` over the materialized dataset on disk
  (TFRecord shards, parallel interleave and decode, cache, seeded shuffle, batch, prefetch);
- **memory**: the same tensors already in memory (``from_tensor_slices``, shuffle, batch,
  prefetch): the upper bound of any input pipeline.

    .venv/bin/python bench/input_pipeline.py [--rounds 3]

Prints steps/s for each and the ratio pipeline / memory per case (goal: >= 0.95): of the
best round of each (the least disturbed by the rest of the machine) and of the medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np


def materialize_case(name: str, root: str):
    """(DatasetRef, zoo family, builder params) for one case, materialized under ``root``."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from kerasflow.tasks.config import DataConfig
    from kerasflow.tasks.data.materialize import materialize
    from kerasflow.tasks.ingest.sources import SourceData, load_source

    if name == "digits":
        return materialize(load_source(DataConfig(source="sample", name="digits")), root), "digits_cnn", {}
    # CIFAR-10-sized synthetic images: 32x32x3 uint8, 10 classes, stored as TFDS stores CIFAR.
    rng = np.random.default_rng(0)
    n = 5000
    x = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, size=n, dtype=np.int64)
    features = tfds.features.FeaturesDict(
        {
            "image": tfds.features.Tensor(shape=(32, 32, 3), dtype=np.uint8),
            "label": tfds.features.ClassLabel(num_classes=10),
        }
    )
    cuts = {"train": slice(0, 4000), "validation": slice(4000, 4500), "test": slice(4500, n)}
    source = SourceData(
        name="synthetic_cifar",
        features=features,
        splits={k: tf.data.Dataset.from_tensor_slices({"image": x[c], "label": y[c]}) for k, c in cuts.items()},
        feature_key="image",
        label_key="label",
        class_names=[str(i) for i in range(10)],
        identity={"source": "bench", "name": "synthetic_cifar", "n": n},
    )
    return materialize(source, root), "cifar10_cnn", {}


def build_model(family: str, params: dict, ref):
    import keras

    from kerasflow.models import builders, zoo
    from kerasflow.tasks.config import ModelConfig
    from kerasflow.tasks.train.build import input_spec_of, task_of

    keras.utils.set_random_seed(0)
    config = ModelConfig(family=family)
    spec = input_spec_of(ref, config)
    model = builders.resolve(family)(input_spec=spec, **params)
    loss, metrics = task_of(config, ref).training_objects(
        label_smoothing=0.0, one_hot=False, output_width=spec.num_outputs
    )
    return zoo.compile_model(model, loss=loss, metrics=metrics, learning_rate=1e-3)


def steps_per_second(model, ds, *, epochs: int, steps: int) -> float:
    started = time.perf_counter()
    model.fit(ds, epochs=epochs, verbose=0)
    return steps * epochs / (time.perf_counter() - started)


def run_case(name: str, *, rounds: int, epochs: int, batch_size: int) -> dict[str, list[float]]:
    import tensorflow as tf

    from kerasflow.tasks.data.pipeline import load_split, make_dataset

    with tempfile.TemporaryDirectory(prefix="kerasflow-bench-") as root:
        ref, family, params = materialize_case(name, root)
        xs, ys = zip(*load_split(ref, "train").as_numpy_iterator(), strict=True)
        x, y = np.stack(xs), np.array(ys)
        steps = -(-len(x) // batch_size)
        pipeline = make_dataset(ref, "train", batch_size=batch_size, shuffle=True, seed=0, cache="auto")
        memory = (
            tf.data.Dataset.from_tensor_slices((x, y))
            .shuffle(10_000, seed=0, reshuffle_each_iteration=True)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )
        models = {"pipeline": build_model(family, params, ref), "memory": build_model(family, params, ref)}
        feeds = {"pipeline": pipeline, "memory": memory}
        for key in feeds:  # warm-up: tracing, and the pipeline's cache fills
            models[key].fit(feeds[key], epochs=1, verbose=0)
        rates: dict[str, list[float]] = {"pipeline": [], "memory": []}
        for i in range(rounds):
            order = ("pipeline", "memory") if i % 2 == 0 else ("memory", "pipeline")
            for key in order:
                rates[key].append(steps_per_second(models[key], feeds[key], epochs=epochs, steps=steps))
        return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cases = {"digits": dict(epochs=30, batch_size=64), "cifar-sized": dict(epochs=2, batch_size=64)}
    lines = [
        f"{'case':<12} {'pipeline steps/s (best, median)':>32} {'memory steps/s':>16} {'ratio best':>11} {'median':>7}"
    ]
    for name, settings in cases.items():
        rates = run_case(name, rounds=args.rounds, **settings)
        fed, bound = max(rates["pipeline"]), max(rates["memory"])
        fed_median, bound_median = statistics.median(rates["pipeline"]), statistics.median(rates["memory"])
        lines.append(
            f"{name:<12} {fed:>22.1f} {fed_median:>9.1f} {bound:>8.1f} {bound_median:>7.1f} "
            f"{fed / bound:>11.3f} {fed_median / bound_median:>7.3f}"
        )
        rounds = {k: " ".join(f"{r:.1f}" for r in v) for k, v in rates.items()}
        print(f"{name}: pipeline rounds {rounds['pipeline']}; memory rounds {rounds['memory']}", flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
