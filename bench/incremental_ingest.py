"""Ingest after one new daily file, against ingest of every file from scratch, side by side in one run.

Writes 49 daily Parquet files of the table of issue 14 (30 float32 columns, a binary
label) and measures, each in a fresh process (the ingest's own seconds, after imports,
and the process's peak RSS):

- **scratch**: a table of 49 files on an empty storage root, stored file by file
  (tasks/ingest/partitions.py: what `kerasflow train` does now);
- **add one**: the root holding the first 48 files' datasets (ingested beforehand, not
  timed), the 49th file added: the run the morning after a new partition lands;
- **whole**: the 49 files read and stored as one dataset, as ingest did before.

    .venv/bin/python bench/incremental_ingest.py [--files 49] [--rows 20000] [--repeats 2] [--task-runs]

``--task-runs``: scratch and add one inside a flow run, each file a task run as
``kerasflow train`` stores it (``runtime.ingest`` defaults, tasks/ingest/file_runs.py);
without it, in the ingest task's own thread (``task_runner: in_task``). The clock starts
inside the flow run, and every run reports to one ``prefect server start`` started first
(bench/file_runs.py's): with a temporary server per process, still busy on the same two
cores while the file was stored, the added file took 0.65-0.69 s, against 0.29-0.30 s.

Prints each, and the ratio add one / scratch. Goal (issue 14): at most 0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from file_runs import prefect_server  # the benchmark folder's own module

COLUMNS = [f"f{i}" for i in range(30)]

CHILD = """
import json, logging, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow, tensorflow_datasets  # imports are not the ingest's cost
from kerasflow.tasks.config import DataConfig
from kerasflow.tasks.ingest import materialize as materialization, partitions
from kerasflow.tasks.ingest.sources import identify, load_source
from kerasflow.tasks.config.runtime import IngestRunConfig
mode, url, root, task_runs = sys.argv[1:]
data = DataConfig(source="files", url=url)


def timed():
    started = time.perf_counter()
    identity = identify(data)
    if mode == "whole":
        ref = materialization.materialize(load_source(data, identity), root)
    else:
        runtime = IngestRunConfig() if task_runs == "yes" else None
        ref = partitions.materialize_partitions(
            data, identity, root, logger=logging.getLogger("bench"), runtime=runtime
        )
    return {"seconds": time.perf_counter() - started, "rows": sum(ref.splits.values())}


if task_runs == "yes" and mode != "whole":
    from prefect import flow

    result = flow(name="bench-incremental")(timed)()
else:
    result = timed()
print(json.dumps(result))
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


def ingest(mode: str, folder: Path, root: Path, *, task_runs: bool = False) -> tuple[float, float, int]:
    """The ingest's seconds, the process's peak RSS (GiB) and the rows stored, in a fresh process."""
    env = {**os.environ, "KERASFLOW_CACHE": str(root / "cache"), "DO_NOT_TRACK": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, str(folder / "*.parquet"), str(root), "yes" if task_runs else "no"],
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
    parser.add_argument("--task-runs", action="store_true", help="each file a task run in a flow run")
    args = parser.parse_args()
    runs = args.task_runs

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kerasflow-bench-incremental-")))
        if runs:  # the rounds' processes inherit this environment
            (tmp / "prefect").mkdir()
            os.environ["PREFECT_API_URL"] = stack.enter_context(prefect_server(tmp / "prefect"))
        days = tmp / "days"
        days.mkdir()
        for day in range(args.files):
            write_day(days, day, args.rows)
        print(f"{args.files} files of {args.rows:,} rows x {len(COLUMNS)} float32 columns", flush=True)
        ratios = []
        for repeat in range(args.repeats):
            # scratch: all files, an empty root.
            scratch, scratch_rss, rows = ingest("parts", days, tmp / f"scratch-{repeat}", task_runs=runs)
            # add one: the first files ingested beforehand (not timed), then the last one lands.
            growing = tmp / f"growing-{repeat}"
            growing.mkdir()
            for path in sorted(days.iterdir())[:-1]:
                os.link(path, growing / path.name)  # the same files: same size and mtime
            root = tmp / f"add-{repeat}"
            ingest("parts", growing, root, task_runs=runs)
            last = sorted(days.iterdir())[-1]
            os.link(last, growing / last.name)
            added, added_rss, added_rows = ingest("parts", growing, root, task_runs=runs)
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
