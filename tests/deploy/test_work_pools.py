"""The committed work-pool job templates, rendered by Prefect's own workers' job configurations.

The process template must be one Prefect's process worker accepts; the Kubernetes GPU
template must render, for the job variables a GPU run sends (gpu_count, image), a Job the
Kubernetes API accepts field for field, asking for those GPUs.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from pathlib import Path

import pytest
import yaml

from tests.k8s_models import dropped_fields, round_trip

POOLS = Path(__file__).resolve().parents[2] / "deploy" / "work-pools"
PREFECT_YAML = yaml.safe_load((POOLS.parent / "prefect.yaml").read_text())


def _template(name: str) -> dict:
    return json.loads((POOLS / name).read_text())


def test_the_process_template_is_one_the_process_worker_renders():
    from prefect.workers.process import ProcessJobConfiguration, ProcessWorker

    template = _template("process.json")
    assert set(template["variables"]["properties"]) == set(
        ProcessWorker.get_default_base_job_template()["variables"]["properties"]
    )
    config = asyncio.run(
        ProcessJobConfiguration.from_template_and_values(template, {"env": {"KERASFLOW_ROOT": "s3://bucket/kerasflow"}})
    )
    config.prepare_for_flow_run(_flow_run())
    assert config.env["KERASFLOW_ROOT"] == "s3://bucket/kerasflow"


def _gpu_job(values: dict) -> dict:
    k8s_worker = pytest.importorskip("prefect_kubernetes.worker", reason="the dev extra installs prefect-kubernetes")
    config = asyncio.run(
        k8s_worker.KubernetesWorkerJobConfiguration.from_template_and_values(_template("kubernetes-gpu.json"), values)
    )
    config.prepare_for_flow_run(_flow_run())  # what the worker does before it creates the Job
    return config.job_manifest


def _flow_run():
    from prefect.client.schemas.objects import FlowRun

    return FlowRun(id=uuid.uuid4(), flow_id=uuid.uuid4(), name="digits-3f2a9c1b7d4e")


@pytest.mark.parametrize("gpus", [1, 4])
def test_the_gpu_template_renders_a_kubernetes_job_that_requests_the_gpus(gpus):
    pytest.importorskip("kubernetes")
    image = "ghcr.io/acme/kerasflow:0.1.0-gpu"
    job = _gpu_job({"gpu_count": gpus, "image": image, "env": {"KERASFLOW_ROOT": "s3://bucket/kerasflow"}})
    resources = job["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == gpus
    # A quantity is int-or-string in the API (`nvidia.com/gpu: 4` in YAML is a JSON number);
    # the Python client's model takes strings only, so compare in its terms.
    checked = copy.deepcopy(job)
    for kind in ("limits", "requests"):
        limits = checked["spec"]["template"]["spec"]["containers"][0]["resources"].get(kind) or {}
        limits.update({k: str(v) for k, v in limits.items() if v is not None})
    back = round_trip(checked, "V1Job")
    # prefect-kubernetes insists on these two in the pod spec (its own default template has
    # them); the API ignores them there. Anything else unknown is a misspelling.
    tolerated = {".spec.template.spec.completions", ".spec.template.spec.parallelism"}
    assert set(dropped_fields(checked, back)) == tolerated, "fields unknown to the Kubernetes API"
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == image
    assert {"name": "KERASFLOW_ROOT", "value": "s3://bucket/kerasflow"} in container["env"]
    # NCCL and tf.data need a real /dev/shm; GPU nodes are tainted.
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    assert pod["volumes"][0]["emptyDir"]["medium"] == "Memory"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    # Prefect retries and the training resumes: Kubernetes must not restart the pod itself.
    assert job["spec"]["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"


def test_the_job_variables_the_gpu_deployments_send_are_the_templates_variables():
    variables = set(_template("kubernetes-gpu.json")["variables"]["properties"])
    for deployment in PREFECT_YAML["deployments"]:
        train_on = deployment.get("parameters", {}).get("config", {}).get("runtime", {}).get("train_on")
        if train_on and train_on["deployment"].endswith("/gpu"):
            assert set(train_on["job_variables"]) <= variables, deployment["name"]
