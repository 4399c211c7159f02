"""The events kerasflow emits to Prefect, with the model as their resource.

Automations react to them (deploy/ has one that notifies on a rejection), and the
Prefect UI's event feed shows them on the flow run that caused them:

- ``kerasflow.model.promoted``: a version took the alias, in a flow run or by hand
  (``kerasflow models promote`` and ``rollback`` send the same event, with who and why);
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


def emit_promoted(
    model: str,
    *,
    version: int,
    previous_version: int | None,
    alias: str,
    fingerprint: str | None,
    actor: str,
    reason: str,
) -> None:
    """Emit ``kerasflow.model.promoted``: the one shape of every alias move, a flow's or a person's.

    Automations that follow a model's promotions see the ones made by hand as well, and tell
    them apart by ``actor`` and ``reason`` (a flow run is attached as related when there is one).

    Args:
        model: the model's name in the registry.
        version: the version the alias points at now.
        previous_version: the version it pointed at before; None (left out) for its first move.
        alias: the alias that moved.
        fingerprint: the dataset the version was trained on; None when it recorded none.
        actor: who or what moved it, as recorded in the alias history.
        reason: why it moved, as recorded in the alias history.
    """
    emit(
        MODEL_PROMOTED,
        model=model,
        version=version,
        previous_version=previous_version,
        alias=alias,
        fingerprint=fingerprint,
        actor=actor,
        reason=reason,
    )
