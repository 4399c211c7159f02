"""Where and how training runs: the ``runtime`` section of a recipe.

Strategy, devices and precision (tasks/train/strategy.py), the launcher of training
processes (tasks/train/launch/), GPU slots and leases, and ``train_on``: the train
step as a flow run of its own deployment (flows/train_step.py), and how ingest runs a
table's files (``ingest``: tasks/ingest/file_runs.py). tasks/config/__init__.py composes
it into ``TrainConfig`` and re-exports it.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator


class ConfigSection(BaseModel):
    """Every section of a recipe, here and in tasks/config/__init__.py: immutable, no unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class LauncherConfig(ConfigSection):
    """Where training processes run (tasks/train/launch/)."""

    kind: str = Field(
        "in_process",
        description="in_process: this process; local_processes: N workers on this machine over loopback; "
        "kubernetes: an Indexed Job of N pods (deploy/k8s/); slurm: an sbatch job of N tasks (srun); or a "
        "launcher a team registers (register_launcher, entry point group kerasflow.launchers)",
    )
    workers: int = Field(2, ge=1, le=1024, description="worker processes (local_processes, kubernetes, slurm tasks)")
    gpus_per_worker: int = Field(
        0, ge=0, le=16, description="GPUs each worker requests (kubernetes; slurm: --gpus-per-task, omitted when 0)"
    )
    image: str | None = Field(None, description="container image with kerasflow installed (kubernetes)")
    namespace: str = Field("default", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    port: int = Field(
        12345,
        ge=1024,
        le=65535,
        description="the collective port of each worker pod (kubernetes); slurm: the first of each node's ports, "
        "one per task",
    )
    cpu: str = Field("2", description="CPU request per worker pod (kubernetes)")
    memory: str = Field("8Gi", description="memory request per worker pod (kubernetes)")
    service_account: str | None = None
    nodes: int = Field(1, ge=1, le=1024, description="nodes of the Slurm job; each runs workers / nodes tasks (slurm)")
    time_limit: str | None = Field(
        None, description="the Slurm job's --time, e.g. 90, 4:00:00 or 2-00:00:00; null: the partition's (slurm)"
    )
    partition: str | None = Field(None, description="the Slurm partition; null: the cluster's default (slurm)")
    account: str | None = Field(None, description="the Slurm account charged; null: the user's default (slurm)")
    python: str | None = Field(
        None, description="the Python with kerasflow installed on every node; null: this process's (slurm)"
    )
    poll_seconds: float = Field(10.0, ge=0.1, le=600, description="how often the job's state is read (slurm)")

    @field_validator("time_limit")
    @classmethod
    def _slurm_time(cls, value: str | None) -> str | None:
        if value is not None and not _SLURM_TIME.fullmatch(value):
            raise ValueError(
                f"received runtime.launcher.time_limit={value!r}, expected a Slurm time: minutes, MM:SS, "
                "HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (e.g. 4:00:00), or UNLIMITED"
            )
        return value

    @field_validator("partition", "account")
    @classmethod
    def _slurm_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Each becomes one #SBATCH line of the job script: nothing may break out of it.
        if value is not None and not _SLURM_NAME.fullmatch(value):
            raise ValueError(
                f"received runtime.launcher.{info.field_name}={value!r}, expected a Slurm {info.field_name} name: "
                "letters, digits, '_', '-', '.' (partitions: a comma-separated list of them)"
            )
        return value

    @model_validator(mode="after")
    def _tasks_fill_nodes(self) -> LauncherConfig:
        if self.kind == "slurm" and self.workers % self.nodes:
            raise ValueError(
                f"received runtime.launcher.workers={self.workers} with nodes={self.nodes}, expected workers a "
                "multiple of nodes: each node runs workers / nodes tasks (--ntasks-per-node)"
            )
        return self

    @property
    def tasks_per_node(self) -> int:
        return self.workers // self.nodes


# Slurm's time formats (sbatch --time); UNLIMITED and INFINITE mean the partition's limit.
_SLURM_TIME = re.compile(r"\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2}|UNLIMITED|INFINITE")
_SLURM_NAME = re.compile(r"[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*")


# Names of environment variables that hold secrets; job variables are recorded with the config.
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|CREDENTIAL|API_KEY|ACCESS_KEY", re.IGNORECASE)


class TrainStepDeployment(ConfigSection):
    """Run the train step as its own flow run of a Prefect deployment, sized per run.

    The retraining flow calls ``run_deployment`` (flows/train_step.py): the cheap steps stay
    on the flow's work pool, training goes to the deployment's pool (a GPU pool, say) with
    ``job_variables`` overriding its job template, e.g. ``{gpu_count: 4, image: ...}``.
    """

    deployment: str = Field(
        pattern=r"^[^/]+/[^/]+$", description="<flow name>/<deployment name>, e.g. kerasflow-train-step/gpu"
    )
    job_variables: dict[str, Any] = Field(
        default_factory=dict, description="overrides of the work pool's job template: gpu_count, image, env..."
    )
    timeout_seconds: float | None = Field(
        None, gt=0, description="give up waiting for the train step after this long; null: wait until it ends"
    )

    @field_validator("job_variables")
    @classmethod
    def _no_secrets(cls, value: dict[str, Any]) -> dict[str, Any]:
        env = value.get("env") or {}
        named = sorted(k for k in env if _SECRET_NAME.search(str(k))) if isinstance(env, dict) else []
        if named:
            raise ValueError(
                f"received secret-looking job variable(s) env.{', env.'.join(named)}; the config is recorded in "
                "model metadata and logs, so give secrets to the work pool (a Kubernetes secret or the worker's "
                "environment), not to the recipe"
            )
        return value


class IngestRunConfig(ConfigSection):
    """How ingest stores a table's files: each a Prefect task run, several at once (tasks/ingest/file_runs.py)."""

    task_runner: str = Field(
        "flow",
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="flow: each file a task run under the flow's own task runner (threads in this process "
        "unless the flow sets another); in_task: the files in turn inside the ingest task, no task runs (the "
        "least memory); dask: task runs on a Dask cluster, at the address in KERASFLOW_DASK_ADDRESS (the "
        "environment of the process that runs the flow) or a local one of dask_workers processes (pip install "
        "'kerasflow[dask]'); or a name registered with kerasflow.register_task_runner",
    )
    files_at_once: int = Field(
        2,
        ge=1,
        le=64,
        description="files stored at once in threads of this process (each holds up to two parts of 2^20 rows); "
        "a Dask cluster's workers bound their own",
    )
    dask_workers: int = Field(
        2, ge=1, le=1024, description="worker processes of the local Dask cluster (dask without KERASFLOW_DASK_ADDRESS)"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_address_in_a_recipe(cls, raw: Any) -> Any:
        # Whoever can start a run sets a recipe's values (--set, the UI's Custom run form), and
        # the task runs sent to a Dask scheduler carry the run's Prefect settings, API key included.
        if isinstance(raw, dict) and raw.get("dask_address") is not None:
            raise ValueError(
                "runtime.ingest.dask_address is not read from a recipe: anyone who can start a run could point it at "
                "their own scheduler, which would receive the run's Prefect settings, API key included; set "
                "KERASFLOW_DASK_ADDRESS in the environment of the process that runs the flow (the work pool's "
                "job variables, or the shell of `kerasflow train`)"
            )
        if isinstance(raw, dict) and "dask_address" in raw:  # null, as recipes written before wrote it
            raw = {key: value for key, value in raw.items() if key != "dask_address"}
        return raw


class RuntimeConfig(ConfigSection):
    strategy: Literal["auto", "one_device", "mirrored", "multi_worker"] = Field(
        "auto",
        description="auto: multi_worker when TF_CONFIG or Slurm names several workers, mirrored with several "
        "GPUs, else one device",
    )
    devices: list[str] | None = Field(
        None, description="explicit devices, e.g. ['/gpu:0', '/gpu:1'] or two logical CPUs"
    )
    mixed_precision: Literal["none", "mixed_float16", "mixed_bfloat16"] = "none"
    jit_compile: bool = Field(False, description="XLA-compile the train step (GPU only)")
    scale_learning_rate: bool = Field(
        False, description="multiply training.learning_rate by the replicas (linear scaling rule)"
    )
    launcher: LauncherConfig = LauncherConfig()
    gpu_limit: str | None = Field(
        "gpu", description="Prefect global concurrency limit held for the GPUs training uses; null: none"
    )
    gpu_slots: int | None = Field(
        None, ge=0, description="slots of gpu_limit to hold; default: the GPUs training uses on this node"
    )
    lease_seconds: float = Field(
        60.0, ge=1, description="a training's lease expires this long after its holder's last renewal"
    )
    peer_timeout_seconds: float = Field(
        60.0,
        ge=1,
        description="multi-worker: a worker silent this long is reported dead and the step fails",
    )
    ingest: IngestRunConfig = IngestRunConfig()
    train_on: TrainStepDeployment | None = Field(
        None, description="run the train step as a flow run of this deployment (a GPU work pool); null: in this run"
    )
