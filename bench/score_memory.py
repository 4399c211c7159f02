"""Batch scoring's memory, streamed against a plain whole-table script, side by side.

Trains `fraud_tabular` for one epoch on a small table, then scores a large one (30
float32 columns in 10 Parquet files, no label) twice, each in a fresh process:

- `kerasflow predict`: read, scored and written batch by batch (tasks/score/);
- a plain script: every file read into one DataFrame, `model.predict` on all of it,
  the scores written with `DataFrame.to_parquet` (what scoring did before it streamed).

    .venv/bin/python bench/score_memory.py [--rows 2000000] [--files 10]

Prints rows, wall time and peak RSS of each (from wait4's rusage of that process) and
their ratios, and checks the two outputs hold the same predictions.
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

PLAIN = """
import sys, glob
import keras, numpy as np, pandas as pd
model_path, folder, output = sys.argv[1:]
frame = pd.concat([pd.read_parquet(p) for p in sorted(glob.glob(folder + "/*.parquet"))], ignore_index=True)
model = keras.saving.load_model(model_path)
p = np.asarray(model.predict(frame[COLUMNS].to_numpy("float32"), batch_size=1024, verbose=0))
pd.DataFrame({"row": np.arange(len(frame)), "probability": p.reshape(len(frame), -1)[:, -1]}).to_parquet(output)
"""


def table(rows: int, seed: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(COLUMNS))).astype("float32"), columns=COLUMNS)
    frame["label"] = (frame["f0"] + frame["f1"] > 0).astype("int64")
    return frame


def measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of ``cmd`` run as a fresh process."""
    started = time.perf_counter()
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{output[-3000:]}")
    return seconds, usage.ru_maxrss / 2**20  # KiB -> GiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kerasflow-bench-score-") as tmp:
        tmp = Path(tmp)
        root, incoming = tmp / "root", tmp / "incoming"
        incoming.mkdir()
        table(20_000, seed=0).to_parquet(tmp / "train.parquet", index=False)
        per_file = -(-args.rows // args.files)
        for i in range(args.files):
            rows = min(per_file, args.rows - i * per_file)
            table(rows, seed=i + 1).drop(columns=["label"]).to_parquet(incoming / f"part-{i:02d}.parquet", index=False)
        env = {**os.environ, "KERASFLOW_ROOT": str(root), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env["DO_NOT_TRACK"] = "1"
        train = [str(BIN / "kerasflow"), "train", "fraud_tabular", "--set", f"data.url={tmp / 'train.parquet'}"]
        train += ["--set", "training.epochs=1", "--set", "training.early_stopping.enabled=false"]
        subprocess.run(train, env=env, check=True, capture_output=True)
        model_path = root / "registry" / "fraud-tabular" / "versions" / "1" / "model.keras"

        streamed_out, plain_out = tmp / "streamed.parquet", tmp / "plain.parquet"
        predict = [str(BIN / "kerasflow"), "predict", "fraud-tabular@1", "--data", str(incoming)]
        streamed = measured([*predict, "--output", str(streamed_out)], env)
        script = f"COLUMNS = {COLUMNS!r}\n{PLAIN}"
        plain = measured([sys.executable, "-c", script, str(model_path), str(incoming), str(plain_out)], env)

        import numpy as np
        import pandas as pd

        a, b = pd.read_parquet(streamed_out), pd.read_parquet(plain_out)
        np.testing.assert_allclose(a["p_1"].to_numpy(), b["probability"].to_numpy(), atol=1e-5)
    print(f"scored {args.rows:,} rows x {len(COLUMNS)} float32 columns in {args.files} Parquet files")
    print(f"kerasflow predict (streamed): {streamed[0]:6.1f} s  peak RSS {streamed[1]:.2f} GiB")
    print(f"plain whole-table script:     {plain[0]:6.1f} s  peak RSS {plain[1]:.2f} GiB")
    print(f"ratio kerasflow / plain: wall {streamed[0] / plain[0]:.2f}, peak RSS {streamed[1] / plain[1]:.2f}")


if __name__ == "__main__":
    main()
