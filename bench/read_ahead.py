"""Ingest of a table of files with the next file read ahead in a thread, against reading in turn.

Generates scale.py's table (30 float32 columns, a binary label, 10 Parquet files) and
materializes it into a fresh root, alternating, each round a fresh process:

- **ahead**: as ingest does it (tasks/ingest/read_ahead.py): the next part is read while
  the last one is stored;
- **in turn**: the same code with the read-ahead replaced by plain iteration.

    .venv/bin/python bench/read_ahead.py [--rows 5000000] [--rounds 4]

Prints each round's seconds, the best and the median of each, and their ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import write_table  # the benchmark folder's own module

ROUND = """
import sys, tempfile, time, logging
import tensorflow, tensorflow_datasets  # imported before the clock starts, as the command does
import kerasflow
from kerasflow.tasks.ingest import partitions
from kerasflow.tasks.ingest.sources import identify
mode, table, scratch = sys.argv[1:]
if mode == "in turn":
    partitions.read_ahead = lambda items, **_: iter(items)
config = kerasflow.load_recipe("fraud_tabular", [f"data.url={table}"])
logger = logging.getLogger("bench")
started = time.perf_counter()
partitions.materialize_partitions(config.data, identify(config.data), tempfile.mkdtemp(dir=scratch), logger=logger)
print(time.perf_counter() - started)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "DO_NOT_TRACK": "1"}
    seconds: dict[str, list[float]] = {"in turn": [], "ahead": []}
    with tempfile.TemporaryDirectory(prefix="kerasflow-bench-read-ahead-") as tmp:
        table = Path(tmp) / "table"
        table.mkdir()
        write_table(table, args.rows)
        for number in range(args.rounds):
            for mode in seconds:
                with tempfile.TemporaryDirectory(dir=tmp) as scratch:
                    done = subprocess.run(
                        [sys.executable, "-c", ROUND, mode, str(table), scratch],
                        env=env,
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                seconds[mode].append(float(done.stdout.strip().splitlines()[-1]))
                print(f"round {number + 1} {mode:>7}: {seconds[mode][-1]:6.2f} s", flush=True)
    best = {mode: min(values) for mode, values in seconds.items()}
    median = {mode: statistics.median(values) for mode, values in seconds.items()}
    print(f"{args.rows:,} rows in 10 files")
    for mode in seconds:
        print(f"  {mode:>7}: best {best[mode]:.2f} s, median {median[mode]:.2f} s")
    print(
        f"ratio ahead / in turn: best {best['ahead'] / best['in turn']:.2f}, "
        f"medians {median['ahead'] / median['in turn']:.2f}"
    )


if __name__ == "__main__":
    main()
