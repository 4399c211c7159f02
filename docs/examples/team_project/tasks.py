"""The team's own Prefect tasks, used between kerasflow's steps in flows/nightly.py."""

from __future__ import annotations

from prefect import task

import kerasflow
from models import owner_of


@task(name="enough-rows", retries=0)
def enough_rows(dataset: kerasflow.DatasetRef, *, minimum: int) -> int:
    """The team's policy: never train on fewer than ``minimum`` training rows."""
    rows = dataset.splits.get("train", 0)
    if rows < minimum:
        raise kerasflow.DataValidationError(
            f"received {rows} training rows in dataset {dataset.fingerprint}, expected at least {minimum}"
        )
    return rows


@task(name="release-note")
def release_note(version: kerasflow.ModelVersion, report: kerasflow.GateReport) -> str:
    """One line for the team's channel: what was promoted, who owns it, what the gate said."""
    return f"{version.name} v{version.version} is {version.alias} ({owner_of(version.name)}): {report.summary()}"
