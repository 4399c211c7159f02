"""What a kill after training costs: the rerun after a kill in registration, over the training time.

    python bench/resume_after_training.py [--rounds 3] [--epochs 8]

Each round, on a fresh root and a fresh Prefect home (the embedded server, as on a laptop):
- killed: `kerasflow train` (digits, --epochs) SIGKILLs itself as registration begins,
  after training finished; its training time T is read from the record it left
  (training/<key>/trained.json, ``train_seconds``);
- rerun: `kerasflow train` again, which reuses that model (evaluate, gate, register,
  promote). R is the rerun's whole wall time, process start to exit; S is the part
  after the rerun found the trained model (the steps that were left).

Prints R / T and S / T per round and their medians. Training again from scratch would
score about 1 + start-up / T; the goal is R / T at most 0.1. Process start-up (TensorFlow's
import, the server's boot) is a fixed cost that is part of R and not of S.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# `kerasflow train ARGS` with the flow's register step replaced by a SIGKILL of the process.
KILLED_AT_REGISTRATION = """
import os, signal, sys
import kerasflow.flows.train as flow_module

flow_module.register = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
from kerasflow.flows.cli import app
sys.argv = ["kerasflow", "train", *sys.argv[1:]]
app()
"""


def environment(root: str, home: str) -> dict[str, str]:
    env = {**os.environ, "KERASFLOW_ROOT": root, "PREFECT_HOME": home, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("PREFECT_API_URL", None)
    return env


def one_round(epochs: int) -> tuple[float, float, float]:
    args = ["--set", f"training.epochs={epochs}", "--set", "training.early_stopping.enabled=false"]
    # Judged on accuracy alone: 8 epochs leave a digit's recall near the 0.85 bar, and the
    # rerun must reach promotion (the step a kill between register and promote leaves).
    args += ["--set", "gate.per_class={}"]
    with tempfile.TemporaryDirectory() as root, tempfile.TemporaryDirectory() as home:
        env = environment(root, home)
        killed = subprocess.run(
            [sys.executable, "-c", KILLED_AT_REGISTRATION, *args], env=env, cwd=ROOT, capture_output=True, text=True
        )
        assert killed.returncode == -9, killed.stdout + killed.stderr
        [record] = Path(root).glob("training/*/trained.json")
        train_seconds = json.loads(record.read_text())["train_seconds"]

        started = time.perf_counter()
        rerun = subprocess.Popen(
            [sys.executable, "-m", "kerasflow.flows.cli", "train", *args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        found, lines = None, []
        for line in rerun.stdout:
            lines.append(line)
            if found is None and "reusing its model" in line:
                found = time.perf_counter()
        rerun.wait()
        ended = time.perf_counter()
        out = "".join(lines)
        assert rerun.returncode == 0 and found is not None and f"epoch 1/{epochs}" not in out, out
        assert "v1 promoted" in out, out
        return train_seconds, ended - started, ended - found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    whole, left = [], []
    for round_ in range(args.rounds):
        train_seconds, rerun, steps_left = one_round(args.epochs)
        whole.append(rerun / train_seconds)
        left.append(steps_left / train_seconds)
        print(
            f"round {round_ + 1}: training {train_seconds:.2f}s, rerun {rerun:.2f}s (R/T {whole[-1]:.3f}), "
            f"steps left {steps_left:.2f}s (S/T {left[-1]:.3f})"
        )
    print(
        f"rerun after a kill in registration / training time (median of {args.rounds}): "
        f"R/T {statistics.median(whole):.3f}, S/T {statistics.median(left):.3f}  (goal R/T <= 0.1)"
    )


if __name__ == "__main__":
    main()
