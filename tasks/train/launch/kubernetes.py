"""The ``kubernetes`` launcher: multi-node training as an Indexed Job behind a headless Service.

:func:`render_manifests` fills ``templates/training-job.yaml`` (package data beside this
module) from a run's config: one pod per worker, each named ``<job>-<index>`` in the DNS
of the headless Service, so every worker knows all the others' addresses before any of
them starts
(``KERASFLOW_WORKERS``) and builds its TF_CONFIG from its own
``JOB_COMPLETION_INDEX`` (:func:`kerasflow.tasks.train.cluster.tf_config_from_index`).
:func:`apply_and_wait` creates both objects with the official ``kubernetes`` client and
waits for the Job. Rendering is pure; only ``apply_and_wait`` talks to a cluster.
"""

from __future__ import annotations

import json
import logging
import re
import string
import time
from importlib import resources
from typing import Any

import yaml

from kerasflow.tasks import storage
from kerasflow.tasks.config import ConfigError, TrainConfig, refuse_credentials
from kerasflow.tasks.train.launch import register_launcher
from kerasflow.tasks.train.launch.job import TrainingJob, chief_result, publish_job, resource_name

__all__ = ["TEMPLATE", "apply_and_wait", "manifests_yaml", "render_manifests", "resource_name"]

# Package data: the same file in a checkout, an editable install and a wheel.
TEMPLATE = resources.files(__package__).joinpath("templates", "training-job.yaml")

# A Secret's name (DNS-1123 subdomain).
_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
# A label value (kerasflow/run); the selector of a run's pods, so it is never altered.
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_GPU = "nvidia.com/gpu"
# Written by the Job controller on each pod of an Indexed Job.
_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


def render_manifests(
    config: TrainConfig, *, job_url: str, run_id: str, secret_name: str | None = "kerasflow-storage"
) -> list[dict[str, Any]]:
    """The headless Service and the Indexed Job that train ``config`` on its launcher's workers.

    Args:
        config: the run's config; ``config.runtime.launcher`` sizes and places the pods.
        job_url: URL of the run's ``job.json`` under the storage root, the workers' argument.
        run_id: the run id, the ``kerasflow/run`` label that selects this run's pods.
        secret_name: Secret whose keys become each worker's environment (the storage
            credentials); None when the pods get them otherwise (IRSA, workload identity).

    Returns:
        ``[service, job]`` as plain dicts, ready for the Kubernetes API or :func:`manifests_yaml`.

    Raises:
        ConfigError: the launcher has no image, or ``job_url`` or ``run_id`` cannot be used.
    """
    launcher = config.runtime.launcher
    if not launcher.image:
        raise ConfigError(
            "received runtime.launcher.image=None, expected the container image with kerasflow installed, "
            "e.g. runtime.launcher.image=ghcr.io/acme/kerasflow:0.1.0-gpu; see deploy/Dockerfile"
        )
    if not job_url or "://" not in job_url:
        raise ConfigError(
            f"received job_url={job_url!r}, expected the URL of job.json under a storage root every pod "
            "can reach, e.g. s3://bucket/kerasflow/runs/<run-id>/job.json"
        )
    try:
        refuse_credentials(job_url)  # the manifest is printed and stored by the cluster
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if not run_id or not _LABEL_VALUE.fullmatch(run_id):
        raise ConfigError(
            f"received run_id={run_id!r}, expected at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit (a Kubernetes label value), e.g. a UUID"
        )
    if secret_name is not None and not _SUBDOMAIN.fullmatch(secret_name):
        raise ConfigError(
            f"received secret_name={secret_name!r}, expected the name of a Secret in namespace "
            f"{launcher.namespace} (lower case letters, digits, '-' and '.'), or None for no Secret"
        )

    name = resource_name(config.model.name, run_id)
    workers = [
        f"{name}-{index}.{name}.{launcher.namespace}.svc.cluster.local:{launcher.port}"
        for index in range(launcher.workers)
    ]
    values = {
        "name": name,
        "namespace": launcher.namespace,
        "run_id": run_id,
        "workers": launcher.workers,
        "workers_env": ",".join(workers),
        "image": launcher.image,
        "job_url": job_url,
        "port": launcher.port,
        "cpu": launcher.cpu,
        "memory": launcher.memory,
        "secret_name": secret_name or "unused",
    }
    # JSON scalars are YAML scalars: quoting every value keeps it inside its field.
    text = string.Template(template_text()).substitute({key: json.dumps(value) for key, value in values.items()})
    service, job = (doc for doc in yaml.safe_load_all(text) if doc is not None)

    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    if secret_name is None:
        del container["envFrom"]
    if launcher.service_account:
        pod["serviceAccountName"] = launcher.service_account
    if launcher.gpus_per_worker > 0:
        # Extended resources are requested through limits; requests, if given, must equal them.
        for side in ("requests", "limits"):
            container["resources"][side][_GPU] = str(launcher.gpus_per_worker)
        # GPU nodes are commonly tainted so that only pods asking for GPUs land there.
        pod["tolerations"] = [{"key": _GPU, "operator": "Exists", "effect": "NoSchedule"}]
    return [service, job]


def template_text() -> str:
    """The unrendered manifest template, ``templates/training-job.yaml`` of this package."""
    return TEMPLATE.read_text()


def manifests_yaml(manifests: list[dict[str, Any]]) -> str:
    """The manifests as one YAML stream, for ``kubectl apply -f -``."""
    return yaml.safe_dump_all(manifests, sort_keys=False, explicit_start=True)


def apply_and_wait(
    manifests: list[dict[str, Any]],
    *,
    timeout_seconds: float,
    poll_seconds: float = 10,
    logger: logging.Logger | logging.LoggerAdapter,
) -> None:
    """Create the Service and the Job of :func:`render_manifests`, and wait for the Job to finish.

    Needs a cluster, so it is not exercised by the tests; keep it thin. Credentials come
    from the pod's service account (in-cluster) or else the local kubeconfig. A Job left
    by an earlier attempt of the same run is deleted first (its workers cannot be joined);
    the Service is deleted at the end, and the Job too unless it finished (the finished
    Job's pods keep their logs until ``ttlSecondsAfterFinished``).

    Args:
        manifests: ``[service, job]``.
        timeout_seconds: how long to wait for all workers to succeed.
        poll_seconds: how often the Job's status is read.
        logger: where progress is reported (the Prefect run logger).

    Raises:
        RuntimeError: the Job failed; names the worker that failed first and its ``kubectl logs``.
        TimeoutError: the Job did not finish within ``timeout_seconds``.
    """
    from kubernetes import client
    from kubernetes import config as kube_config

    try:
        kube_config.load_incluster_config()
    except kube_config.ConfigException:
        kube_config.load_kube_config()
    core, batch = client.CoreV1Api(), client.BatchV1Api()
    service, job = manifests
    namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
    run_label = job["metadata"]["labels"]["kerasflow/run"]
    completions = job["spec"]["completions"]

    _delete_earlier_attempt(batch, namespace=namespace, name=name, run_label=run_label, logger=logger)
    try:
        core.create_namespaced_service(namespace, service)
    except client.ApiException as error:
        if error.status != 409:  # an earlier attempt's Service selects the same pods: reuse it
            raise
    batch.create_namespaced_job(namespace, job)
    logger.info("created Job %s/%s: %d worker pod(s)", namespace, name, completions)

    finished, last = False, None
    deadline = time.monotonic() + timeout_seconds
    try:
        while True:
            status = batch.read_namespaced_job_status(name, namespace).status
            progress = (status.active or 0, status.ready or 0, status.succeeded or 0)
            if progress != last:
                logger.info("Job %s: %d active, %d ready, %d succeeded of %d", name, *progress, completions)
                last = progress
            if (status.succeeded or 0) >= completions:
                finished = True
                return
            failed = [c for c in status.conditions or [] if c.type == "Failed" and c.status == "True"]
            if failed:
                finished = True
                raise RuntimeError(_failure_message(core, namespace, name, run_label, failed[0]))
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Job {namespace}/{name} did not finish in {timeout_seconds:.0f}s ({progress[2]} of "
                    f"{completions} succeeded); pending pods usually lack GPUs or quota: "
                    f"kubectl describe pods -n {namespace} -l kerasflow/run={run_label}"
                )
            time.sleep(poll_seconds)
    finally:
        cleanup = [("Service", core.delete_namespaced_service, {})]
        if not finished:  # timed out or cancelled: free the GPUs now
            cleanup.append(("Job", batch.delete_namespaced_job, {"propagation_policy": "Background"}))
        for kind, delete, options in cleanup:
            try:
                delete(name, namespace, **options)
            except client.ApiException as error:  # never hide the error that brought us here
                if error.status != 404:
                    logger.warning("could not delete %s %s/%s: %s", kind, namespace, name, error.reason)


def _delete_earlier_attempt(
    batch: Any, *, namespace: str, name: str, run_label: str, logger: logging.Logger | logging.LoggerAdapter
) -> None:
    """Delete a Job of the same name left by an earlier attempt of this run, and wait until it is gone."""
    from kubernetes import client

    try:
        existing = batch.read_namespaced_job(name, namespace)
    except client.ApiException as error:
        if error.status == 404:
            return
        raise
    labels = existing.metadata.labels or {}
    if labels.get("kerasflow/run") != run_label:
        raise RuntimeError(
            f"received an existing Job {namespace}/{name} of run {labels.get('kerasflow/run')!r}, expected none "
            f"or one of run {run_label!r}; delete it with `kubectl delete job -n {namespace} {name}`"
        )
    logger.info("deleting Job %s/%s left by an earlier attempt of this run", namespace, name)
    # Foreground: the old pods, which hold the workers' hostnames, go before the Job does.
    batch.delete_namespaced_job(name, namespace, propagation_policy="Foreground")
    for _ in range(120):
        try:
            batch.read_namespaced_job(name, namespace)
        except client.ApiException as error:
            if error.status == 404:
                return
            raise
        time.sleep(2)
    raise RuntimeError(f"Job {namespace}/{name} of an earlier attempt was not deleted within 4 minutes")


def _failure_message(core: Any, namespace: str, name: str, run_label: str, condition: Any) -> str:
    """Which worker failed first, with its exit code and the command that shows its log."""
    pods = core.list_namespaced_pod(namespace, label_selector=f"kerasflow/run={run_label}").items
    failures = []
    for pod in pods:
        for container in pod.status.container_statuses or []:
            ended = container.state.terminated if container.state else None
            if ended is not None and ended.exit_code != 0:
                index = (pod.metadata.annotations or {}).get(_INDEX_ANNOTATION, "?")
                when = ended.finished_at.timestamp() if ended.finished_at else float("inf")
                failures.append((when, index, pod.metadata.name, ended.exit_code, ended.reason))
    head = f"training Job {namespace}/{name} failed ({condition.reason}: {condition.message})"
    if not failures:
        return f"{head}; see `kubectl describe job -n {namespace} {name}` and `kubectl logs -n {namespace} job/{name}`"
    # The others were stopped by the Job controller after the first failure; the first is the cause.
    _, index, pod_name, code, reason = min(failures)
    return (
        f"{head}: worker {index} (pod {pod_name}) failed first with exit code {code} ({reason}); "
        f"read its log with `kubectl logs -n {namespace} {pod_name}`"
    )


@register_launcher("kubernetes", on_this_node=False)
def on_kubernetes(job: TrainingJob, *, logger: Any, lease: Any):
    """Write the job next to the run, apply the Indexed Job, wait, read the chief's result.

    Args:
        job: the training job.
        logger: the train task's Prefect logger.
        lease: not used: the workers check the lease generation the job records.

    Raises:
        ConfigError: the storage root is local, or the manifests cannot be rendered from the config.
    """
    root = job.config.storage.root
    if storage.is_local(root):
        raise ConfigError(
            f"received runtime.launcher.kind='kubernetes' with storage.root={root!r}, expected a root every pod "
            "can reach, e.g. s3://bucket/kerasflow"
        )
    job_url = publish_job(job)
    manifests = render_manifests(job.config, job_url=job_url, run_id=job.run_id)
    apply_and_wait(manifests, timeout_seconds=7 * 24 * 3600, logger=logger)
    return chief_result(job)
