"""kerasflow's embedded Prefect server against Prefect's own SubprocessASGIServer, side by side.

Both start the same uvicorn command in a child process. What a ``kerasflow train`` with no
``PREFECT_API_URL`` pays for its server is measured in a fresh process per run, as the
command uses it: start the server, import TensorFlow meanwhile, wait until the server
answers, make one API call, stop it, exit. Prefect's server is started in a thread (its
``start`` blocks until the server answers), so both sides overlap start-up with the
TensorFlow import.

    .venv/bin/python bench/embedded_server.py [--repeats 3]

Prints, best of ``--repeats`` runs after one warm-up of each side (the warm-up creates the
database), the wall time of the whole process, the time until the server answered, and
the time from "stop" to the process's end; and the ratio Prefect / kerasflow of the
wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

SIDES = ("kerasflow", "prefect")


def child(side: str) -> None:
    """One run of ``side``; prints its phases as JSON (seconds since the process started its work)."""
    started = time.perf_counter()
    if side == "kerasflow":
        from kerasflow.flows.cli.embedded_server import EmbeddedServer

        # A root under the temporary home: its database is created by the warm-up, as Prefect's.
        server = EmbeddedServer(os.path.join(os.environ["PREFECT_HOME"], "root"))
        import tensorflow  # the work a run does while its server starts

        server.wait_until_ready()
        api_url = server.api_url
    else:
        import threading

        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()
        starting = threading.Thread(target=server.start)
        starting.start()
        import tensorflow  # noqa: F401

        starting.join()
        api_url = server.api_url
    ready = time.perf_counter() - started
    import httpx

    assert httpx.get(f"{api_url}/flow_runs/filter", timeout=30).status_code in (200, 405)
    print(json.dumps({"ready": ready, "stopping_at": time.time()}))
    sys.stdout.flush()
    server.stop()


def run(side: str, env: dict[str, str]) -> dict[str, float]:
    begun = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", side], env=env, capture_output=True, text=True)
    wall, ended = time.perf_counter() - begun, time.time()
    if done.returncode != 0:
        sys.exit(f"{side} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    phases = json.loads(done.stdout.strip().splitlines()[-1])
    phases["wall"] = wall
    # From the stop call to the end of the process, as the parent saw it (atexit waits included).
    phases["stop_to_exit"] = ended - phases.pop("stopping_at")
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=SIDES)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    with tempfile.TemporaryDirectory() as home:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
            "PREFECT_HOME": home,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        for side in SIDES:
            run(side, env)  # warm-up: the database is created and migrated once
        runs: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
        for _ in range(args.repeats):
            for side in SIDES:
                runs[side].append(run(side, env))
    best = {side: min(runs[side], key=lambda r: r["wall"]) for side in SIDES}
    print(f"{'side':<10} {'wall s':>8} {'ready s':>8} {'stop..exit s':>13}   (best of {args.repeats})")
    for side in SIDES:
        r = best[side]
        print(f"{side:<10} {r['wall']:8.2f} {r['ready']:8.2f} {r['stop_to_exit']:13.2f}")
    print(f"ratio prefect / kerasflow wall: {best['prefect']['wall'] / best['kerasflow']['wall']:.2f}")


if __name__ == "__main__":
    main()
