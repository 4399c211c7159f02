"""What a kill costs: finishing a killed 6-epoch training, over its last 3 epochs uninterrupted.

    python bench/resume.py [--rounds 3] [--batch-size 4]

Each round, in fresh processes on the digits data:
- uninterrupted: a 6-epoch training; its last 3 epochs take T3 (end of epoch 3 to end of 6);
- killed: the same training, SIGKILLed as soon as epoch 3 is published;
- resumed: the same training again, which restores the backup; it takes R from the
  start of training (model build, restore, first trace) to the end of epoch 6.

Prints R / T3 per round and the median. Restarting from scratch would score about 2.0;
the goal is at most 1.15. Small batches make an epoch long enough (a few seconds here)
to be more than the fixed cost of a start.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(root: str, batch_size: int) -> None:
    """Train digits for 6 epochs with the durable backup; print 'start' and each epoch end."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from kerasflow.tasks import storage
    from kerasflow.tasks.config import TrainConfig
    from kerasflow.tasks.data import materialize
    from kerasflow.tasks.ingest.sources import fingerprint, identify, load_source
    from kerasflow.tasks.train.callbacks import standard_callbacks
    from kerasflow.tasks.train.fit import fit_model
    from kerasflow.tasks.train.state import DurableBackup, TrainingState, training_key, training_url

    config = TrainConfig.smoke(storage={"root": root}, training={"epochs": 6, "batch_size": batch_size})
    identity = identify(config.data)
    ref = materialize.find_materialized(root, fingerprint(identity)) or materialize.materialize(
        load_source(config.data, identity), root
    )
    state = TrainingState(training_url(root, training_key(config, ref)))

    class Times(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            print(json.dumps({"epoch": epoch + 1, "t": time.perf_counter()}), flush=True)

    print(json.dumps({"start": time.perf_counter()}), flush=True)
    backup = DurableBackup(state, scratch=Path(root) / "scratch", publish=True)
    callbacks = standard_callbacks(config.training, backup=backup, progress=Times())
    fit_model(config, ref, run_id="bench", run_dir=storage.run_dir(root, "bench"), callbacks=callbacks)
    state.clear()


def run(root: str, batch_size: int, *, kill_after: int | None = None) -> dict:
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", root, "--batch-size", str(batch_size)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    times: dict = {}
    for line in process.stdout:
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        if "start" in event:
            times["start"] = event["start"]
        else:
            times[event["epoch"]] = event["t"]
            if event["epoch"] == kill_after:
                os.kill(process.pid, signal.SIGKILL)
                break
    process.wait()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.batch_size)
        return
    ratios = []
    for round_ in range(args.rounds):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            whole = run(a, args.batch_size)
            last_three = whole[6] - whole[3]
            run(b, args.batch_size, kill_after=3)
            resumed = run(b, args.batch_size)
            assert 3 not in resumed and 4 in resumed, f"did not resume at epoch 4: {resumed}"
            finish = resumed[6] - resumed["start"]
            ratios.append(finish / last_three)
            print(
                f"round {round_ + 1}: last 3 epochs uninterrupted {last_three:.2f}s, "
                f"finishing after the kill {finish:.2f}s, ratio {ratios[-1]:.3f}, "
                f"fixed cost of the restart {finish - last_three:+.2f}s"
            )
    median = statistics.median(ratios)
    print(f"resume ratio (median of {args.rounds}): {median:.3f}  (from scratch: ~2.0, goal <= 1.15)")


if __name__ == "__main__":
    main()
