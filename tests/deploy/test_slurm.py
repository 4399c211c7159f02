"""Training on a real one-node Slurm cluster through the ``slurm`` launcher.

One cluster for the module (tests/deploy/slurm_cluster.py: munged, slurmctld, slurmd on
127.0.0.1, 2 CPUs as 2 tasks). The launcher submits with ``sbatch`` from the train task;
the job's two ``srun`` tasks build their cluster with TensorFlow's SlurmClusterResolver
and train what the ``local_processes`` launcher trains, while the chief's progress is
replayed into the task's logs and artifact. A ``scancel`` is a task failure whose retry
resumes from the last published epoch. Each multi-worker run costs its workers' start-up
(TensorFlow's import, 10 s of CPU each), so the module runs four. Everything started
here is stopped here.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from pathlib import Path

import keras
import numpy as np
import pytest

from kerasflow.flows.train import train_flow
from kerasflow.models.registry import ModelRegistry
from kerasflow.tasks.config import TrainConfig
from kerasflow.tasks.data import materialize
from kerasflow.tasks.ingest.sources import fingerprint, identify, load_source
from kerasflow.tasks.train.launch import local_processes
from kerasflow.tasks.train.launch.job import TrainingJob
from kerasflow.tasks.train.state import training_key, training_url
from tests.deploy.slurm_cluster import SlurmCluster, require_slurm
from tests.flows.helpers import assert_the_retry_resumed, flow_run_record, train_interrupted

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("prefect_server")]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """The cluster; SLURM_CONF points every Slurm client of this process (sbatch in the task) at it."""
    require_slurm()
    with SlurmCluster(tmp_path_factory.mktemp("slurm")) as cluster, pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLURM_CONF", str(cluster.conf))
        yield cluster


def port_base() -> int:
    """A free loopback port whose successor is free too: one port per task on the node."""
    while True:
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port


def smoke(root: Path, **launcher) -> TrainConfig:
    # Dropout off, as in the local equivalence test: masks differ per replica position.
    return TrainConfig.smoke(
        storage={"root": str(root)}, model={"params": {"dropout": 0.0}}, runtime={"launcher": launcher}
    )


def training_job(config: TrainConfig, run_id: str) -> TrainingJob:
    """The job the train task would build, with a backup of its own (two runs here train the same thing)."""
    root = config.storage.root
    identity = identify(config.data)
    ref = materialize.find_materialized(root, fingerprint(identity)) or materialize.materialize(
        load_source(config.data, identity), root
    )
    key = training_key(config, ref)
    return TrainingJob(
        config=config, dataset=ref, run_id=run_id, state_url=training_url(root, f"{key}-{run_id}"), key=key
    )


def queue(slurm: SlurmCluster) -> list[str]:
    return slurm.run("squeue", "-h", "-o", "%i").stdout.split()


def test_an_sbatch_job_of_two_srun_tasks_trains_what_local_processes_trains(slurm, root, tmp_path, caplog, monkeypatch):
    """The slurm launcher end to end; its two tasks find their cluster with SlurmClusterResolver."""
    assert "TF_CONFIG" not in slurm.env, "the workers must find their cluster in Slurm's environment alone"
    monkeypatch.setenv("KERASFLOW_TEST_SECRET", "never-in-the-script")  # the job's environment, not its script
    launcher = {"kind": "slurm", "workers": 2, "port": port_base(), "poll_seconds": 0.5, "time_limit": "30"}
    summary = train_flow(config=smoke(root, **launcher, partition="debug"))
    local = local_processes.local_processes(
        training_job(smoke(tmp_path / "local", kind="local_processes", workers=2), "local"),
        logger=logging.getLogger("test"),
        lease=None,
    )

    assert summary.outcome == "promoted"
    registry = ModelRegistry(str(root / "registry"))
    training = registry.get("digits", 1)["training"]
    assert training["strategy"] == local.strategy == "MultiWorkerMirroredStrategy x2"
    assert training["global_batch_size"] == local.global_batch_size == 64
    under_slurm = keras.saving.load_model(root / "registry" / "digits" / "versions" / "1" / "model.keras")
    for a, b in zip(under_slurm.get_weights(), keras.saving.load_model(local.model_uri).get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
    history = json.loads((root / "runs" / training["run_id"] / "metrics.json").read_text())["history"]
    for name in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(history[name], local.history[name], atol=1e-4)

    text = caplog.text
    job_id = re.search(r"submitted Slurm job (\d+): 1 node\(s\) x 2 task\(s\)", text).group(1)
    assert re.search(rf"Slurm job {job_id} RUNNING \(None\) after [\d.]+s in the queue on localhost", text)
    assert re.search(r"epoch 2/2 \([\d.]+s\) accuracy=", text), "the chief's epochs reach the task's log"
    artifacts = {}
    _, task_runs, _ = flow_run_record(
        registry.get("digits", 1)["flow_run_id"], artifacts_by_key=artifacts, tasks=("train",)
    )
    assert artifacts["training-progress"].data == 100.0
    assert task_runs["train"][0].run_count == 1
    script = (root / "runs" / training["run_id"] / "training-job.sbatch").read_text()
    assert "#SBATCH --nodes=1\n#SBATCH --ntasks-per-node=2\n" in script
    assert "#SBATCH --time=30\n#SBATCH --partition=debug\n" in script
    assert "--gpus-per-task" not in script and "--account" not in script
    assert "never-in-the-script" not in script
    assert queue(slurm) == []


def test_a_cancelled_slurm_job_fails_the_task_and_the_retry_resumes_from_the_last_epoch(slurm, root, caplog):
    cancelled = []

    def cancel_the_job() -> bool:
        jobs = queue(slurm)
        if jobs:
            slurm.run("scancel", *jobs)
            cancelled.extend(jobs)
        return bool(jobs)

    # Cancelled after epoch 1 of 2 is published: epoch 2 and saving the model leave it seconds to land.
    config = smoke(root, kind="slurm", workers=2, port=port_base(), poll_seconds=0.5)
    summary = train_interrupted(config, after_epoch=1, interrupt=cancel_the_job, timeout=600)

    assert cancelled, "the job was cancelled"
    assert summary.outcome == "promoted"
    text = caplog.text
    assert re.search(rf"Slurm job {cancelled[0]} ended CANCELLED \(exit code [\d:]+, reason \w+\)", text)
    assert_the_retry_resumed(root, text, after_at_least=1, epochs=2)
    assert queue(slurm) == []
