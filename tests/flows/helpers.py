"""Reading a finished flow run back through the Prefect API, as the UI does."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId


def flow_run_record(
    flow_run_id: str, *, artifacts_by_key: dict | None = None, tasks: tuple[str, ...] = (), timeout: float = 120
):
    """(flow run, task runs by name, artifact keys) for one flow run.

    ``artifacts_by_key``, when given, is filled with the artifacts themselves. ``tasks``:
    names whose task runs must all be recorded, in a final state: the server records task
    runs and their states from events, after the flow run returns, so on a busy machine a
    run may not be there yet, or still be Running there (seen for one of nine steps).
    """
    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            flow_run = client.read_flow_run(flow_run_id)
            run_filter = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
            task_runs = client.read_task_runs(flow_run_filter=run_filter)
            artifacts = client.read_artifacts(flow_run_filter=run_filter)
        by_name: dict[str, list] = {}
        for task_run in task_runs:
            # Task run names are "<task name>-<suffix>".
            by_name.setdefault(task_run.name.rsplit("-", 1)[0], []).append(task_run)
        recorded = all(
            by_name.get(name) and all(run.state is not None and run.state.is_final() for run in by_name[name])
            for name in tasks
        )
        if recorded or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if artifacts_by_key is not None:
        artifacts_by_key.update({a.key: a for a in artifacts if a.key})
    return flow_run, by_name, {a.key for a in artifacts if a.key}


def train_interrupted(config, *, after_epoch: int, interrupt: Callable[[], bool], timeout: float = 300):
    """``train_flow(config)`` while a thread calls ``interrupt()`` once ``after_epoch`` epochs are
    published, until it returns True (it did interrupt); the run's summary."""
    from kerasflow.flows.train import train_flow

    root, interrupted = Path(config.storage.root), []

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            published = list(root.glob("training/*/backup/latest.json"))
            if published and json.loads(published[0].read_text())["epoch"] >= after_epoch and interrupt():
                interrupted.append(True)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    summary = train_flow(config=config)
    watcher.join(timeout=1)
    assert interrupted, f"the training was not interrupted after epoch {after_epoch}"
    return summary


def assert_the_retry_resumed(root: Path, log_text: str, *, after_at_least: int, epochs: int) -> None:
    """The train task failed once and its retry resumed from the last published epoch to ``epochs``."""
    from kerasflow.models.registry import ModelRegistry

    resumed = re.search(r"interrupted after epoch (\d); resuming from its backup", log_text)
    assert resumed and int(resumed.group(1)) >= after_at_least
    registry = ModelRegistry(str(root / "registry"))
    training = registry.get("digits", 1)["training"]
    assert training["initial_epoch"] == int(resumed.group(1)) and training["epochs_completed"] == epochs
    _, task_runs, _ = flow_run_record(registry.get("digits", 1)["flow_run_id"], tasks=("train",))
    assert task_runs["train"][0].run_count == 2


def model_events(model: str, *, since: datetime, expected: int, timeout: float = 30.0) -> list:
    """The kerasflow events about ``model`` since ``since`` that the server stored, oldest first.

    Events leave this process through Prefect's events worker and are stored by the
    server asynchronously: drain the one, then poll the other until ``expected`` arrive.
    """
    import time

    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all()
    event_filter = EventFilter(
        occurred=EventOccurredFilter(since=since, until=datetime.now(UTC) + timedelta(hours=1)),
        event=EventNameFilter(prefix=["kerasflow."]),
        resource=EventResourceFilter(id=[f"kerasflow.model.{model}"]),
    )
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            found = sorted(client.read_events(filter=event_filter, limit=50).events, key=lambda e: e.occurred)
            if len(found) >= expected or time.monotonic() > deadline:
                return found
            time.sleep(0.5)


# `kerasflow train` arguments of a short digits run, judged on accuracy alone (the recipe's
# per-class recall of 0.85 needs a full run).
THREE_EPOCHS = [
    "--set", "training.epochs=3",
    "--set", "training.early_stopping.enabled=false",
    "--set", "gate.value.accuracy.min=0.2",
    "--set", "gate.per_class={}",
]  # fmt: skip
