"""The team's nightly retraining: kerasflow's retraining, in the team's own Prefect flow, with the team's steps.

ingest -> validate -> drift -> enough_rows (the team's) -> train -> evaluate -> gate -> register
-> promote, then release_note (the team's). ``kerasflow.retrain`` keeps every guarantee of
``kerasflow train``: it skips unchanged data, checks drift, waits for a manual approval, emits
the promoted and rejected events, and trains again after a rejection.

    python -m flows.nightly recipe.yaml [--set dotted.key=value ...]
"""

from __future__ import annotations

import sys

from prefect import flow

import kerasflow
from tasks import enough_rows, release_note


@flow(name="team-nightly-retrain", log_prints=True)
def nightly_retrain(config: kerasflow.TrainConfig, minimum_rows: int = 1000) -> kerasflow.RunSummary:
    steps = kerasflow.TeamSteps(before_training=lambda dataset: enough_rows(dataset, minimum=minimum_rows))
    summary = kerasflow.retrain(config, steps=steps)
    if summary.outcome == "promoted":
        note = release_note(summary.version, summary.gate)
        print(note)
        summary = summary.model_copy(update={"message": note})
    return summary


if __name__ == "__main__":
    recipe, *rest = sys.argv[1:] or ["recipe.yaml"]
    assignments = [value for flag, value in zip(rest[::2], rest[1::2], strict=True) if flag == "--set"]
    try:
        print(nightly_retrain(config=kerasflow.load_recipe(recipe, assignments)).message)
    except kerasflow.GateRejected as rejected:  # a rejection is an outcome: its summary says why
        print(rejected.summary.message)
        sys.exit(3)
