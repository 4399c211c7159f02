"""`kerasflow serve`: the flows' parameters survive Prefect's serve, and a served schedule retrains."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys

import cloudpickle
import pytest


@pytest.mark.parametrize(
    ("flow_path", "parameters"),
    [
        ("kerasflow.flows.train:train_flow", {"config": {}}),
        ("kerasflow.flows.train_step:train_step_flow", {"config": {}, "dataset": "a ref", "run_id": "r1"}),
        ("kerasflow.flows.predict:predict_flow", {"model": "digits", "data": {"source": "files", "url": "a.csv"}}),
    ],
)
def test_a_served_flow_still_validates_its_parameters(flow_path, parameters):
    """Prefect's runner pickles a served flow's function by value, keeping only the globals its code names.

    Parameter types written as strings (``from __future__ import annotations``) then cannot be
    resolved in the run's process: "Train_FlowModel is not fully defined; you should define TrainConfig".
    """
    import importlib

    from kerasflow.tasks.config import DataConfig, TrainConfig
    from kerasflow.tasks.refs import DatasetRef

    module, name = flow_path.split(":")
    restored = cloudpickle.loads(cloudpickle.dumps(getattr(importlib.import_module(module), name)))
    if "dataset" in parameters:
        parameters = {**parameters, "dataset": _a_dataset_ref()}
    validated = restored.validate_parameters(parameters)
    expected = {"config": TrainConfig, "data": DataConfig, "dataset": DatasetRef}
    assert all(isinstance(validated[key], kind) for key, kind in expected.items() if key in parameters)


def _a_dataset_ref() -> dict:
    return {
        "fingerprint": "f" * 16,
        "storage_root": "/tmp/root",
        "uri": "/tmp/root/datasets/" + "f" * 16,
        "builder_path": "attempt-1/digits/1.0.0",
        "num_bytes": 1,
        "source": "sample",
        "splits": {"train": 1},
        "feature_key": "image",
        "label_key": "label",
        "feature_shape": [8, 8, 1],
        "feature_dtype": "float32",
        "num_classes": 2,
        "class_names": ["a", "b"],
    }


@pytest.mark.parametrize(
    ("cron", "timezone", "message"),
    [
        ("61 * * * *", "UTC", "received --cron '61 * * * *' --timezone 'UTC': "),
        ("0 2 * *", "UTC", "expected five cron fields such as '0 2 * * *'"),
        ("* * * * * *", "UTC", "6 fields; expected five cron fields"),  # croniter: every second
        ("0 2 * * *", "Mars/Olympus", 'Invalid timezone: "Mars/Olympus"'),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_cause(cron, timezone, message):
    from kerasflow.flows.serve import cron_schedule
    from kerasflow.tasks.config import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        cron_schedule(cron, timezone)
    assert cron_schedule("0 2 * * *").timezone == "UTC"


def test_two_recipes_of_one_model_are_refused():
    from kerasflow.flows.recipes import load_recipe
    from kerasflow.flows.serve import served_deployments
    from kerasflow.tasks.config import ConfigError

    with pytest.raises(ConfigError, match="received two recipes for model 'digits', expected one recipe per model"):
        served_deployments([load_recipe("digits"), load_recipe("digits")], cron="0 2 * * *")


def test_a_bundled_recipe_and_a_recipe_file_become_one_deployment_each(tmp_path):
    import yaml

    from kerasflow.flows.recipes import load_recipe, resolve
    from kerasflow.flows.serve import served_deployments

    recipe = yaml.safe_load(resolve("digits").read_text())
    recipe["model"]["name"] = "digits-wide"
    (tmp_path / "wide.yaml").write_text(yaml.safe_dump(recipe))
    configs = [load_recipe(r, ["training.epochs=7"]) for r in ("digits", str(tmp_path / "wide.yaml"))]
    deployments = served_deployments(configs, cron="30 1 * * *", timezone="Asia/Tokyo")
    assert [d.name for d in deployments] == ["digits", "digits-wide"]
    for deployment, config in zip(deployments, configs, strict=True):
        assert deployment.entrypoint == "kerasflow.flows.train.train_flow"
        assert deployment.parameters == {"config": config.model_dump(mode="json")}
        assert deployment.parameters["config"]["training"]["epochs"] == 7
        [schedule] = deployment.schedules
        assert (schedule.schedule.cron, schedule.schedule.timezone) == ("30 1 * * *", "Asia/Tokyo")
        assert deployment.concurrency_limit == 1 and deployment.concurrency_options.collision_strategy == "ENQUEUE"


def test_the_command_exits_2_on_a_bad_cron_and_without_a_server(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # no profile naming a server
    command = [sys.executable, "-m", "kerasflow.flows.cli", "serve"]
    bad = subprocess.run([*command, "--cron", "0 25 * * *"], capture_output=True, text=True, env=env, timeout=600)
    assert bad.returncode == 2 and "error: received --cron '0 25 * * *'" in bad.stderr, bad.stderr
    alone = subprocess.run([*command, "--cron", "0 2 * * *"], capture_output=True, text=True, env=env, timeout=600)
    assert alone.returncode == 2 and "needs a Prefect server" in alone.stderr, alone.stderr
    assert "Traceback" not in bad.stderr + alone.stderr


# Every wait below ends when its condition holds; this is only the ceiling for one that never does.
WAIT_SECONDS = float(os.environ.get("KERASFLOW_TEST_WAIT_SECONDS", "600"))


def _descendants(pid: int) -> set[int]:
    """Every live process under ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(condition, what: str, log):
    import time

    deadline = time.monotonic() + WAIT_SECONDS
    while not (found := condition()):
        assert time.monotonic() < deadline, f"{what} not within {WAIT_SECONDS:.0f} s:\n{log.read_text()[-5000:]}"
        time.sleep(0.5)
    return found


def _serve(args, *, env, log):
    command = [sys.executable, "-m", "kerasflow.flows.cli", "serve", *args]
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stopped(process, sig, log) -> int:
    """Send ``sig`` and wait for exit; the processes under it must be gone too."""
    import signal

    under = _descendants(process.pid)
    process.send_signal(sig)
    try:
        code = process.wait(timeout=WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError(f"kerasflow serve ignored {sig!r}:\n{log.read_text()[-5000:]}") from None
    _wait_for(lambda: not any(_alive(pid) for pid in under), f"the processes under serve ({under}) ending", log)
    return code


@pytest.mark.usefixtures("prefect_server")
def test_serve_registers_a_schedule_runs_a_retraining_and_stops_cleanly(root, tmp_path):
    """`kerasflow serve` as a team runs it on its one box, against a real Prefect server.

    The served deployment holds the cron in its time zone and one run at a time; a run of it
    (started as the schedule would, through the API) retrains and promotes; SIGTERM during a
    second run cancels that run and stops serving with exit 0, leaving no process behind
    and the deployment paused; served again, it resumes, and Ctrl-C (SIGINT) stops it.
    """
    import signal

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from kerasflow.models.registry import ModelRegistry
    from tests.flows.helpers import THREE_EPOCHS

    log = tmp_path / "serve.log"
    # Polled every second instead of Prefect's 10 s, so the test waits for the run, not the poll.
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    args = ["digits", "--cron", "0 2 * * *", "--timezone", "Europe/Berlin", *THREE_EPOCHS]
    served = _serve(args, env=env, log=log)
    with get_client(sync_client=True) as client:

        def deployment():
            try:
                return client.read_deployment_by_name("kerasflow-train/digits")
            except Exception:  # noqa: BLE001 - not registered yet
                assert served.poll() is None, log.read_text()[-5000:]
                return None

        served_one = _wait_for(deployment, "the served deployment", log)
        [schedule] = served_one.schedules
        assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.active) == (
            "0 2 * * *",
            "Europe/Berlin",
            True,
        )
        assert served_one.global_concurrency_limit.limit == 1
        assert served_one.concurrency_options.collision_strategy == "ENQUEUE"
        assert served_one.entrypoint == "kerasflow.flows.train.train_flow"
        assert served_one.parameters["config"]["training"]["epochs"] == 3  # --set reached the deployment

        def final(run_id):
            run = client.read_flow_run(run_id)
            return run if run.state.is_final() else None

        first = client.create_flow_run_from_deployment(served_one.id)
        first = _wait_for(lambda: final(first.id), "the served run finishing", log)
        assert first.state.is_completed(), f"{first.state}:\n{log.read_text()[-5000:]}"
        registry = ModelRegistry(str(root / "registry"))
        assert registry.alias_target("digits", "production") == 1
        assert registry.get("digits", 1)["flow_run_id"] == str(first.id)

        # Long enough to be training when serving stops, however fast the machine: with the
        # served 3 epochs, a quick run had registered v2 before the cancel reached it.
        long_run = copy.deepcopy(served_one.parameters["config"])
        long_run["training"]["epochs"] = 1000
        second = client.create_flow_run_from_deployment(served_one.id, parameters={"force": True, "config": long_run})
        _wait_for(lambda: client.read_flow_run(second.id).state.is_running(), "the second run starting", log)
        assert _stopped(served, signal.SIGTERM, log) == 0, log.read_text()[-5000:]
        assert "stopped serving" in log.read_text()
        second = _wait_for(lambda: final(second.id), "the second run ending", log)
        assert second.state.is_cancelled(), second.state
        assert client.read_deployment_by_name("kerasflow-train/digits").paused, "no runs pile up while unserved"

        again = _serve(args, env=env, log=log)
        _wait_for(
            lambda: not client.read_deployment_by_name("kerasflow-train/digits").paused,
            "the deployment resumed",
            log,
        )
        assert _stopped(again, signal.SIGINT, log) == 0, log.read_text()[-5000:]
    assert [m["version"] for m in registry.versions("digits")] == [1], "the cancelled run registered nothing"


@pytest.mark.usefixtures("prefect_server")
@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("moment", ["registered", "runner_starting"])
def test_a_stop_before_the_runner_takes_over_still_pauses_the_deployments(monkeypatch, signal_name, moment):
    """The race the end-to-end test above can hit: the signal lands after the deployment is
    registered (and so resumed) but before Prefect's runner installs its handlers. The real
    signal is raised at exactly that moment; serving stops without an error, deployment paused.
    """
    import signal

    from prefect.client.orchestration import get_client
    from prefect.runner import Runner

    from kerasflow.flows.recipes import load_recipe
    from kerasflow.flows.serve import serve, served_deployments

    name = f"early-{signal_name.lower()}-{moment.replace('_', '-')}"
    [deployment] = served_deployments([load_recipe("digits", [f"model.name={name}"])], cron="0 2 * * *")
    sig = getattr(signal, signal_name)
    if moment == "registered":
        register = Runner.add_deployment

        def registered_then_signalled(self, *args, **kwargs):
            found = register(self, *args, **kwargs)
            signal.raise_signal(sig)
            return found

        monkeypatch.setattr(Runner, "add_deployment", registered_then_signalled)
    else:

        async def signalled_while_starting(self, *args, **kwargs):
            signal.raise_signal(sig)

        monkeypatch.setattr(Runner, "start", signalled_while_starting)
    before = signal.getsignal(signal.SIGTERM)

    serve([deployment])

    assert signal.getsignal(signal.SIGTERM) is before, "serve leaves the process's SIGTERM handler as it found it"
    with get_client(sync_client=True) as client:
        served = client.read_deployment_by_name(f"kerasflow-train/{name}")
    assert served.paused, "no runs pile up while unserved"
