"""Scoring a DataFrame in process (``kerasflow.load_predictor``) against ``model.predict`` on the same rows.

Trains a typed-table model briefly (`kerasflow train`, one epoch on 2,000 rows of numbers,
text and gaps, in a fresh process), then, in this process and with no Prefect server:
loads a predictor for it and times ``predictor.predict(frame)`` on ``--rows`` rows, best
of ``--repeats`` (the signature checks, the typed columns read, the model, the output
columns); beside it, ``model.predict`` alone on the same model inputs (what scoring called
before, a data adapter and an iterator built on every call).

    .venv/bin/python bench/predictor.py [--rows 100] [--repeats 20]

Prints the load time, both timings in milliseconds and their ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
RECIPE = """
data: {source: files, url: transactions.csv, label_column: label, missing: fill}
model: {name: transactions, family: fraud_tabular}
training: {epochs: 1, batch_size: 64, early_stopping: {enabled: false}}
gate: {value: {accuracy: {min: 0}}}
"""


def table(rows: int, seed: int):
    """Transactions: two numbers and two text columns, some of each missing; disputed when large and online."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.uniform(1, 50, rows),
            "hour": rng.uniform(0, 24, rows),
            "country": rng.choice(["de", "fr", "es", "it"], rows).astype(object),
            "channel": rng.choice(["web", "app", "store"], rows).astype(object),
        }
    )
    frame["label"] = ((frame.amount > 25) & (frame.channel != "store")).astype(int)
    frame.loc[rng.choice(rows, rows // 25, replace=False), "country"] = None
    frame.loc[rng.choice(rows, rows // 25, replace=False), "amount"] = float("nan")
    return frame


def best_ms(call, repeats: int) -> tuple[float, float]:
    """(best, median) wall milliseconds of ``call()`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return times[0], times[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kerasflow-bench-predictor-") as tmp:
        folder = Path(tmp)
        table(2000, seed=0).to_csv(folder / "transactions.csv", index=False)
        (folder / "transactions.yaml").write_text(RECIPE)
        env = {**os.environ, "KERASFLOW_ROOT": str(folder / "root"), "DO_NOT_TRACK": "1"}
        env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
        trained = subprocess.run(
            [str(BIN / "kerasflow"), "train", "transactions.yaml"], cwd=folder, env=env, capture_output=True, text=True
        )
        if trained.returncode != 0:
            sys.exit(f"kerasflow train failed:\n{trained.stdout[-3000:]}{trained.stderr[-3000:]}")

        started = time.perf_counter()
        import kerasflow

        predictor = kerasflow.load_predictor("transactions@production", root=str(folder / "root"))
        loaded = time.perf_counter() - started
        frame = table(args.rows, seed=1).drop(columns=["label"])

        from kerasflow.tasks.score.inputs import frame_features
        from kerasflow.tasks.score.signature import signature_of

        signature = signature_of(predictor.metadata)
        features = frame_features(
            frame,
            columns=predictor.columns,
            column_types=signature["column_types"],
            missing=signature["missing"],
            source="DataFrame",
        )
        in_process = best_ms(lambda: predictor.predict(frame), args.repeats)
        plain = best_ms(lambda: predictor.model.predict(features, batch_size=1024, verbose=0), args.repeats)

    print(f"rows {args.rows}, best of {args.repeats}; loaded in {loaded:.1f} s (imports, model fetched and checked)")
    print(f"  predictor.predict(frame)        best {in_process[0]:7.2f} ms  median {in_process[1]:7.2f} ms")
    print(f"  model.predict(inputs) alone     best {plain[0]:7.2f} ms  median {plain[1]:7.2f} ms")
    print(f"  ratio model.predict / predictor (best): {plain[0] / in_process[0]:.1f}")


if __name__ == "__main__":
    main()
