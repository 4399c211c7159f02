"""Reading a finished flow run back through the Prefect API, as the UI does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId


def flow_run_record(flow_run_id: str, *, artifacts_by_key: dict | None = None):
    """(flow run, task runs by name, artifact keys) for one flow run.

    ``artifacts_by_key``, when given, is filled with the artifacts themselves.
    """
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
        run_filter = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
        task_runs = client.read_task_runs(flow_run_filter=run_filter)
        artifacts = client.read_artifacts(flow_run_filter=run_filter)
    by_name: dict[str, list] = {}
    for task_run in task_runs:
        # Task run names are "<task name>-<suffix>".
        by_name.setdefault(task_run.name.rsplit("-", 1)[0], []).append(task_run)
    if artifacts_by_key is not None:
        artifacts_by_key.update({a.key: a for a in artifacts if a.key})
    return flow_run, by_name, {a.key for a in artifacts if a.key}


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
