"""deploy/prefect.yaml: what `prefect deploy --all` reads, checked with Prefect's own models.

The end-to-end test (tests/deploy/test_e2e.py) deploys it on a real server; these checks
are the fast half: every field is one Prefect knows, schedules are real crons in real time
zones, every retrain is one-at-a-time, and each config is the bundled recipe, valid for
the flow's own parameter schema.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prefect.cli.deploy._models import DeploymentConfig, PrefectYamlModel
from prefect.client.schemas.schedules import CronSchedule
from prefect.flows import load_flow_from_entrypoint

from kerasflow.flows.recipes import load_recipe, recipe_names
from kerasflow.tasks.config import ConfigError, TrainConfig, parse_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RAW = yaml.safe_load((DEPLOY / "prefect.yaml").read_text())
DEPLOYMENTS = {d["name"]: d for d in RAW["deployments"]}
RETRAINS = {name: d for name, d in DEPLOYMENTS.items() if d["entrypoint"] == "kerasflow.flows.train.train_flow"}


def test_prefect_reads_every_field_and_misses_none():
    model = PrefectYamlModel.model_validate(RAW)
    assert len(model.deployments) == len(RAW["deployments"]) == len(DEPLOYMENTS), "deployment names must be unique"
    known = set(DeploymentConfig.model_fields)
    for deployment in RAW["deployments"]:
        assert set(deployment) <= known, f"{deployment['name']}: fields Prefect ignores: {set(deployment) - known}"
    # Code comes with the worker's installed kerasflow, never pulled at run time.
    assert RAW["pull"] == []


def test_every_recipe_has_a_nightly_retrain_and_each_is_one_at_a_time():
    configured = {d["parameters"]["config"]["model"]["name"] for d in RETRAINS.values()}
    assert configured == {_bundled(name).model.name for name in recipe_names()}
    for name, deployment in RETRAINS.items():
        assert deployment["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}, name
        assert deployment["work_pool"]["name"] == "kerasflow-cpu", f"{name}: cheap steps stay on the CPU pool"


@pytest.mark.parametrize("name", sorted(d["name"] for d in RAW["deployments"] if d.get("schedules")))
def test_schedules_are_crons_in_real_time_zones(name):
    for schedule in DEPLOYMENTS[name]["schedules"]:
        assert set(schedule) == {"cron", "timezone"}, "every schedule names its time zone"
        CronSchedule(**schedule)  # Prefect's own model refuses a bad cron or an unknown zone


@pytest.mark.parametrize("recipe", recipe_names())
def test_each_deployed_config_is_the_bundled_recipe(recipe, monkeypatch):
    monkeypatch.setenv("KERASFLOW_ROOT", "s3://bucket/kerasflow")
    bundled = _bundled(recipe)
    [deployment] = [d for d in RETRAINS.values() if d["parameters"]["config"]["model"]["name"] == bundled.model.name]
    deployed = parse_config(deployment["parameters"]["config"], source=deployment["name"])
    # The GPU recipes differ only by sending their train step to the GPU pool; the fraud
    # recipe's table URL is required and has no bundled value.
    overrides = {"runtime": {"train_on": None}, "data": {"url": None}}
    assert _without(deployed, overrides) == _without(bundled, overrides)


def test_the_gpu_variant_trains_on_the_gpu_pool_through_the_train_step_deployment():
    step = DEPLOYMENTS["gpu"]
    assert step["entrypoint"] == "kerasflow.flows.train_step.train_step_flow"
    assert step["work_pool"]["name"] == "kerasflow-gpu" and "schedules" not in step
    gpu_retrains = [d for d in RETRAINS.values() if "gpu" in d["tags"]]
    assert gpu_retrains
    for deployment in gpu_retrains:
        train_on = deployment["parameters"]["config"]["runtime"]["train_on"]
        assert train_on["deployment"] == "kerasflow-train-step/gpu"
        assert train_on["job_variables"]["gpu_count"] >= 1 and train_on["job_variables"]["image"]


def test_parameters_fit_the_flows_own_schema():
    """What `prefect deploy` sends is what the flow accepts: Prefect validates it the same way."""
    for deployment in (d for d in RAW["deployments"] if d.get("parameters")):
        flow = load_flow_from_entrypoint(deployment["entrypoint"])
        flow.validate_parameters(_filled(deployment.get("parameters", {})))


def test_an_unfilled_storage_root_template_fails_at_once_naming_the_variable():
    with pytest.raises(ConfigError, match="set KERASFLOW_ROOT before `prefect deploy`"):
        parse_config({"storage": {"root": "{{ $KERASFLOW_ROOT }}"}})


def test_job_variables_never_carry_secrets_into_the_recorded_config():
    train_on = {"deployment": "kerasflow-train-step/gpu", "job_variables": {"env": {"AWS_SECRET_ACCESS_KEY": "x"}}}
    with pytest.raises(ConfigError, match=r"env\.AWS_SECRET_ACCESS_KEY.*not to the recipe"):
        parse_config({"runtime": {"train_on": train_on}})


def _bundled(recipe: str) -> TrainConfig:
    # The recipes on a team's files (fraud_tabular, tabular_regression) have no table until
    # one is named; any URL makes them loadable.
    from kerasflow.flows.recipes import resolve

    data = yaml.safe_load(resolve(recipe).read_text()).get("data", {})
    needs_url = data.get("source") == "files" and not data.get("url")
    return load_recipe(recipe, ["data.url=s3://bucket/table/"] if needs_url else [])


def _filled(parameters: dict) -> dict:
    config = parameters.get("config")
    if config is None:
        return parameters
    return {**parameters, "config": {**config, "storage": {"root": "s3://bucket/kerasflow"}}}


def _without(config: TrainConfig, overrides: dict) -> dict:
    dumped = config.model_dump(mode="json")
    for section, fields in overrides.items():
        for field, value in fields.items():
            dumped[section][field] = value
    return dumped
