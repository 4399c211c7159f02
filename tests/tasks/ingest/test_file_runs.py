"""A table's files stored as Prefect task runs, several at once, under the flow's task runner or a Dask cluster."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from prefect import flow

from kerasflow.tasks.config import ConfigError, DataConfig
from kerasflow.tasks.config.runtime import IngestRunConfig
from kerasflow.tasks.data import materialize as materialization
from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.ingest import ingest
from kerasflow.tasks.ingest.sources import SPLITS, identify, load_source
from tests.stored import as_sorted_rows, rows_of
from tests.tables import event_frame, write_frame

pytestmark = pytest.mark.usefixtures("prefect_server")


@flow(name="ingest-files")
def ingest_flow(data: DataConfig, root: str, runtime: IngestRunConfig):
    return ingest(data, root=root, runtime=runtime)


def table(prefix: str, files: int, *, rows: int = 150) -> DataConfig:
    for number in range(files):
        write_frame(f"{prefix}/day={number:02d}.parquet", event_frame(rows, seed=number))
    return DataConfig(source="files", url=f"{prefix}/*.parquet")


def file_runs_of(state, *, expected: bool = True) -> list:
    """The flow run's materialize-file task runs, in a final state, ordered by file name.

    ``expected``: some were made, and are waited for; else the ingest run is.
    """
    from tests.flows.helpers import flow_run_record

    waited = ("materialize",) if expected else ("ingest",)
    _, by_name, _ = flow_run_record(str(state.state_details.flow_run_id), tasks=waited)
    return sorted(by_name.get("materialize", []), key=lambda run: run.name)


def flow_logs(state) -> list[str]:
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        flow_run = LogFilterFlowRunId(any_=[state.state_details.flow_run_id])
        return [log.message for log in client.read_logs(log_filter=LogFilter(flow_run_id=flow_run))]


def assert_same_table(ref, whole):
    assert ref.fingerprint == whole.fingerprint and ref.splits == whole.splits
    for split in SPLITS:
        np.testing.assert_array_equal(
            as_sorted_rows(*rows_of(ref, split, ordered=True)), as_sorted_rows(*rows_of(whole, split, ordered=True))
        )


def test_each_file_is_a_task_run_at_most_files_at_once_at_a_time_and_a_new_file_is_the_only_new_run(tmp_path):
    data = table(str(tmp_path / "events"), 4)
    root = str(tmp_path / "root")
    runtime = IngestRunConfig(files_at_once=2)
    state = ingest_flow(data, root, runtime, return_state=True)

    whole = materialization.materialize(load_source(data, identify(data)), str(tmp_path / "whole"))
    assert_same_table(state.result(), whole)
    runs = file_runs_of(state)
    assert [run.name for run in runs] == [f"materialize-file day={n:02d}.parquet" for n in range(4)]
    assert all(run.state.is_completed() for run in runs)
    # Never more than two at once: each run's span against the others'.
    spans = [(run.start_time, run.end_time) for run in runs]
    for start, _ in spans:
        assert sum(1 for s, e in spans if s <= start < e) <= 2, spans

    write_frame(str(tmp_path / "events" / "day=04.parquet"), event_frame(150, seed=4))
    grown = ingest_flow(data, root, runtime, return_state=True)
    assert [run.name for run in file_runs_of(grown)] == ["materialize-file day=04.parquet"], "the others reused"
    assert len(list((tmp_path / "root" / "datasets").glob("*/ref.json"))) == 4 + 1 + 1 + 1, (
        "four files and their table, then the new file and the grown table: the others reused"
    )
    assert sum(grown.result().splits.values()) == 5 * 150


def test_a_bad_file_fails_once_starts_no_further_file_and_is_named(tmp_path):
    data = table(str(tmp_path / "events"), 4)
    bad = event_frame(150, seed=1).astype({"label": "Int64"})
    bad.loc[17, "label"] = None
    write_frame(str(tmp_path / "events" / "day=01.parquet"), bad)
    root = str(tmp_path / "root")
    state = ingest_flow(data, root, IngestRunConfig(files_at_once=1), return_state=True)

    assert state.is_failed()
    with pytest.raises(DataValidationError, match=r"day=01.parquet: check 'label present' failed: .* first at row 17"):
        state.result()
    runs = file_runs_of(state)
    assert [run.name.rsplit(" ", 1)[-1] for run in runs] == ["day=00.parquet", "day=01.parquet"], "no file after it"
    assert runs[0].state.is_completed() and runs[1].state.is_failed()
    assert runs[1].run_count == 1, "bad data is not retried"


def test_in_task_a_teams_own_runner_and_an_unknown_one(tmp_path, monkeypatch):
    from prefect.task_runners import ThreadPoolTaskRunner

    from kerasflow.tasks.ingest import file_runs

    data = table(str(tmp_path / "events"), 3)
    in_task = ingest_flow(data, str(tmp_path / "a"), IngestRunConfig(task_runner="in_task"), return_state=True)
    assert file_runs_of(in_task, expected=False) == [] and sum(in_task.result().splits.values()) == 3 * 150

    opened = []
    monkeypatch.setattr(file_runs.TASK_RUNNER_REGISTRY, "items", dict(file_runs.TASK_RUNNER_REGISTRY.items))
    file_runs.register_task_runner("three-threads", lambda config: opened.append(config) or ThreadPoolTaskRunner(3))
    own = ingest_flow(data, str(tmp_path / "b"), IngestRunConfig(task_runner="three-threads"), return_state=True)
    assert own.result().fingerprint == in_task.result().fingerprint
    assert len(opened) == 1 and len(file_runs_of(own)) == 3

    unknown = ingest_flow(data, str(tmp_path / "c"), IngestRunConfig(task_runner="ray"), return_state=True)
    expected = r"runtime.ingest.task_runner='ray', expected one of \['dask', 'flow', 'in_task', 'three-threads'\]"
    with pytest.raises(ConfigError, match=expected):
        unknown.result()
    with pytest.raises(ValueError, match="a name other than 'flow' and 'in_task'"):
        file_runs.register_task_runner("flow", lambda config: ThreadPoolTaskRunner())


def test_on_a_local_dask_cluster_the_files_are_stored_by_its_worker_processes(tmp_path):
    pytest.importorskip("prefect_dask")
    data = table(str(tmp_path / "events"), 3)
    runtime = IngestRunConfig(task_runner="dask", dask_workers=2)
    state = ingest_flow(data, str(tmp_path / "root"), runtime, return_state=True)

    whole = materialization.materialize(load_source(data, identify(data)), str(tmp_path / "whole"))
    assert_same_table(state.result(), whole)
    runs = file_runs_of(state)
    assert len(runs) == 3 and all(run.state.is_completed() for run in runs)
    stored_in = {
        int(found.group(1)) for message in flow_logs(state) if (found := re.search(r"in process (\d+) on", message))
    }
    assert stored_in and os.getpid() not in stored_in, "stored by the cluster's worker processes, not this one"


def test_dask_without_prefect_dask_installed_is_one_clear_error(monkeypatch):
    import sys

    from kerasflow.tasks.ingest import file_runs

    monkeypatch.setitem(sys.modules, "prefect_dask", None)  # import prefect_dask raises ImportError
    with pytest.raises(ConfigError, match=r"prefect-dask is not installed; pip install 'kerasflow\[dask\]'"):
        file_runs.TASK_RUNNER_REGISTRY.get("dask")(IngestRunConfig(task_runner="dask"))


def test_the_dask_address_is_the_environments_never_a_recipes(monkeypatch):
    from kerasflow.tasks.config import ConfigError, TrainConfig
    from kerasflow.tasks.config.runtime import IngestRunConfig
    from kerasflow.tasks.ingest import file_runs

    # Anyone who can start a run sets a recipe's values; the scheduler would get the run's Prefect settings.
    with pytest.raises(ConfigError, match=r"dask_address is not read from a recipe.*KERASFLOW_DASK_ADDRESS"):
        TrainConfig.smoke(runtime={"ingest": {"task_runner": "dask", "dask_address": "tcp://attacker:8786"}})
    assert TrainConfig.smoke(runtime={"ingest": {"dask_address": None}}).runtime.ingest == IngestRunConfig()

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")  # a configured server: no warning to log
    monkeypatch.setenv(file_runs.DASK_ADDRESS, "tcp://scheduler.internal:8786")
    assert file_runs.TASK_RUNNER_REGISTRY.find("dask")(IngestRunConfig(task_runner="dask")).address == (
        "tcp://scheduler.internal:8786"
    )
    monkeypatch.delenv(file_runs.DASK_ADDRESS)
    assert file_runs.TASK_RUNNER_REGISTRY.find("dask")(IngestRunConfig(task_runner="dask")).address is None
