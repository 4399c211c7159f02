"""A scheduled retrain notices when this week's data no longer looks like production's training data."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from kerasflow.flows.recipes import load_recipe
from kerasflow.flows.train import train_flow
from kerasflow.models.registry import ModelRegistry
from kerasflow.tasks.drift import DataDrifted
from tests.flows.helpers import flow_run_record, model_events
from tests.tables import transactions_frame, write_frame

pytestmark = pytest.mark.usefixtures("prefect_server")

QUICK = ["training.epochs=2", "gate.value={}", "gate.change={}", "training.early_stopping.enabled=false"]


def drifted_week(rows: int, *, seed: int):
    """Amounts three times larger, and most transactions from one new country."""
    frame = transactions_frame(rows, seed=seed)
    frame["amount"] = frame["amount"] * 3
    frame.loc[frame.index[: rows * 6 // 10], "country"] = "zz"  # rows are split by hash: ~60 % in each split
    return frame


def test_drift_is_reported_with_an_event_and_fails_the_run_when_asked(root, tmp_path):
    week = lambda n: str(tmp_path / f"week-{n}.parquet")  # noqa: E731
    write_frame(week(1), transactions_frame(2000, seed=1))
    assert train_flow(config=load_recipe("fraud_tabular", [f"data.url={week(1)}", *QUICK])).outcome == "promoted"

    # The same kind of week: compared, nothing drifted.
    write_frame(week(2), transactions_frame(2000, seed=2))
    summary = train_flow(config=load_recipe("fraud_tabular", [f"data.url={week(2)}", *QUICK]))
    registry = ModelRegistry(f"{root}/registry")
    artifacts: dict = {}
    flow_run_record(registry.get("fraud-tabular", 2)["flow_run_id"], artifacts_by_key=artifacts)
    assert summary.version.version == 2
    assert "Data drift: 0 of 7 column(s) drifted" in artifacts["data-drift"].data
    # What the run trained on, on its page: every split's rows, the label, each column.
    shown = artifacts["dataset-statistics"].data
    train_rows = registry.get("fraud-tabular", 2)["dataset"]["splits"]["train"]
    assert f"#### train: {train_rows} rows" in shown and re.search(r"\| amount \| 0 \| mean \d", shown)
    assert re.search(r"\| country \| [1-9]\d* \(\d\.\d%\) \| 9 value\(s\): ", shown), "4 % missing, 9 countries"
    assert "Label: 2 value(s): " in shown and shown.count("data:image/png;base64,") == 1

    # A drifted week: reported (warn is the default), an event with the columns' distances, trained anyway.
    since = datetime.now(UTC)
    write_frame(week(3), drifted_week(2000, seed=3))
    summary = train_flow(config=load_recipe("fraud_tabular", [f"data.url={week(3)}", *QUICK]))
    assert summary.version.version == 3
    artifacts = {}
    flow_run_record(registry.get("fraud-tabular", 3)["flow_run_id"], artifacts_by_key=artifacts)
    report = artifacts["data-drift"].data
    assert "2 of 7 column(s) drifted" in report and "| amount | jensen-shannon |" in report
    # 60 % of the rows, give or take the sampling of the training split.
    assert re.search(
        r"\| country \| l-infinity \| 0\.(5[89]|6[01])\d* \| 0\.1 \| \*\*drifted\*\* "
        r"\| 'zz' 0\.0% -> (5[89]|6[01])\.\d% \(new\) \|",
        report,
    )
    assert report.count("data:image/png;base64,") == 2, "both distributions drawn for each drifted column"
    found = [e for e in model_events("fraud-tabular", since=since, expected=2) if e.event == "kerasflow.data.drifted"]
    assert len(found) == 1 and set(found[0].payload["columns"]) == {"amount", "country"}

    # Asked to fail: an ordinary week now differs from v3's drifted one. One message naming the
    # columns, their distances and the fix, before any training.
    write_frame(week(4), transactions_frame(2000, seed=4))
    failing = load_recipe("fraud_tabular", [f"data.url={week(4)}", *QUICK, "validation.drift.action=fail"])
    with pytest.raises(DataDrifted) as info:
        train_flow(config=failing)
    message = str(info.value)
    assert message.startswith("data drift: 2 of 7 column(s) drifted from fraud-tabular v3's training data")
    assert re.search(r"country: l-infinity 0\.(5[89]|6[01])\d* > 0\.1 \('zz' (5[89]|6[01])\.\d% -> 0\.0%\)", message)
    assert message.endswith("or set validation.drift.action=warn to train on it")
    assert [v["version"] for v in registry.versions("fraud-tabular")] == [1, 2, 3], "nothing trained or registered"
    assert len(list((root / "runs").iterdir())) == 3
