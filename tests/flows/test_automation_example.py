"""deploy/automations/: the committed automation examples are valid Prefect automations."""

from __future__ import annotations

from pathlib import Path

import yaml
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger
from prefect.events.schemas.events import Resource

from kerasflow.tasks import events

EXAMPLE = Path(__file__).parents[2] / "deploy" / "automations" / "notify-on-rejection.yaml"


def test_the_rejection_automation_is_a_valid_automation_on_kerasflows_event():
    automation = AutomationCore.model_validate(yaml.safe_load(EXAMPLE.read_text()))
    assert isinstance(automation.trigger, EventTrigger)
    assert automation.trigger.expect == {events.GATE_REJECTED}
    # It matches the resource the flow emits for any model, and nothing of Prefect's own.
    assert automation.trigger.match.matches(Resource(events.model_resource("fraud-tabular")))
    assert not automation.trigger.match.matches(Resource({"prefect.resource.id": "prefect.flow-run.123"}))
    (action,) = automation.actions
    assert isinstance(action, SendNotification)
    # The template names payload keys that flows/train.py really sends with a rejection.
    assert all(key in action.body for key in ("event.payload.version", "event.payload.reason", "event.payload.alias"))
