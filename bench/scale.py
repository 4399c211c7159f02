"""kerasflow against plain Keras on a large table: wall time and peak memory, side by side.

Generates the table of issue 14 (30 float32 columns, a binary label, in 10 Parquet
files) and runs, each as a fresh process, one epoch at batch 1024 of:

- `kerasflow train fraud_tabular` on the files (ingest, validate, train, evaluate, gate,
  register, promote; a fresh storage root, so the table is materialized every time);
- a plain Keras script doing the same work: read the Parquet files with pyarrow, cut
  70/15/15, `fit` on `from_tensor_slices`, evaluate, save.

    .venv/bin/python bench/scale.py [--rows 1000000 2000000] [--repeats 1]
    .venv/bin/python bench/scale.py --large      # 1M, 5M and 20M rows (20M: about 2.4 GB of Parquet)

Prints wall time and peak RSS (wait4's rusage of the process) of each, and the ratios.
Goals (issue 14): wall ratio <= 1.3 at 5M rows; kerasflow's peak RSS <= 3 GiB at 20M rows.
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
COLUMNS = [f"f{i}" for i in range(30)]
FILES = 10
SETTINGS = ("training.epochs=1", "training.batch_size=1024", "training.early_stopping.enabled=false")

PLAIN = """
import glob, sys
import keras, numpy as np, pyarrow.parquet as pq, tensorflow as tf
folder, output = sys.argv[1:]
table = pq.ParquetDataset(sorted(glob.glob(folder + "/*.parquet"))).read()
x = np.stack([table[c].to_numpy() for c in COLUMNS], axis=1).astype("float32")
y = table["label"].to_numpy().astype("float32")
order = np.random.default_rng(0).permutation(len(x))
cut = [int(0.7 * len(x)), int(0.85 * len(x))]
train, validation, test = np.split(order, cut)
model = keras.Sequential([
    keras.Input((x.shape[1],)),
    keras.layers.Normalization(),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dropout(0.5),
    keras.layers.Dense(1, activation="sigmoid"),
])
model.layers[0].adapt(x[train][:100_000])
model.compile("adam", "binary_crossentropy", metrics=["accuracy", keras.metrics.AUC(name="auc")])
batches = lambda rows: tf.data.Dataset.from_tensor_slices((x[rows], y[rows])).batch(1024)
model.fit(batches(train), validation_data=batches(validation), epochs=1, verbose=0)
model.evaluate(batches(test), verbose=0)
model.save(output)
"""


def write_table(folder: Path, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    per_file = -(-rows // FILES)
    for i in range(FILES):
        n = min(per_file, rows - i * per_file)
        rng = np.random.default_rng(i)
        x = rng.normal(size=(n, len(COLUMNS))).astype("float32")
        label = ((x[:, 0] + x[:, 1] + rng.normal(scale=0.5, size=n)) > 0).astype("int64")
        columns = {c: x[:, j] for j, c in enumerate(COLUMNS)} | {"label": label}
        pq.write_table(pa.table(columns), folder / f"part-{i:02d}.parquet")


def measured(cmd: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of ``cmd`` as a fresh process."""
    started = time.perf_counter()
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in ok:
        sys.exit(f"failed ({os.waitstatus_to_exitcode(status)}): {' '.join(cmd)}\n{output[-3000:]}")
    return seconds, usage.ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 2_000_000])
    parser.add_argument("--large", action="store_true", help="1M, 5M and 20M rows")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--set", dest="settings", action="append", default=[], help="a kerasflow --set, e.g. data.cache=none"
    )
    args = parser.parse_args()
    sizes = [1_000_000, 5_000_000, 20_000_000] if args.large else args.rows

    results = []
    for rows in sizes:
        with tempfile.TemporaryDirectory(prefix="kerasflow-bench-scale-") as tmp:
            tmp = Path(tmp)
            (tmp / "table").mkdir()
            write_table(tmp / "table", rows)
            for repeat in range(args.repeats):
                root = tmp / f"root-{repeat}"
                env = {**os.environ, "KERASFLOW_ROOT": str(root), "DO_NOT_TRACK": "1"}
                env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
                train = [str(BIN / "kerasflow"), "train", "fraud_tabular", "--set", f"data.url={tmp / 'table'}"]
                for setting in (*SETTINGS, *args.settings):
                    train += ["--set", setting]
                # 0 promoted, 3 rejected by the gate: either way the whole flow ran.
                ours = measured(train, env, ok=(0, 3))
                script = f"COLUMNS = {COLUMNS!r}\n{PLAIN}"
                plain = measured([sys.executable, "-c", script, str(tmp / "table"), str(tmp / "plain.keras")], env)
                results.append((rows, ours, plain))
                print(
                    f"{rows:>11,} rows  kerasflow {ours[0]:7.1f} s {ours[1]:5.2f} GiB   plain {plain[0]:7.1f} s "
                    f"{plain[1]:5.2f} GiB   ratio wall {ours[0] / plain[0]:.2f} RSS {ours[1] / plain[1]:.2f}",
                    flush=True,
                )
    if len({r for r, _, _ in results}) > 1:
        (small, a, p), (large, b, q) = results[0], results[-1]
        millions = (large - small) / 1e6
        print(
            f"per million rows: kerasflow {(b[0] - a[0]) / millions:.1f} s {(b[1] - a[1]) / millions:.3f} GiB, "
            f"plain {(q[0] - p[0]) / millions:.1f} s {(q[1] - p[1]) / millions:.3f} GiB"
        )


if __name__ == "__main__":
    main()
