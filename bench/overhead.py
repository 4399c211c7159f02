"""What kerasflow costs over plain Keras on the same job, measured side by side.

Runs, in one session and alternating, the digits job as a plain Keras script
(bench/plain_keras_digits.py) and as `kerasflow train` (Prefect flow, embedded server,
materialized dataset, callbacks, evaluation, gate, registry), both with the same epochs,
batch size and no early stopping, each as a fresh process so start-up counts for both.

    .venv/bin/python bench/overhead.py [--epochs 200] [--repeats 3]

Prints the wall-time ratio kerasflow / plain, best run of each (goal: <= 1.10 on a job of
about a minute), the ratio of the medians (this machine's training time alone varies by
about 15% between identical runs), and the fixed overhead in seconds (the difference of
the two best wall times).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def timed(cmd: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    started = time.perf_counter()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode not in ok:
        sys.exit(
            f"command failed ({result.returncode}): {' '.join(cmd)}\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    return seconds


def digits_split(folder: Path) -> Path:
    """kerasflow's split of the digits recipe's rows (the hash rule), saved for the plain script."""
    import numpy as np

    from kerasflow.flows.recipes import load_recipe
    from kerasflow.tasks.ingest.sources.arrays import floats, split_indices
    from kerasflow.tasks.ingest.sources.samples import sample_arrays

    data = load_recipe("digits", []).data
    x, y, class_names, _ = sample_arrays(data)
    cut = split_indices(floats(x), y, class_names, data)
    path = folder / "digits-split.npz"
    np.savez(path, **{name: np.sort(rows) for name, rows in cut.items()})
    print("split " + " / ".join(f"{name} {len(rows)}" for name, rows in cut.items()))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}

    split = digits_split(Path(tempfile.mkdtemp(prefix="kerasflow-bench-split-")))
    plain_times, flow_times, teardown_times = [], [], []
    # The same command with the interpreter's teardown at exit, as before tasks/_process/fast_exit.py.
    with_teardown = [sys.executable, "-c", "import sys; from kerasflow.flows.cli import app; sys.exit(app())"]
    for _ in range(args.repeats):
        plain_times.append(
            timed([sys.executable, str(HERE / "plain_keras_digits.py"), str(args.epochs), str(split)], env)
        )
        for command, times in (([str(BIN / "kerasflow")], flow_times), (with_teardown, teardown_times)):
            with tempfile.TemporaryDirectory(prefix="kerasflow-bench-") as root:
                settings = [f"training.epochs={args.epochs}", "training.early_stopping.enabled=false"]
                settings.append(f"storage.root={root}")
                train = [*command, "train", "digits", *(arg for s in settings for arg in ("--set", s))]
                # A short run the gate rejects (exit 3) did all the same work.
                times.append(timed(train, env, ok=(0, 3)))
    plain, flow = min(plain_times), min(flow_times)
    print(f"digits, {args.epochs} epochs, batch 32, best of {args.repeats}")
    print(f"plain keras      {plain:7.1f} s   (runs: {', '.join(f'{t:.1f}' for t in plain_times)})")
    print(f"kerasflow train  {flow:7.1f} s   (runs: {', '.join(f'{t:.1f}' for t in flow_times)})")
    print(
        f"  with teardown  {min(teardown_times):7.1f} s   (runs: {', '.join(f'{t:.1f}' for t in teardown_times)}; "
        f"the interpreter's teardown at exit, as before tasks/_process/fast_exit.py)"
    )
    print(f"ratio kerasflow/plain: {flow / plain:.2f}   (goal <= 1.10; best of each)")
    print(f"ratio of medians:      {statistics.median(flow_times) / statistics.median(plain_times):.2f}")
    print(f"fixed overhead: {flow - plain:.1f} s")


if __name__ == "__main__":
    main()
