"""The team's nightly retraining: kerasflow's steps, composed in the team's own Prefect flow.

ingest -> validate -> enough_rows (the team's) -> train -> evaluate -> gate -> register
-> promote -> release_note (the team's). Each kerasflow step keeps its own retries; a
rejected candidate is registered as rejected and the run fails with the gate's summary.

    python -m flows.nightly recipe.yaml [--set dotted.key=value ...]
"""

from __future__ import annotations

import sys

from prefect import flow
from prefect.runtime import flow_run

import kerasflow
from tasks import enough_rows, release_note


@flow(name="team-nightly-retrain", log_prints=True)
def nightly_retrain(config: kerasflow.TrainConfig, minimum_rows: int = 1000) -> kerasflow.RunSummary:
    root, name = config.storage.root, config.model.name
    dataset = kerasflow.ingest(config.data, root=root)
    kerasflow.validate(dataset, config)
    enough_rows(dataset, minimum=minimum_rows)
    trained = kerasflow.train(config, dataset, run_id=str(flow_run.id))
    evaluation = kerasflow.evaluate(trained, dataset, config.model, target=config.target)
    report = kerasflow.gate(evaluation, config.gate, name=name)
    version = kerasflow.register(
        trained, dataset=dataset, evaluation=evaluation, report=report, config=config, flow_run_id=flow_run.id
    )
    if not report.passed:
        raise kerasflow.GateRejected(f"{name} v{version.version} rejected: {report.summary()}")
    promoted = kerasflow.promote(version, report, target=config.target, flow_run_id=flow_run.id)
    note = release_note(promoted, report)
    print(note)
    return kerasflow.RunSummary(
        model_name=name,
        outcome="promoted",
        message=note,
        dataset_fingerprint=dataset.fingerprint,
        storage_root=root,
        version=promoted,
        metrics=evaluation.candidate.values,
        gate=report,
    )


if __name__ == "__main__":
    recipe, *rest = sys.argv[1:] or ["recipe.yaml"]
    assignments = [value for flag, value in zip(rest[::2], rest[1::2], strict=True) if flag == "--set"]
    print(nightly_retrain(config=kerasflow.load_recipe(recipe, assignments)).message)
