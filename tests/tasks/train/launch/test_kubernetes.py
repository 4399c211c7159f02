"""The kubernetes launcher's manifests, checked against the official client's API models.

No cluster is needed: each rendered document goes through the client's V1Service or V1Job
model and back (tests/k8s_models.py); a misspelt field fails.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from kerasflow.tasks.config import ConfigError, parse_config
from kerasflow.tasks.train.cluster import INDEX_ENV, WORKERS_ENV, tf_config_from_index
from kerasflow.tasks.train.launch.kubernetes import manifests_yaml, render_manifests, resource_name
from tests.k8s_models import dropped_fields, round_trip

kubernetes = pytest.importorskip("kubernetes", reason="the dev extra installs the official kubernetes client")

RUN_ID = "0b9d5c1e-3f0a-4c55-9a0e-6f1a2b3c4d5e"
JOB_URL = f"s3://bucket/kerasflow/runs/{RUN_ID}/job.json"
IMAGE = "ghcr.io/acme/kerasflow:0.1.0-gpu"
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _config(*, workers: int = 2, gpus: int = 0, image: str | None = IMAGE, model: str = "digits", **launcher: Any):
    return parse_config(
        {
            "model": {"name": model},
            "runtime": {
                "launcher": {"kind": "kubernetes", "workers": workers, "gpus_per_worker": gpus, "image": image}
                | launcher
            },
            "storage": {"root": "s3://bucket/kerasflow"},
        }
    )


def _render(config=None, **kwargs: Any) -> tuple[dict, dict]:
    service, job = render_manifests(config or _config(), job_url=JOB_URL, run_id=RUN_ID, **kwargs)
    return service, job


def _container(job: dict) -> dict:
    return job["spec"]["template"]["spec"]["containers"][0]


def _env(job: dict) -> dict[str, str]:
    return {item["name"]: item["value"] for item in _container(job).get("env", [])}


CASES = pytest.mark.parametrize(
    ("workers", "gpus"), [(2, 0), (2, 1), (3, 0), (3, 4)], ids=["2cpu", "2x1gpu", "3cpu", "3x4gpu"]
)


@CASES
def test_manifests_are_kubernetes_objects_without_unknown_fields(workers, gpus):
    service, job = _render(_config(workers=workers, gpus=gpus))
    for doc, kind in ((service, "V1Service"), (job, "V1Job")):
        back = round_trip(doc, kind)
        assert dropped_fields(doc, back) == [], f"{kind} fields unknown to the Kubernetes API"
        assert back == doc


def test_the_schema_check_catches_a_misspelt_field():
    _, job = _render()
    job["spec"]["backoffLimt"] = 0
    _container(job)["resources"]["limts"] = {"cpu": "1"}
    assert set(dropped_fields(job, round_trip(job, "V1Job"))) == {
        ".spec.backoffLimt",
        ".spec.template.spec.containers[0].resources.limts",
    }


@CASES
def test_the_job_is_indexed_with_one_pod_per_worker_behind_a_headless_service(workers, gpus):
    service, job = _render(_config(workers=workers, gpus=gpus))
    assert (service["kind"], job["kind"]) == ("Service", "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == workers
    assert spec["backoffLimit"] == 0
    assert spec["ttlSecondsAfterFinished"] > 0
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["subdomain"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    labels = spec["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert labels["app.kubernetes.io/name"] == "kerasflow"
    assert labels["kerasflow/run"] == RUN_ID
    assert service["metadata"]["namespace"] == job["metadata"]["namespace"] == "default"
    container = _container(job)
    assert container["image"] == IMAGE
    assert container["command"] == ["python3", "-m", "kerasflow.tasks.train.launch.worker", JOB_URL]
    assert container["ports"] == [{"name": "collective", "containerPort": 12345}]


@CASES
def test_each_pod_finds_itself_in_the_workers_list_by_its_index(workers, gpus):
    _, job = _render(_config(workers=workers, gpus=gpus, namespace="ml", port=23456))
    name, subdomain = job["metadata"]["name"], job["spec"]["template"]["spec"]["subdomain"]
    listed = _env(job)[WORKERS_ENV].split(",")
    assert listed == [f"{name}-{i}.{subdomain}.ml.svc.cluster.local:23456" for i in range(workers)]
    for index in range(workers):
        spec = json.loads(tf_config_from_index({WORKERS_ENV: _env(job)[WORKERS_ENV], INDEX_ENV: str(index)}))
        assert spec["task"] == {"type": "worker", "index": index}
        assert spec["cluster"]["worker"] == listed


@CASES
def test_gpus_are_requested_only_when_asked_for(workers, gpus):
    _, job = _render(_config(workers=workers, gpus=gpus))
    resources = _container(job)["resources"]
    for side in ("requests", "limits"):
        assert resources[side]["cpu"] == "2"
        assert resources[side]["memory"] == "8Gi"
        assert resources[side].get("nvidia.com/gpu") == (str(gpus) if gpus else None)
    tolerations = job["spec"]["template"]["spec"].get("tolerations", [])
    assert any(t["key"] == "nvidia.com/gpu" for t in tolerations) == (gpus > 0)


def test_storage_credentials_come_from_the_secret_and_never_appear_in_the_manifest(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID0000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-example-secret-value")
    manifests = render_manifests(_config(), job_url=JOB_URL, run_id=RUN_ID, secret_name="team-s3")
    text = manifests_yaml(manifests)
    assert "wJalrXUtnFEMI-example-secret-value" not in text
    assert "AKIAEXAMPLEKEYID0000" not in text
    container = _container(manifests[1])
    assert container["envFrom"] == [{"secretRef": {"name": "team-s3"}}]
    assert not any(name.startswith("AWS_") for name in _env(manifests[1]))


def test_without_a_secret_the_pods_take_credentials_from_their_service_account():
    _, job = _render(_config(service_account="kerasflow-trainer"), secret_name=None)
    assert "envFrom" not in _container(job)
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "kerasflow-trainer"
    assert dropped_fields(job, round_trip(job, "V1Job")) == []


@pytest.mark.parametrize("model", ["digits", "3d.scan_v2", "x" * 64, "a-" * 30 + "b.c"])
def test_names_are_dns_labels_even_for_long_model_names(model):
    service, job = _render(_config(model=model, workers=1024))
    name = job["metadata"]["name"]
    assert service["metadata"]["name"] == name
    assert DNS_1035_LABEL.fullmatch(name) and len(name) <= 63
    # The last pod's hostname, <job>-<index>, must be a DNS label too.
    assert len(f"{name}-1023") <= 63
    assert _env(job)[WORKERS_ENV].split(",")[-1].startswith(f"{name}-1023.{name}.")


def test_names_differ_between_runs_and_keep_a_uuid_recognisable():
    assert resource_name("digits", RUN_ID) == "train-digits-0b9d5c1e"
    assert resource_name("digits", "nightly-1") != resource_name("digits", "nightly-2")
    assert DNS_1035_LABEL.fullmatch(resource_name("digits", "Nightly_Run.7"))


def test_one_worker_is_a_valid_job():
    _, job = _render(_config(workers=1))
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 1
    assert len(_env(job)[WORKERS_ENV].split(",")) == 1


def test_a_launcher_without_an_image_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match=r"received runtime\.launcher\.image=None, expected the container image"):
        _render(_config(image=None))
    with pytest.raises(ConfigError, match=r"deploy/Dockerfile"):
        _render(_config(image=None))


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"job_url": "job.json"}, r"received job_url='job.json', expected the URL"),
        ({"job_url": "s3://b/job.json?X-Amz-Signature=abc"}, r"credential"),
        ({"run_id": "no spaces allowed"}, r"received run_id='no spaces allowed'"),
        ({"secret_name": "Not_A_Name"}, r"received secret_name='Not_A_Name'"),
    ],
)
def test_unusable_arguments_are_refused(kwargs, expected):
    arguments = {"job_url": JOB_URL, "run_id": RUN_ID} | kwargs
    with pytest.raises(ConfigError, match=expected):
        render_manifests(_config(), **arguments)


def test_the_yaml_stream_holds_the_same_documents():
    manifests = list(_render(_config(workers=3, gpus=1)))
    text = manifests_yaml(manifests)
    assert list(yaml.safe_load_all(text)) == manifests
    assert text.count("\n---\n") + text.startswith("---\n") == 2
