"""Training on a real one-node Slurm cluster, under ``srun``.

One cluster for the module (tests/deploy/slurm_cluster.py: munged, slurmctld, slurmd on
127.0.0.1, 2 CPUs as 2 tasks). A two-task ``srun`` of the worker builds its cluster with
TensorFlow's SlurmClusterResolver and trains what the ``local_processes`` launcher trains.
Everything started here is stopped here.
"""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from kerasflow.tasks.config import TrainConfig
from kerasflow.tasks.ingest import materialize
from kerasflow.tasks.ingest.sources import fingerprint, identify, load_source
from kerasflow.tasks.refs import TrainedModel
from kerasflow.tasks.train import launchers
from kerasflow.tasks.train.job import TrainingJob
from kerasflow.tasks.train.state import training_key, training_url
from tests.deploy.slurm_cluster import SlurmCluster, require_slurm

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("prefect_server")]

ROOT = Path(__file__).resolve().parents[2]


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


def test_a_two_task_srun_trains_what_the_local_processes_launcher_trains(slurm, tmp_path):
    config = smoke(tmp_path, kind="local_processes", workers=2, port=port_base())
    under_srun, local = training_job(config, "under-srun"), training_job(config, "local")
    job_path = launchers.write_job(under_srun)
    assert "TF_CONFIG" not in slurm.env, "the workers must find their cluster in Slurm's environment alone"
    slurm.run(
        "srun",
        "--ntasks=2",
        "--kill-on-bad-exit=1",
        sys.executable,
        "-m",
        "kerasflow.tasks.train.worker",
        str(job_path),
        timeout=900,
    )
    srun_result = TrainedModel.model_validate_json((job_path.parent / "result.json").read_text())
    local_result = launchers.local_processes(local, logger=logging.getLogger("test"), lease=None)

    assert srun_result.strategy == local_result.strategy == "MultiWorkerMirroredStrategy x2"
    assert srun_result.global_batch_size == local_result.global_batch_size == 64
    srun_model, local_model = (keras.saving.load_model(r.model_uri) for r in (srun_result, local_result))
    for a, b in zip(srun_model.get_weights(), local_model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
    for name in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(srun_result.history[name], local_result.history[name], atol=1e-4)
