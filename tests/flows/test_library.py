"""kerasflow as a library: the team project's composed flow (docs/examples/team_project/).

The team's own ``flows``, ``tasks`` and ``models`` are imported in this very process next
to ``kerasflow.flows``, ``kerasflow.tasks`` and ``kerasflow.models``: the collision case.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

import kerasflow
from kerasflow.models.registry import ModelRegistry
from tests.flows.helpers import flow_run_record

pytestmark = pytest.mark.usefixtures("prefect_server")

TEAM_PROJECT = Path(__file__).resolve().parents[2] / "docs" / "examples" / "team_project"
TEAM_MODULES = ("flows", "flows.nightly", "tasks", "models")


@pytest.fixture
def team_project(monkeypatch):
    """The team's folder first on sys.path, as when its own code runs; its modules forgotten afterwards."""
    assert not set(TEAM_MODULES) & set(sys.modules), "nothing may have imported a bare flows/tasks/models"
    monkeypatch.syspath_prepend(str(TEAM_PROJECT))
    yield TEAM_PROJECT
    for name in TEAM_MODULES:
        sys.modules.pop(name, None)


def team_module(name: str):
    """One of the team's modules (by name: ruff bans writing a bare ``import tasks`` here)."""
    return importlib.import_module(name)


def test_the_team_flow_composes_kerasflow_steps_with_its_own(team_project, root):
    nightly_retrain = team_module("flows.nightly").nightly_retrain

    # The team's modules are the team's; kerasflow's are kerasflow's.
    assert Path(team_module("tasks").__file__) == team_project / "tasks.py"
    assert Path(team_module("models").__file__) == team_project / "models" / "__init__.py"
    assert kerasflow.ingest.fn.__module__ == "kerasflow.tasks.ingest"

    config = kerasflow.load_recipe(str(team_project / "recipe.yaml"), [f"storage.root={root}"])
    summary = nightly_retrain(config=config)

    assert summary.outcome == "promoted"
    assert summary.message.startswith("team-digits v1 is production (vision-team@example.com): passed")
    registry = ModelRegistry(f"{root}/registry")
    assert registry.alias_target("team-digits", "production") == 1
    metadata = registry.get("team-digits", 1)
    assert metadata["config"]["training"]["epochs"] == 2
    steps = [
        "ingest",
        "validate",
        "check-drift",
        "enough-rows",
        "train",
        "evaluate",
        "gate",
        "register",
        "promote",
        "release-note",
    ]
    flow_run, task_runs, artifacts = flow_run_record(metadata["flow_run_id"], tasks=tuple(steps))
    assert flow_run.state.is_completed()
    assert sorted(task_runs) == sorted(steps)
    assert all(run.state.is_completed() for runs in task_runs.values() for run in runs)
    assert {"validation-report", "gate-report", "registered-version"} <= artifacts


def test_the_team_flow_keeps_every_guarantee_of_the_command(team_project, root):
    # Composed from the steps, it retrained on unchanged data, checked no drift, emitted no event, and a
    # rejected run's finished training was reused by the next run: retrain() is the command's own work.
    from datetime import UTC, datetime

    from prefect import flow

    from tests.flows.helpers import model_events

    nightly_retrain = team_module("flows.nightly").nightly_retrain
    config = kerasflow.load_recipe(str(team_project / "recipe.yaml"), [f"storage.root={root}"])
    since = datetime.now(UTC)
    assert nightly_retrain(config=config).outcome == "promoted"
    again = nightly_retrain(config=config)
    assert again.outcome == "skipped" and "unchanged since team-digits v1" in again.message
    assert [e.event for e in model_events("team-digits", since=since, expected=2)] == [
        "kerasflow.model.promoted",
        "kerasflow.training.skipped",
    ]

    # The team's step may reject before promotion: recorded as a rejection, and the next run trains anew.
    def veto(version, report):
        raise kerasflow.GateRejected(f"{version.name} v{version.version}: the release freeze is on")

    freeze = kerasflow.TeamSteps(before_promotion=veto)
    frozen = flow(name="team-frozen")(lambda: kerasflow.retrain(config, force=True, steps=freeze))
    with pytest.raises(kerasflow.GateRejected, match="release freeze") as rejected:
        frozen()
    assert rejected.value.summary.outcome == "rejected" and rejected.value.summary.version.version == 2
    registry = ModelRegistry(f"{root}/registry")
    assert registry.alias_target("team-digits", "production") == 1
    thawed = flow(name="team-thaw")(lambda: kerasflow.retrain(config, force=True))()
    assert thawed.outcome == "promoted" and thawed.version.version == 3
    # Trained anew, not v2's finished training reused: a training run of its own.
    assert registry.get("team-digits", 3)["run_id"] != registry.get("team-digits", 2)["run_id"]


def test_the_team_policy_stops_the_flow_before_training(team_project, root):
    nightly_retrain = team_module("flows.nightly").nightly_retrain
    config = kerasflow.load_recipe(str(team_project / "recipe.yaml"), [f"storage.root={root}"])
    with pytest.raises(kerasflow.DataValidationError, match=r"received 1283 training rows .* expected at least 5000"):
        nightly_retrain(config=config, minimum_rows=5000)
    assert ModelRegistry(f"{root}/registry").versions("team-digits") == []
    assert not (root / "runs").exists()


def test_the_library_page_shows_the_flow_as_it_is_in_the_file():
    page = (Path(__file__).resolve().parents[2] / "docs" / "concepts" / "library.md").read_text()
    section = page.split("## Using kerasflow as a library", 1)[1]
    excerpt = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert excerpt.endswith("    ...\n")
    assert excerpt.removesuffix("    ...\n") in (TEAM_PROJECT / "flows" / "nightly.py").read_text()


def test_a_dataset_reused_by_a_run_in_progress_survives_the_default_datasets_gc(root, monkeypatch):
    """Issue 28: between ingest and the training lease (validate, drift), `datasets gc` removed the dataset the
    run had just reused (published long ago, used by no version): the run failed with NotFoundError."""
    import time
    from datetime import UTC, datetime, timedelta

    from prefect import flow

    from kerasflow.flows.train import train_flow
    from kerasflow.tasks.config import TrainConfig
    from kerasflow.tasks.housekeeping import sweep_datasets
    from kerasflow.tasks.ingest import ingest
    from kerasflow.tasks.storage import holds
    from kerasflow.tasks.validate import validate

    monkeypatch.setattr(holds, "HOLD_SECONDS", 3.0)  # the heartbeat looks at the run every second
    config = TrainConfig.smoke(storage={"root": str(root)})
    a_month_later = datetime.now(UTC) + timedelta(days=31)  # the dataset was published "long ago"

    @flow(name="team-validates-while-gc-runs")
    def team_flow():
        dataset = ingest(config.data, root=str(root))
        swept = sweep_datasets(str(root), grace=timedelta(hours=24), keep=timedelta(days=30), now=a_month_later)
        validate(dataset, config)  # reads every split: fails if the dataset went
        return swept

    swept = team_flow()
    assert swept.removed == []
    assert any(entry.reason.startswith("used by run ") for entry in swept.kept)
    # The team's flow never lets go itself: its hold ends once the heartbeat finds the run over.
    deadline = time.monotonic() + 120
    while holds.live_holds(str(root)).by_fingerprint and time.monotonic() < deadline:
        time.sleep(0.5)
    assert holds.live_holds(str(root)).by_fingerprint == {}

    # The command's flow lets go of what it held as it ends.
    assert train_flow(config=config).outcome == "promoted"
    assert holds.live_holds(str(root)).by_fingerprint == {}


def test_a_source_and_a_launcher_a_team_registers_are_what_a_recipe_names(root, tmp_path):
    """Extension points are registries, never closed lists: a recipe names a team's own source and
    launcher as it names the built-in ones, and an unknown name is refused before any work (exit 2)."""
    from kerasflow.flows.recipes import load_recipe
    from kerasflow.flows.train import train_flow
    from kerasflow.tasks.config import ConfigError
    from kerasflow.tasks.ingest.sources import SOURCE_REGISTRY, register_source
    from kerasflow.tasks.ingest.sources.tables.source import TableSource
    from kerasflow.tasks.train.launch import LAUNCHERS, launcher_for, register_launcher
    from tests.tables import event_frame, write_frame

    class ExportedTable(TableSource):
        """A team's export: CSV files read as a table, its identity naming the export's format."""

        def identify(self, data):
            return {**super().identify(data), "export_format": 1}

    launched = []
    in_process = launcher_for("in_process")

    def inline(job, *, logger, lease):
        launched.append(job.run_id)
        return in_process.run(job, logger=logger, lease=lease)

    register_source("team_export", ExportedTable())
    register_launcher("team_inline", on_this_node=True)(inline)
    try:
        url = write_frame(str(tmp_path / "export.csv"), event_frame(600, seed=5))
        config = load_recipe(
            "fraud_tabular",
            [
                f"data.url={url}",
                "data.source=team_export",
                "runtime.launcher.kind=team_inline",
                "training.epochs=8",
                "training.batch_size=32",
                "gate={value: {accuracy: {min: 0.6}}}",
            ],
        )
        summary = train_flow(config=config)
        assert summary.outcome == "promoted", summary.message
        assert len(launched) == 1
        recorded = ModelRegistry(f"{root}/registry").get("fraud-tabular", 1)["config"]
        assert recorded["data"]["source"] == "team_export"
        assert recorded["runtime"]["launcher"]["kind"] == "team_inline"

        for override, message in (
            (
                "data.source=team_exprot",
                "received data.source='team_exprot', expected one of ['files', 'images', 'sample', 'team_export', ",
            ),
            (
                "runtime.launcher.kind=inline",
                "received runtime.launcher.kind='inline', expected one of ['in_process', 'kubernetes', ",
            ),
        ):
            with pytest.raises(ConfigError, match=re.escape(message)):
                train_flow(config=config.with_overrides([override, "training.epochs=1"]))
        assert len(launched) == 1, "refused before any training"
    finally:
        SOURCE_REGISTRY.items.pop("team_export", None)
        LAUNCHERS.pop("team_inline", None)
