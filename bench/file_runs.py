"""A table's files stored as task runs, several at once, against one after another in the ingest task.

Generates scale.py's table (30 float32 columns, a binary label, 10 Parquet files) and
ingests it into a fresh root, the modes alternating, each round a fresh process:

- **one task**: the files in turn in the ingest task, the next read while the last is
  stored (``runtime.ingest.task_runner: in_task``; tasks/ingest/read_ahead.py);
- **threads x1**, **threads x2**: each file a ``materialize-file`` task run under the
  flow's ``ThreadPoolTaskRunner``, ``runtime.ingest.files_at_once`` 1 or 2
  (tasks/ingest/file_runs.py);
- **dask x2**: the task runs on a local Dask cluster of 2 worker processes
  (``runtime.ingest.task_runner: dask``), its start and the workers' imports included;
- **dask x2 warm**: on a cluster of 2 worker processes started (and TensorFlow imported in
  them) before the rounds, as a long-lived cluster at ``KERASFLOW_DASK_ADDRESS`` is.

    .venv/bin/python bench/file_runs.py [--rows 5000000] [--rounds 3] [--modes ...]

Prints each round's seconds and peak RSS (the process; for dask also its largest worker),
the median of each mode, and each mode's ratio to **one task**. The clock runs around the
ingest alone, in a flow run. Every round reports to one ``prefect server start`` (SQLite,
127.0.0.1) started first, as a team's flows and a long-lived cluster's workers do: a
temporary server per round would leave the warm cluster's workers reporting to the
previous round's, gone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import write_table  # the benchmark folder's own module

ROUND = """
import json, logging, os, resource, sys, tempfile, time
import tensorflow, tensorflow_datasets  # imported before the clock starts, as the command does
import kerasflow
from prefect import flow
from kerasflow.tasks.ingest import partitions
from kerasflow.tasks.ingest.sources import identify
from kerasflow.tasks.config.runtime import IngestRunConfig
mode, table, scratch, address = sys.argv[1:]
if mode == "dask x2 warm":
    os.environ["KERASFLOW_DASK_ADDRESS"] = address
config = kerasflow.load_recipe("fraud_tabular", [f"data.url={table}"])
root = tempfile.mkdtemp(dir=scratch)
runtime = {
    "one task": IngestRunConfig(task_runner="in_task"),
    "threads x1": IngestRunConfig(files_at_once=1),
    "threads x2": IngestRunConfig(files_at_once=2),
    "dask x2": IngestRunConfig(task_runner="dask", dask_workers=2),
    "dask x2 warm": IngestRunConfig(task_runner="dask"),
}[mode]

def timed():
    started = time.perf_counter()
    partitions.materialize_partitions(
        config.data, identify(config.data), root, logger=logging.getLogger("bench"), runtime=runtime
    )
    return time.perf_counter() - started

@flow(name="bench-file-runs")
def bench():
    return timed()

seconds = bench()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
print(json.dumps({"seconds": seconds, "peak_gib": peak, "worker_peak_gib": workers}))
"""

MODES = ["one task", "threads x1", "threads x2", "dask x2", "dask x2 warm"]


def warm_cluster():
    """A local cluster of 2 worker processes with kerasflow's ingest and TensorFlow imported."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with Client(cluster) as client:
        client.run(
            lambda: [__import__(m) for m in ("tensorflow", "tensorflow_datasets", "kerasflow.tasks.ingest.file_runs")]
        )
    return cluster


@contextlib.contextmanager
def prefect_server(home: Path):
    """``prefect server start`` on a free loopback port, until it answers; yields its API URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    command = [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1"]
    with open(home / "server.log", "wb") as log:
        server = subprocess.Popen([*command, "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        while True:  # no deadline: a slow machine starts it later, and the log says why it does not
            if server.poll() is not None:
                sys.exit(f"prefect server exited:\n{(home / 'server.log').read_text()[-3000:]}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=2):
                break
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=MODES, choices=MODES)
    args = parser.parse_args()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    found: dict[str, list[dict]] = {mode: [] for mode in args.modes}
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="kerasflow-bench-file-runs-"))
        (Path(tmp) / "prefect").mkdir()
        # The rounds and the warm cluster's workers (they inherit this environment) report to it.
        os.environ["PREFECT_API_URL"] = env["PREFECT_API_URL"] = stack.enter_context(
            prefect_server(Path(tmp) / "prefect")
        )
        cluster = warm_cluster() if "dask x2 warm" in args.modes else None
        address = cluster.scheduler_address if cluster else "-"
        if cluster is not None:
            stack.callback(cluster.close)
        table = Path(tmp) / "table"
        table.mkdir()
        write_table(table, args.rows)
        for number in range(args.rounds):
            for mode in args.modes:
                with tempfile.TemporaryDirectory(dir=tmp) as scratch:
                    done = subprocess.run(
                        [sys.executable, "-c", ROUND, mode, str(table), scratch, address],
                        env=env,
                        capture_output=True,
                        text=True,
                    )
                if done.returncode:
                    sys.exit(f"{mode} failed:\n{done.stderr[-3000:]}")
                result = json.loads(done.stdout.strip().splitlines()[-1])
                found[mode].append(result)
                workers = f", largest worker {result['worker_peak_gib']:.2f} GiB" if mode == "dask x2" else ""
                print(
                    f"round {number + 1} {mode:>12}: {result['seconds']:6.2f} s, peak {result['peak_gib']:.2f} GiB"
                    f"{workers}",
                    flush=True,
                )
    print(f"{args.rows:,} rows in 10 files, medians of {args.rounds} round(s)")
    median = {mode: statistics.median(r["seconds"] for r in results) for mode, results in found.items()}
    for mode, results in found.items():
        peak = max(r["peak_gib"] for r in results)
        ratio = f", ratio to one task {median[mode] / median['one task']:.2f}" if "one task" in median else ""
        print(f"  {mode:>12}: {median[mode]:.2f} s, peak {peak:.2f} GiB{ratio}")


if __name__ == "__main__":
    main()
