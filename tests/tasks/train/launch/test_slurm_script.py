"""The ``slurm`` launcher's batch script and keys, without a cluster (tests/deploy/test_slurm.py has one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kerasflow.tasks.config import ConfigError, TrainConfig
from kerasflow.tasks.train.launch import launcher_for, slurm

RUN = "6f1c2d3e-0000-4000-8000-000000000000"


def script(logs_dir: Path = Path("/shared/kf/runs/r/workers"), **launcher) -> str:
    config = TrainConfig.smoke(runtime={"launcher": {"kind": "slurm", **launcher}})
    return slurm.render_script(
        config, job_location="/shared/kf/runs/r/job.json", run_id=RUN, logs_dir=logs_dir, workdir="/home/me"
    )


def sbatch_lines(text: str) -> list[str]:
    return [line.removeprefix("#SBATCH ") for line in text.splitlines() if line.startswith("#SBATCH ")]


def test_the_script_sizes_and_places_the_job_and_leaves_unset_options_to_slurm():
    full = script(workers=8, nodes=2, gpus_per_worker=1, time_limit="4:00:00", partition="gpu", account="ml-team")
    assert sbatch_lines(full) == [
        "--job-name=kerasflow-digits-6f1c2d3e",
        "--nodes=2",
        "--ntasks-per-node=4",
        "--gpus-per-task=1",
        "--time=4:00:00",
        "--partition=gpu",
        "--account=ml-team",
        "--output=/shared/kf/runs/r/workers/slurm-%j-batch.log",
        "--chdir=/home/me",
        "--no-requeue",
    ]
    assert full.startswith("#!/bin/bash\n")
    assert 'export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"' in full
    assert "-m kerasflow.tasks.train.launch.worker /shared/kf/runs/r/job.json" in full
    assert "--output=/shared/kf/runs/r/workers/slurm-%j-worker-%t.out" in full
    # GPUs per task 0 and unset options: no line, so the cluster's defaults apply.
    bare = sbatch_lines(script())
    assert not [line for line in bare if line.startswith(("--gpus-per-task", "--time", "--partition", "--account"))]
    assert "--ntasks-per-node=2" in bare


def test_values_stay_inside_their_place_in_the_script():
    text = script(python="/opt/my env/bin/python")
    assert "'/opt/my env/bin/python' -m kerasflow.tasks.train.launch.worker" in text
    with pytest.raises(ConfigError, match="expected a path without white space"):
        script(logs_dir=Path("/shared/my runs/workers"))
    config = TrainConfig.smoke(runtime={"launcher": {"kind": "slurm"}})
    with pytest.raises(ConfigError, match="credentials"):
        slurm.render_script(
            config, job_location="s3://key:secret@b/job.json", run_id=RUN, logs_dir=Path("/l"), workdir="/w"
        )


@pytest.mark.parametrize(
    ("launcher", "message"),
    [
        ({"time_limit": "4h"}, r"received runtime.launcher.time_limit='4h', expected a Slurm time"),
        ({"partition": "gpu\n#SBATCH --uid=0"}, r"received runtime.launcher.partition=.*expected a Slurm partition"),
        ({"account": "a b"}, r"received runtime.launcher.account='a b', expected a Slurm account"),
        ({"workers": 3, "nodes": 2}, r"received runtime.launcher.workers=3 with nodes=2, expected workers a multiple"),
    ],
)
def test_slurm_keys_are_refused_with_what_was_received_and_expected(launcher, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.smoke(runtime={"launcher": {"kind": "slurm", **launcher}})


def test_slurm_times_and_lists_of_partitions_are_accepted():
    for time_limit in ("90", "30:00", "4:00:00", "2-00", "2-12:00", "2-12:00:00", "UNLIMITED"):
        TrainConfig.smoke(runtime={"launcher": {"kind": "slurm", "time_limit": time_limit}})
    TrainConfig.smoke(runtime={"launcher": {"kind": "slurm", "partition": "gpu,gpu-large"}})


def test_slurm_is_a_registered_launcher_that_trains_on_other_nodes():
    assert launcher_for("slurm").run is slurm.on_slurm
    assert not launcher_for("slurm").on_this_node
    assert launcher_for("local_processes").on_this_node
