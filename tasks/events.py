"""The events kerasflow emits to Prefect, with the model as their resource.

Automations react to them (deploy/ has one that notifies on a rejection), and the
Prefect UI's event feed shows them on the flow run that caused them:

- ``kerasflow.model.promoted``: a version took the alias;
- ``kerasflow.gate.rejected``: a candidate failed its gate or its reviewer's approval;
- ``kerasflow.training.skipped``: the data was unchanged since the production model;
- ``kerasflow.data.drifted``: columns of the training data drifted from the production
  model's (tasks/drift.py), with each drifted column's distance.

The resource id is ``kerasflow.model.<name>``, so one automation can follow one model.
"""

from __future__ import annotations

from typing import Any

MODEL_PROMOTED = "kerasflow.model.promoted"
GATE_REJECTED = "kerasflow.gate.rejected"
TRAINING_SKIPPED = "kerasflow.training.skipped"
DATA_DRIFTED = "kerasflow.data.drifted"


def model_resource(name: str) -> dict[str, str]:
    """The event resource of the model ``name``: its id ``kerasflow.model.<name>`` and its name."""
    return {"prefect.resource.id": f"kerasflow.model.{name}", "prefect.resource.name": name}


def emit(event: str, *, model: str, **payload: Any) -> None:
    """Emit ``event`` about ``model``; the current flow run is attached by Prefect as related.

    Args:
        event: the event's name (``kerasflow.model.promoted``...).
        model: the model's name in the registry; the event's resource.
        **payload: the event's payload; None values are left out.
    """
    from prefect.events import emit_event

    emit_event(event=event, resource=model_resource(model), payload={k: v for k, v in payload.items() if v is not None})
