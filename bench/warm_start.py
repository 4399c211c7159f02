"""What a warm start saves: epochs and wall time to reach production's validation loss, warm over cold.

    python bench/warm_start.py [--rounds 3]

On the digits data, in this process, each round:
- production: the digits CNN trained from scratch on the first 700 training rows (the
  data of the last run), early-stopped on validation loss; its validation loss is the
  target;
- new data lands: all 1,283 training rows;
- cold: the same architecture from scratch on the new data, one epoch at a time until
  its validation loss reaches the target (at most 60 epochs);
- warm: the production weights (as ``training.warm_start: production`` starts from them)
  on the new data, the same way, at a fine-tuning learning rate (``--warm-learning-rate``,
  a quarter of the recipe's by default: at the full rate Adam's first steps throw the
  warm start out of production's optimum, and in one round of three it never got back).

Prints warm/cold for epochs and for wall time per round, and the medians; the goal is at
most 0.3. Both are measured side by side in one run; run it alone on the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def materialized(root: str, limit: int | None):
    from kerasflow.tasks.config import TrainConfig
    from kerasflow.tasks.data import materialize
    from kerasflow.tasks.ingest.sources import fingerprint, identify, load_source

    config = TrainConfig.smoke(storage={"root": root}, data={"limit": limit} if limit else {}, training={"epochs": 60})
    identity = identify(config.data)
    ref = materialize.find_materialized(root, fingerprint(identity)) or materialize.materialize(
        load_source(config.data, identity), root
    )
    return config, ref


def until(target: float | None, *, epochs: int):
    """Train epoch by epoch; stop once val_loss <= target (or early-stop without a target)."""
    import keras

    class Reached(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs = 0

        def on_epoch_end(self, epoch, logs=None):
            self.epochs = epoch + 1
            if target is not None and logs["val_loss"] <= target:
                self.model.stop_training = True

    reached = Reached()
    callbacks = [reached]
    if target is None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True))
    return reached, callbacks, epochs


def train(config, ref, *, target: float | None, weights=None, seed: int, learning_rate: float | None = None):
    import keras

    from kerasflow.tasks.train import fit
    from kerasflow.tasks.train.plan import make_plan

    keras.utils.set_random_seed(seed)
    if learning_rate is not None:
        config = config.with_overrides([f"training.learning_rate={learning_rate}"])
    plan = make_plan(config, ref, replicas=1)
    model = fit.build_compiled_model(config, ref, plan=plan)
    if weights is not None:
        model.set_weights(weights)
    train_ds, val_ds = (
        fit.dataset_fn(ref, s, plan)(None) for s in fit.SPLITS
    )
    reached, callbacks, epochs = until(target, epochs=60)
    started = time.perf_counter()
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks, verbose=0, shuffle=False)
    seconds = time.perf_counter() - started
    return model, reached.epochs, seconds, min(history.history["val_loss"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--warm-learning-rate",
        type=float,
        default=0.0005,
        help="the warm start's learning rate (fine-tuning: a quarter of the recipe's 0.002 by default)",
    )
    args = parser.parse_args()
    epoch_ratios, time_ratios = [], []
    with tempfile.TemporaryDirectory() as root:
        old_config, old = materialized(root, limit=700)
        new_config, new = materialized(root, limit=None)
        for round_ in range(args.rounds):
            production, _, _, _ = train(old_config, old, target=None, seed=round_)
            from kerasflow.tasks.train import fit
            from kerasflow.tasks.train.plan import make_plan

            _, val = (fit.dataset_fn(new, s, make_plan(new_config, new, replicas=1))(None) for s in fit.SPLITS)
            target = float(production.evaluate(val, verbose=0, return_dict=True)["loss"])
            _, cold_epochs, cold_seconds, cold_best = train(new_config, new, target=target, seed=100 + round_)
            _, warm_epochs, warm_seconds, warm_best = train(
                new_config,
                new,
                target=target,
                weights=production.get_weights(),
                seed=100 + round_,
                learning_rate=args.warm_learning_rate,
            )
            epoch_ratios.append(warm_epochs / cold_epochs)
            time_ratios.append(warm_seconds / cold_seconds)
            print(
                f"round {round_ + 1}: target val_loss {target:.4f}; cold {cold_epochs} epochs {cold_seconds:.1f} s "
                f"(best {cold_best:.4f}); warm {warm_epochs} epochs {warm_seconds:.1f} s (best {warm_best:.4f}); "
                f"warm/cold epochs {epoch_ratios[-1]:.2f}, time {time_ratios[-1]:.2f}"
            )
    print(
        f"median warm/cold: epochs {statistics.median(epoch_ratios):.2f}, "
        f"wall time {statistics.median(time_ratios):.2f} (goal <= 0.3)"
    )


if __name__ == "__main__":
    main()
