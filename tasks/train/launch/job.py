"""A training job: everything a training process needs, in one JSON-serialisable record.

The in-process launcher passes it as an object; the others write it next to the run
(``<root>/runs/<run-id>/job.json``) and start workers with its URL, so a worker on
another machine needs only the storage root's credentials to join.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from kerasflow.tasks.config import TrainConfig
from kerasflow.tasks.refs import DatasetRef


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
