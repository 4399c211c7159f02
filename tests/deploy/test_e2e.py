"""End to end, as an operator runs it: a real Prefect server, deploy/, a worker, the UI.

A ``prefect server start`` on 127.0.0.1 on PostgreSQL, as docs/operations.md tells teams
to run it: a throwaway cluster of its own (tests/deploy/postgres.py; skipped without
PostgreSQL's binaries unless ``KERASFLOW_E2E_POSTGRES=required``; SQLite stays covered by
the test harness and the embedded server's tests), in a temporary home; the two work
pools created from deploy/work-pools/; every deployment of deploy/prefect.yaml created
by ``prefect deploy --all``; a process worker of the CPU pool.
The digits deployment is triggered with its train step sent to the train-step
deployment (the GPU variant's path: ``run_deployment`` with job variables), and waited for.
The run is then read back through the Prefect client (task runs, the train-step subflow,
artifacts, logs, events, the registry) and opened in headless Chromium, whose
screenshots go to ``$KERASFLOW_SCREENSHOTS`` (docs/ when regenerating them) or a
temporary folder. Everything started here is stopped here.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from kerasflow.flows.cli.embedded_server import DEFAULT_STARTUP_SECONDS, STARTUP_SECONDS, seconds_setting
from kerasflow.flows.recipes import load_recipe
from kerasflow.models.registry import ModelRegistry
from tests.deploy.browser import Browser, chromium_path
from tests.deploy.postgres import postgres_or_skip, throwaway_postgres
from tests.deploy.processes import ROOT, free_port, started

pytestmark = pytest.mark.e2e

PREFECT = [sys.executable, "-m", "prefect"]
STEPS = {"ingest", "validate", "check-drift", "train", "evaluate", "gate", "register", "promote"}
JOB_VARIABLES = {"env": {"KERASFLOW_E2E_POOL": "train-step"}}


def _run(command: list[str], *, env: dict) -> str:
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{' '.join(command[2:])} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _wait_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    """Poll the health check until it answers, up to ``KERASFLOW_SERVER_STARTUP_SECONDS``."""
    timeout = seconds_setting(STARTUP_SECONDS, DEFAULT_STARTUP_SECONDS)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"prefect server exited:\n{log.read_text()[-3000:]}"
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.5)
    raise TimeoutError(
        f"prefect server not healthy after {timeout:.0f} s (raise {STARTUP_SECONDS}):\n{log.read_text()[-3000:]}"
    )


@pytest.fixture(scope="module")
def deployed_run(tmp_path_factory):
    """Server, pools, deployments, worker; one digits run triggered and finished. Yields what the tests read."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    postgres = postgres_or_skip()
    home = tmp_path_factory.mktemp("e2e")
    port = free_port()
    ui_url, api_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/api"
    storage_root = home / "root"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "KERASFLOW_", "AWS_"))}
    env |= {
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "true",
        # The nightly schedules are deployed and checked, but must not fire a run mid-test.
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        # The worker looks for runs every 2 s, not 10: each run of the scenario starts sooner.
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "KERASFLOW_ROOT": str(storage_root),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    server_log, worker_log = home / "server.log", home / "worker.log"
    server_command = [*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with (
        throwaway_postgres(postgres, log=home / "postgres.log") as database_url,
        # The setting docker-compose.yml and docs/operations.md give the server (the
        # older PREFECT_API_DATABASE_CONNECTION_URL is an alias of it); only the server reads it.
        started(
            server_command, env=env | {"PREFECT_SERVER_DATABASE_CONNECTION_URL": database_url}, log=server_log
        ) as server,
    ):
        _wait_healthy(api_url, server, server_log)
        for pool, kind, template in (
            ("kerasflow-cpu", "process", "process.json"),
            ("kerasflow-gpu", "kubernetes", "kubernetes-gpu.json"),
        ):
            base = f"deploy/work-pools/{template}"
            _run([*PREFECT, "work-pool", "create", pool, "--type", kind, "--base-job-template", base], env=env)
        deploy_output = _run(
            [*PREFECT, "--no-prompt", "deploy", "--all", "--prefect-file", "deploy/prefect.yaml"], env=env
        )
        worker_command = [*PREFECT, "worker", "start", "--pool", "kerasflow-cpu", "--type", "process"]
        with (
            started(worker_command, env=env, log=worker_log),
            temporary_settings({PREFECT_API_URL: api_url}),
            get_client(sync_client=True) as client,
        ):
            deployment = client.read_deployment_by_name("kerasflow-train/digits-nightly")
            config = load_recipe(
                "digits",  # three epochs: the gate's bounds are those of a short run, not the quickstart's
                ["training.epochs=3", "gate.value.accuracy.min=0.5", "gate.per_class={}"],
            ).model_dump(mode="json", exclude={"storage"})
            config["runtime"]["train_on"] = {
                "deployment": "kerasflow-train-step/cpu",
                "job_variables": JOB_VARIABLES,
            }
            flow_run = client.create_flow_run_from_deployment(deployment.id, parameters={"config": config})
            deadline = time.monotonic() + 300
            while not (flow_run := client.read_flow_run(flow_run.id)).state.is_running():
                assert not flow_run.state.is_final(), f"{flow_run.state}:\n{worker_log.read_text()[-8000:]}"
                assert time.monotonic() < deadline, f"run not started in 300 s:\n{worker_log.read_text()[-5000:]}"
                time.sleep(0.5)
            # A second run of the same deployment and recipe while the first runs, as a schedule
            # firing then would start it: the deployment's concurrency limit must hold it until
            # the first ends (unheld, it would train beside the first); then the data and the
            # training definition are those of production, so it skips.
            queued = client.create_flow_run_from_deployment(deployment.id, parameters={"config": config})
            for run in (flow_run, queued):
                while not (run := client.read_flow_run(run.id)).state.is_final():
                    assert time.monotonic() < deadline, f"runs not finished in 300 s:\n{worker_log.read_text()[-5000:]}"
                    time.sleep(1)
                assert run.state.is_completed(), f"{run.state}:\n{worker_log.read_text()[-8000:]}"
            flow_run, queued = client.read_flow_run(flow_run.id), client.read_flow_run(queued.id)
            yield {
                "client": client,
                "flow_run": flow_run,
                "queued": queued,
                "deployment": deployment,
                "root": storage_root,
                "ui_url": ui_url,
                "api_url": api_url,
                "deploy_output": deploy_output,
                "home": home,
            }


def test_a_deployed_retraining_runs_on_a_worker_and_reads_like_the_pipeline_in_api_and_ui(deployed_run):
    """One scenario, so that a scheduler handing tests to idle processes starts one server for it."""
    _check_the_run_through_the_api(deployed_run)
    _check_the_second_run_waited_then_skipped(deployed_run)
    _check_the_ui(deployed_run)


def test_approval_under_a_deployment_frees_the_worker_and_promotes_without_training_again(deployed_run):
    """``gate.approval: manual`` suspends the run: its process ends; answered, it resumes and promotes."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
    from prefect.flow_runs import resume_flow_run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    client, deployment = deployed_run["client"], deployed_run["deployment"]
    # A model of its own (no production yet) and one epoch: the gate is not what is tested here.
    overrides = ["model.name=digits-reviewed", "training.epochs=1", "gate.value.accuracy.min=0.2", "gate.per_class={}"]
    approval = ["gate.approval=manual", "gate.approval_timeout_seconds=600"]
    config = load_recipe("digits", [*overrides, *approval]).model_dump(mode="json", exclude={"storage"})
    run = client.create_flow_run_from_deployment(deployment.id, parameters={"config": config})
    worker_log = deployed_run["home"] / "worker.log"

    _wait_for(client, run.id, lambda state: state.is_running(), worker_log, what="running")
    assert _processes_of(run.id), "no process found running the flow run: the check below would prove nothing"
    run = _wait_for(client, run.id, lambda state: state.is_paused(), worker_log, what="suspended for approval")
    assert run.state.name == "Suspended", run.state
    # Nothing runs it while a person decides: its flow-run process (and its supervisor) exits.
    # How soon depends on the machine's load (TensorFlow's teardown, Prefect's log drain):
    # waited for as long as any state of the run, and described if it never happens.
    deadline = time.monotonic() + 300
    while pids := _processes_of(run.id):
        assert time.monotonic() < deadline, f"still running the suspended flow run: {_describe(pids)}"
        time.sleep(0.5)
    registry = ModelRegistry(str(deployed_run["root"] / "registry"))
    assert registry.get("digits-reviewed", 1)["status"] == "registered"
    assert registry.alias_target("digits-reviewed", "production") is None

    with temporary_settings({PREFECT_API_URL: deployed_run["api_url"]}):
        resume_flow_run(run.id, run_input={"approve": True, "reviewer": "ana", "comment": "curves look right"})
    run = _wait_for(client, run.id, lambda state: state.is_final(), worker_log, what="resumed and finished")
    assert run.state.is_completed(), f"{run.state}:\n{worker_log.read_text()[-8000:]}"

    assert registry.alias_target("digits-reviewed", "production") == 1
    assert registry.get("digits-reviewed", 1)["review"]["reviewer"] == "ana"
    states = [state.name for state in client.read_flow_run_states(run.id)]
    assert states.index("Suspended") < states.index("Resuming") < len(states) - 1, states
    # Resumed from the candidate it recorded: each step before approval ran once, in the first
    # process; the second process ran promotion alone.
    task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
    this_run = LogFilterFlowRunId(any_=[run.id])
    steps = sorted(t.name.rsplit("-", 1)[0] for t in task_runs)
    assert steps == sorted(STEPS), steps
    # The second process's logs reach the server shortly after its run ends.
    resumed, deadline = "resumed: digits-reviewed v1 awaits its approval", time.monotonic() + 30
    while resumed not in (logs := [e.message for e in client.read_logs(log_filter=LogFilter(flow_run_id=this_run))]):
        assert time.monotonic() < deadline, f"no {resumed!r} in the run's logs: {logs}"
        time.sleep(0.5)
    assert [m.split(" (")[0] for m in logs if m.startswith("epoch ")] == ["epoch 1/1"]
    fingerprint = registry.get("digits-reviewed", 1)["dataset"]["fingerprint"]
    assert run.name == f"digits-reviewed-{fingerprint[:12]}"


def _wait_for(client, flow_run_id, reached, log: Path, *, what: str):
    deadline = time.monotonic() + 300
    while not reached((run := client.read_flow_run(flow_run_id)).state):
        assert not run.state.is_final(), f"{run.state} before {what}:\n{log.read_text()[-8000:]}"
        assert time.monotonic() < deadline, f"run not {what} in 300 s:\n{log.read_text()[-5000:]}"
        time.sleep(0.5)
    return run


def _describe(pids: list[int]) -> str:
    """Each process's command line, state and where it waits: what a hang looks like."""
    described = []
    for pid in pids:
        with contextlib.suppress(OSError):
            proc = Path(f"/proc/{pid}")
            command = proc.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next(line for line in proc.joinpath("status").read_text().splitlines() if line.startswith("State"))
            described.append(f"{pid} [{state}, waiting in {proc.joinpath('wchan').read_text()}]: {command[:300]}")
    return "; ".join(described) or f"{pids} (gone while described)"


def _processes_of(flow_run_id) -> list[int]:
    """The processes on this machine whose environment names ``flow_run_id`` (as a worker's runs do)."""
    marker = f"PREFECT__FLOW_RUN_ID={flow_run_id}".encode()
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if marker in environ.read_bytes().split(b"\0"):
                pids.append(int(environ.parent.name))
    return pids


def _check_the_run_through_the_api(deployed_run) -> None:
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterParentFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    client, flow_run, deployment = deployed_run["client"], deployed_run["flow_run"], deployed_run["deployment"]
    for name in ("digits-nightly", "cifar10-cnn-gpu-nightly", "gpu", "cpu", "digits-scoring-nightly"):
        assert f"/{name}' successfully created" in deployed_run["deploy_output"].replace("\n", "").replace("│", "")

    # The deployment as the server holds it: a cron in a time zone, one run at a time.
    [schedule] = deployment.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 1 * * *", "Europe/Berlin")
    assert deployment.global_concurrency_limit.limit == 1
    assert deployment.concurrency_options.collision_strategy == "ENQUEUE"

    # The registry: version 1 promoted, with its figures.
    registry = ModelRegistry(str(deployed_run["root"] / "registry"))
    assert registry.alias_target("digits", "production") == 1
    metadata = registry.get("digits", 1)
    assert set(metadata["files"]) == {"plots/learning_curves.png", "plots/confusion_matrix.png"}
    assert metadata["flow_run_id"] == str(flow_run.id)

    # The run, named after its model and data, with a task run per step.
    fingerprint = metadata["dataset"]["fingerprint"]
    assert flow_run.name == f"digits-{fingerprint[:12]}"
    this_run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
    task_runs = client.read_task_runs(flow_run_filter=this_run)
    # Training ran as its own flow run of the train-step deployment, with the job variables
    # sent; Prefect links it to the parent through a placeholder task run of its own.
    [step] = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run.id]))
    )
    steps = {t.name.rsplit("-", 1)[0]: t for t in task_runs if t.id != step.parent_task_run_id}
    assert set(steps) == STEPS and len(task_runs) == len(STEPS) + 1
    assert all(t.state.is_completed() for t in steps.values())
    assert step.state.is_completed() and step.name == "digits-train-step"
    assert client.read_deployment(step.deployment_id).name == "cpu"
    assert step.job_variables == JOB_VARIABLES
    step_filter = FlowRunFilter(id=FlowRunFilterId(any_=[step.id]))
    assert [t.name.rsplit("-", 1)[0] for t in client.read_task_runs(flow_run_filter=step_filter)] == ["train"]

    # Artifacts: progress where training ran; reports, figures and the version link on the run.
    artifacts = {a.key: a for a in client.read_artifacts(flow_run_filter=this_run)}
    assert {
        "dataset-statistics",
        "validation-report",
        "evaluation",
        "gate-report",
        "gate-summary",
        "registered-version",
    } <= set(artifacts)
    assert artifacts["training-plots"].data.count("data:image/png;base64,") == 2
    [progress] = [a for a in client.read_artifacts(flow_run_filter=step_filter) if a.key == "training-progress"]
    assert progress.data == 100.0

    # Per-epoch metric lines in the train step's logs.
    logs = [
        entry.message
        for entry in client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[step.id])))
    ]
    assert [m.split(" (")[0] for m in logs if m.startswith("epoch ")] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]

    # The promotion event, about the model, tied to the run (stored by the server asynchronously).
    promoted = EventFilter(
        event=EventNameFilter(name=["kerasflow.model.promoted"]),
        resource=EventResourceFilter(id=["kerasflow.model.digits"]),
    )
    deadline = time.monotonic() + 30
    while not (events := client.read_events(filter=promoted, limit=50).events) and time.monotonic() < deadline:
        time.sleep(0.5)
    [event] = events
    assert event.payload["version"] == 1 and event.payload["fingerprint"] == fingerprint
    assert f"prefect.flow-run.{flow_run.id}" in {r.id for r in event.related}


def _check_the_second_run_waited_then_skipped(deployed_run) -> None:
    client, first, queued = deployed_run["client"], deployed_run["flow_run"], deployed_run["queued"]
    assert queued.start_time >= first.end_time, "two retrains of one model overlapped"
    assert "AwaitingConcurrencySlot" in {state.name for state in client.read_flow_run_states(queued.id)}
    # It trained nothing: the data is the data version 1 was trained on.
    assert queued.name == first.name
    assert [v["version"] for v in ModelRegistry(str(deployed_run["root"] / "registry")).versions("digits")] == [1]


def _check_the_ui(deployed_run) -> None:
    """Screenshots of the flow-run page (task graph, logs) and of the figures artifact."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    if chromium_path() is None:
        if os.environ.get("KERASFLOW_E2E_BROWSER") == "required":
            pytest.fail("KERASFLOW_E2E_BROWSER=required but no chromium on PATH: apt-get install chromium")
        pytest.skip("no chromium on PATH (apt-get install chromium): API checks passed, UI not screenshotted")
    shots = Path(os.environ.get("KERASFLOW_SCREENSHOTS") or deployed_run["home"] / "screenshots")
    client, flow_run, ui_url = deployed_run["client"], deployed_run["flow_run"], deployed_run["ui_url"]
    [plots] = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["training-plots"])))

    with Browser(deployed_run["home"] / "chromium-profile") as browser:
        browser.open(f"{ui_url}/runs/flow-run/{flow_run.id}")
        page_text = "document.body && document.body.innerText"
        browser.wait_for(
            f"{page_text}.includes({flow_run.name!r}) && {page_text}.includes('Completed') "
            f"&& {page_text}.includes('{len(STEPS)} Task runs')",
            what="the run's name, state and task count",
        )
        # The task graph is drawn on a canvas once the run's graph data has arrived.
        browser.wait_for(
            "Array.from(document.querySelectorAll('canvas')).some(c => c.width > 600 && c.height > 200)",
            what="the task graph",
        )
        time.sleep(2)  # the graph eases its nodes into place
        run_page = browser.screenshot(shots / "ui-flow-run.png")

        browser.open(f"{ui_url}/artifacts/artifact/{plots.id}")
        browser.wait_for(
            "document.images.length >= 2 && Array.from(document.images)"
            ".filter(i => i.src.startsWith('data:image/png')).every(i => i.complete && i.naturalWidth > 300)",
            what="the learning curves and the confusion matrix",
        )
        figures_page = browser.screenshot(shots / "ui-training-plots.png")

        # The "Custom run" form is built from the flow's pydantic parameter and opens with
        # the deployment's recipe filled in.
        browser.open(f"{ui_url}/deployments/deployment/{deployed_run['deployment'].id}/run")
        browser.wait_for(
            f"{page_text}.includes('Parameters') && {page_text}.includes('Epochs')"
            " && Array.from(document.querySelectorAll('input')).some(i => i.value === '40')",
            what="the config form with the recipe's 40 epochs",
        )
        time.sleep(1.5)  # the page fades in
        form_page = browser.screenshot(shots / "ui-custom-run.png")

    for shot in (run_page, figures_page, form_page):
        assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 30_000
