"""kerasflow against plain Keras on a wide table of numbers (issue 30 §1), side by side in one run.

Generates a matrix of float32 columns and a binary label (one Parquet file) and runs, each
as a fresh process, alternating:

- `kerasflow train fraud_tabular` on the file (ingest, validate, train, evaluate, gate,
  register, promote; a fresh storage root, so the table is materialized every time), early
  stopping off;
- a plain Keras script of the same model on the same file: pyarrow read, a 70/15/15 cut,
  Normalization adapted, Dense(64) -> Dropout(0.5) -> sigmoid, `fit` with validation,
  evaluate, save; the same epochs and batch size.

    .venv/bin/python bench/wide_table.py                      # 3,000 cols x 2,000 rows and 500 cols x 100,000 rows
    .venv/bin/python bench/wide_table.py --case 3000x2000 --repeats 3

Prints wall time and peak RSS of each, and the wall ratio kerasflow / plain (best of each).
Goals (issue 30): <= 2 at 3,000 columns x 2,000 rows (2 epochs), <= 1.3 at 100,000 rows x 500
columns.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import measured  # the benchmark folder's own module

BIN = Path(sys.executable).parent
# (columns, rows): the two cases.
CASES = {"3000x2000": (3000, 2000), "500x100000": (500, 100_000)}

PLAIN = """
import sys
import keras, numpy as np, pyarrow.parquet as pq, tensorflow as tf
path, output, epochs, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
table = pq.read_table(path)
features = [name for name in table.column_names if name != "label"]
x = np.stack([table[c].to_numpy() for c in features], axis=1).astype("float32")
y = table["label"].to_numpy().astype("float32")
order = np.random.default_rng(0).permutation(len(x))
train, validation, test = np.split(order, [int(0.7 * len(x)), int(0.85 * len(x))])
normalize = keras.layers.Normalization()
normalize.adapt(x[train])
model = keras.Sequential([
    keras.Input((x.shape[1],)),
    normalize,
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dropout(0.5),
    keras.layers.Dense(1, activation="sigmoid"),
])
model.compile("adam", "binary_crossentropy", metrics=["accuracy", keras.metrics.AUC(name="auc")])
batches = lambda rows: tf.data.Dataset.from_tensor_slices((x[rows], y[rows])).batch(batch)
model.fit(batches(train), validation_data=batches(validation), epochs=epochs, verbose=0)
model.evaluate(batches(test), verbose=0)
model.save(output)
"""


def write_table(path: Path, columns: int, rows: int) -> None:
    """``rows`` rows of ``columns`` float32 columns ``f0``... and a label of the first ten, one Parquet file."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, columns)).astype("float32")
    label = (x[:, :10].sum(axis=1) + rng.normal(scale=0.5, size=rows) > 0).astype("int64")
    arrays = [pa.array(x[:, j]) for j in range(columns)] + [pa.array(label)]
    pq.write_table(pa.table(arrays, names=[f"f{j}" for j in range(columns)] + ["label"]), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), nargs="+", default=list(CASES))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256, help="the fraud_tabular recipe's")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    for case in args.case:
        columns, rows = CASES[case]
        with tempfile.TemporaryDirectory(prefix="kerasflow-bench-wide-") as tmp:
            tmp = Path(tmp)
            table = tmp / "wide.parquet"
            write_table(table, columns, rows)
            ours, plain = [], []
            for repeat in range(args.repeats):
                env = {**os.environ, "KERASFLOW_ROOT": str(tmp / f"root-{repeat}"), "DO_NOT_TRACK": "1"}
                env |= {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
                train = [str(BIN / "kerasflow"), "train", "fraud_tabular", "--set", f"data.url={table}"]
                for setting in (
                    f"training.epochs={args.epochs}",
                    f"training.batch_size={args.batch_size}",
                    "training.early_stopping.enabled=false",
                ):
                    train += ["--set", setting]
                # 0 promoted, 3 rejected by the gate: either way the whole flow ran.
                ours.append(measured(train, env, ok=(0, 3)))
                script = [sys.executable, "-c", PLAIN, str(table), str(tmp / "plain.keras")]
                plain.append(measured([*script, str(args.epochs), str(args.batch_size)], env))
            best_ours, best_plain = min(ours), min(plain)
            print(
                f"{columns:,} columns x {rows:,} rows, {args.epochs} epochs, batch {args.batch_size}, "
                f"best of {args.repeats}\n"
                f"  kerasflow train {best_ours[0]:7.1f} s {best_ours[1]:5.2f} GiB   "
                f"(runs: {', '.join(f'{s:.1f}' for s, _ in ours)})\n"
                f"  plain keras     {best_plain[0]:7.1f} s {best_plain[1]:5.2f} GiB   "
                f"(runs: {', '.join(f'{s:.1f}' for s, _ in plain)})\n"
                f"  ratio kerasflow/plain: {best_ours[0] / best_plain[0]:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
