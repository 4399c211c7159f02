"""What a launcher and its workers agree on: the job record, where it and the result go.

A training job is everything a training process needs, in one JSON-serialisable record.
The in-process launcher passes it as an object; the others write it next to the run
(``<root>/runs/<run-id>/job.json``, :func:`publish_job`) and start workers with its URL,
so a worker on another machine needs only the storage root's credentials to join. The
chief writes ``result.json`` beside it (:func:`chief_result` reads it back); a worker
that fails in a way a retry repeats exits with ``DETERMINISTIC_EXIT`` (worker.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kerasflow.tasks import storage
from kerasflow.tasks.config import TrainConfig
from kerasflow.tasks.refs import DatasetRef, TrainedModel

# Pod hostnames are "<job>-<index>" and must stay a DNS label; indexes reach 1023 (4 digits).
_MAX_NAME = 63 - len("-1023")
_PREFIX = "train-"
_SHORT_ID = 8


class TrainingJob(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    config: TrainConfig
    dataset: DatasetRef
    run_id: str
    state_url: str = Field(description="durable training state: <root>/training/<key> (backup, lease)")
    key: str = Field(description="what the training is: recipe, training config and data fingerprint")
    lease_generation: int | None = Field(
        None, description="the launcher's lease generation; the chief stops publishing once it is not the newest"
    )
    warm_start_version: int | None = Field(
        None, description="the registered version every process starts from (resolved once: tasks/train/warm_start.py)"
    )


def scratch_dir(job: TrainingJob) -> Path:
    """Private local folders of this training's processes (backups in progress)."""
    return storage.local_path(job.config.storage.root, job.state_url) / "scratch"


def write_job(job: TrainingJob) -> Path:
    """Write ``job.json`` into the run's local folder; its path."""
    run_dir = storage.run_dir(job.config.storage.root, job.run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "job.json"
    path.write_text(job.model_dump_json(indent=2))
    return path


def publish_job(job: TrainingJob) -> str:
    """Write ``job.json`` into the run folder, uploaded when the root is remote; its path or URL."""
    root = job.config.storage.root
    job_path = write_job(job)
    if storage.is_local(root):
        return os.fspath(job_path)
    storage.upload_dir(job_path.parent, storage.run_url(root, job.run_id))
    return storage.join(storage.run_url(root, job.run_id), "job.json")


def chief_result(job: TrainingJob) -> Any:
    """The TrainedModel the chief wrote to ``result.json``, read from the storage root."""

    root = job.config.storage.root
    result_url = storage.join(storage.run_url(root, job.run_id), "result.json")
    if not storage.is_local(root):
        storage.local_path(root, result_url).unlink(missing_ok=True)  # an earlier attempt's, in the mirror
    return TrainedModel.model_validate_json(storage.fetch_file(root, result_url).read_text())


def resource_name(model_name: str, run_id: str) -> str:
    """The name of a run's Service and Job: ``train-<model>-<short run id>``, a DNS-1123 label.

    Args:
        model_name: ``config.model.name``; characters outside ``[a-z0-9-]`` become ``-``
            and it is shortened so that a pod hostname ``<name>-<index>`` fits 63 characters.
        run_id: the run id; a UUID contributes its first 8 hex digits (as Prefect's UI
            shows it), any other id a hash, so two runs never share a name.

    Returns:
        At most 58 characters: lower case letters, digits and ``-``, starting with a letter.
    """
    try:
        short = uuid.UUID(run_id).hex[:_SHORT_ID]
    except ValueError:
        short = hashlib.sha256(run_id.encode()).hexdigest()[:_SHORT_ID]
    room = _MAX_NAME - len(_PREFIX) - len(short) - 1
    model = re.sub(r"[^a-z0-9]+", "-", model_name.lower())[:room].strip("-") or "model"
    return f"{_PREFIX}{model}-{short}"
