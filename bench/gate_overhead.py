"""The gate's added cost on evaluation: the paired accumulator against the measurers, per million rows.

Evaluation with a baseline feeds each chunk of (labels, candidate's outputs, baseline's
outputs) to both models' measurers (tasks/learning/measurers.py) and, since issue 31, to a
paired accumulator (tasks/learning/paired.py) that gives candidate - baseline of every
metric with its standard error. This times, on the same chunks of ``--rows`` synthetic
rows (8,192 at a time, as tasks/evaluate.py hands them over) and best of ``--repeats``:

- the two measurers alone (what evaluation measured before);
- the paired accumulator alone, its bootstrap at the end included;
- two small Keras models predicting the same rows (``predict_on_batch``, a 64-input MLP),
  a floor for the evaluate step's prediction time;

for a 10-class task and a binary task (whose AUC is bootstrapped). It prints each and the
accumulator's share of the measuring, and of the evaluate step (predictions + measuring).

    .venv/bin/python bench/gate_overhead.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

CHUNK = 8192


def outputs(task: str, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two models' outputs that mostly agree, as a retrained candidate and production do."""
    rng = np.random.default_rng(seed)
    if task == "multiclass":
        y = rng.integers(0, 10, rows)
        logits = rng.normal(size=(rows, 10)).astype("float32")
        logits[np.arange(rows), y] += 2.5
        other = logits + rng.normal(0, 0.5, size=logits.shape).astype("float32")
        softmax = [np.exp(x) / np.exp(x).sum(axis=1, keepdims=True) for x in (logits, other)]
        return y, softmax[0], softmax[1]
    y = rng.integers(0, 2, rows)
    score = np.clip(0.3 * y + 0.7 * rng.random(rows), 0, 1).astype("float32")
    other = np.clip(score + rng.normal(0, 0.05, rows), 0, 1).astype("float32")
    return y, score[:, None], other[:, None]


def best_of(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def predict_seconds(rows: int, width: int) -> float:
    """Two 64-input MLPs predicting ``rows`` rows in 8,192-row batches (a small model's evaluate-step floor)."""
    import keras

    x = np.random.default_rng(0).normal(size=(CHUNK, 64)).astype("float32")
    activation = "softmax" if width > 1 else "sigmoid"
    models = [
        keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, "relu"), keras.layers.Dense(width, activation)])
        for _ in range(2)
    ]
    for model in models:
        model.predict_on_batch(x)  # traced once
    start = time.perf_counter()
    for _ in range(rows // CHUNK):
        for model in models:
            model.predict_on_batch(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from kerasflow.tasks.learning.learning_tasks import TASKS
    from kerasflow.tasks.learning.paired import PairedAccumulator

    print(f"{args.rows:,} rows in {CHUNK:,}-row chunks, best of {args.repeats}")
    print(f"{'task':<12} {'measurers':>10} {'paired':>8} {'predict':>8} {'of measuring':>13} {'of evaluate':>12}")
    for name, width, class_names in (("multiclass", 10, [str(i) for i in range(10)]), ("binary", 1, ["no", "yes"])):
        task = TASKS[name]
        y, candidate, baseline = outputs(name, args.rows, seed=0)
        cuts = [*range(0, args.rows, CHUNK), args.rows]
        chunks = [(y[a:b], candidate[a:b], baseline[a:b]) for a, b in itertools.pairwise(cuts)]

        def measure(task=task, chunks=chunks, class_names=class_names) -> None:
            measurers = [task.measurer(class_names) for _ in range(2)]
            for labels, c, b in chunks:
                measurers[0].update(labels, c)
                measurers[1].update(labels, b)
            for measurer in measurers:
                measurer.result()

        def pair(task=task, chunks=chunks, class_names=class_names) -> None:
            accumulator = PairedAccumulator(task, class_names)
            for labels, c, b in chunks:
                accumulator.update(labels, c, b)
            accumulator.result()

        measuring = best_of(args.repeats, measure)
        paired = best_of(args.repeats, pair)
        predicting = predict_seconds(args.rows, width)
        print(
            f"{name:<12} {measuring:>9.2f}s {paired:>7.2f}s {predicting:>7.2f}s {paired / measuring:>12.0%} "
            f"{paired / (measuring + predicting):>11.0%}"
        )


if __name__ == "__main__":
    main()
