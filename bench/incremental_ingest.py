"""Ingest after one new daily file, against ingest of every file from scratch, side by side in one run.

Writes 49 daily Parquet files of the table of issue 14 (30 float32 columns, a binary
label) and measures, each in a fresh process (the ingest's own seconds, after imports,
and the process's peak RSS):

- **scratch**: a table of 49 files on an empty storage root, stored file by file
  (tasks/ingest/partitions.py: what `kerasflow train` does now);
- **add one**: the root holding the first 48 files' datasets (ingested beforehand, not
  timed), the 49th file added: the run the morning after a new partition lands;
- **whole**: the 49 files read and stored as one dataset, as ingest did before.

    .venv/bin/python bench/incremental_ingest.py [--files 49] [--rows 20000] [--repeats 2]

Prints each, and the ratio add one / scratch. Goal (issue 14): at most 0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

COLUMNS = [f"f{i}" for i in range(30)]

CHILD = """
import json, logging, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow, tensorflow_datasets  # imports are not the ingest's cost
from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.ingest import materialize as materialization, partitions
from kerasflow.tasks.ingest.sources import identify, load_source
mode, url, root = sys.argv[1:]
data = DataConfig(source="files", url=url)
started = time.perf_counter()
identity = identify(data)
if mode == "whole":
    ref = materialization.materialize(load_source(data, identity), root)
else:
    ref = partitions.materialize_partitions(data, identity, root, logger=logging.getLogger("bench"))
print(json.dumps({"seconds": time.perf_counter() - started, "rows": sum(ref.splits.values())}))
"""


def write_day(folder: Path, day: int, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(day)
    x = rng.normal(size=(rows, len(COLUMNS))).astype("float32")
    label = ((x[:, 0] + x[:, 1] + rng.normal(scale=0.5, size=rows)) > 0).astype("int64")
    columns = {c: x[:, j] for j, c in enumerate(COLUMNS)} | {"label": label}
    pq.write_table(pa.table(columns), folder / f"day={day:03d}.parquet")


def ingest(mode: str, folder: Path, root: Path) -> tuple[float, float, int]:
    """The ingest's seconds, the process's peak RSS (GiB) and the rows stored, in a fresh process."""
    env = {**os.environ, "KERASFLOW_CACHE": str(root / "cache")}
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, str(folder / "*.parquet"), str(root)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{mode} ingest of {folder} failed ({os.waitstatus_to_exitcode(status)}); run it alone to see why")
    result = json.loads(out.strip().splitlines()[-1])
    return result["seconds"], usage.ru_maxrss / 2**20, result["rows"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=49)
    parser.add_argument("--rows", type=int, default=20_000, help="rows per file")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kerasflow-bench-incremental-") as tmp:
        tmp = Path(tmp)
        days = tmp / "days"
        days.mkdir()
        for day in range(args.files):
            write_day(days, day, args.rows)
        print(f"{args.files} files of {args.rows:,} rows x {len(COLUMNS)} float32 columns", flush=True)
        ratios = []
        for repeat in range(args.repeats):
            # scratch: all files, an empty root.
            scratch, scratch_rss, rows = ingest("parts", days, tmp / f"scratch-{repeat}")
            # add one: the first files ingested beforehand (not timed), then the last one lands.
            growing = tmp / f"growing-{repeat}"
            growing.mkdir()
            for path in sorted(days.iterdir())[:-1]:
                os.link(path, growing / path.name)  # the same files: same size and mtime
            root = tmp / f"add-{repeat}"
            ingest("parts", growing, root)
            last = sorted(days.iterdir())[-1]
            os.link(last, growing / last.name)
            added, added_rss, added_rows = ingest("parts", growing, root)
            assert added_rows == rows, (added_rows, rows)
            whole, whole_rss, _ = ingest("whole", days, tmp / f"whole-{repeat}")
            ratios.append(added / scratch)
            print(
                f"round {repeat + 1}: scratch {scratch:6.2f} s {scratch_rss:4.2f} GiB   "
                f"add one {added:6.2f} s {added_rss:4.2f} GiB   whole {whole:6.2f} s {whole_rss:4.2f} GiB   "
                f"ratio add/scratch {added / scratch:.3f}   scratch/whole {scratch / whole:.2f}",
                flush=True,
            )
            for folder in (growing, root, tmp / f"scratch-{repeat}", tmp / f"whole-{repeat}"):
                shutil.rmtree(folder, ignore_errors=True)
        print(f"ratio add one / scratch: best {min(ratios):.3f}, worst {max(ratios):.3f} (goal <= 0.1)")


if __name__ == "__main__":
    main()
