"""Manual approval: the flow pauses after a passed gate; answers come through Prefect's API."""

from __future__ import annotations

import threading
import time

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run

from kerasflow.flows.train import train_flow
from kerasflow.models.registry import ModelRegistry, RegistryError
from kerasflow.tasks.approval import ApprovalRejected
from kerasflow.tasks.config import TrainConfig

pytestmark = pytest.mark.usefixtures("prefect_server")


def manual(root, timeout: int = 120) -> TrainConfig:
    return TrainConfig.smoke(
        storage={"root": str(root)}, gate={"approval": "manual", "approval_timeout_seconds": timeout}
    )


def start(config: TrainConfig) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["summary"] = train_flow(config=config)
        except Exception as error:  # noqa: BLE001 - inspected by the test
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def paused_flow_run(deadline: float = 120):
    """The flow run waiting for approval, read back through the API as the UI would."""
    paused = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
    started = time.monotonic()
    with get_client(sync_client=True) as client:
        while time.monotonic() - started < deadline:
            runs = client.read_flow_runs(flow_run_filter=paused)
            if runs:
                return runs[0]
            time.sleep(0.5)
    raise AssertionError("no flow run paused for approval")


def test_approval_promotes_and_records_who_approved(root):
    thread, outcome = start(manual(root))
    paused = paused_flow_run()
    registry = ModelRegistry(f"{root}/registry")
    assert registry.get("digits", 1)["status"] == "registered", "registered before the question is asked"
    assert registry.alias_target("digits", "production") is None, "nothing promoted while waiting"

    resume_flow_run(paused.id, run_input={"approve": True, "reviewer": "ana", "comment": "curves look right"})
    thread.join(timeout=120)

    assert "error" not in outcome, outcome.get("error")
    assert outcome["summary"].outcome == "promoted"
    assert registry.alias_target("digits", "production") == 1
    assert registry.get("digits", 1)["review"]["reviewer"] == "ana"
    assert registry.alias_history("digits", "production")[-1]["reason"].endswith("; approved by ana: curves look right")


def waiting_message(flow_run_id, deadline: float = 60) -> str:
    """The run's log line saying it waits for approval, read back through the API as the UI shows it."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    run_logs = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
    started = time.monotonic()
    with get_client(sync_client=True) as client:
        while time.monotonic() - started < deadline:
            found = [log.message for log in client.read_logs(log_filter=run_logs) if "for approval" in log.message]
            if found:
                return found[0]
            time.sleep(0.5)
    raise AssertionError("the run logged no approval message")


def test_a_waiting_run_logs_its_id_its_page_and_the_call_that_answers_it(root):
    import subprocess
    from datetime import UTC, datetime

    from prefect.utilities.urls import url_for

    from tests.flows.helpers import model_events

    since = datetime.now(UTC)
    thread, outcome = start(manual(root))
    paused = paused_flow_run()
    message = waiting_message(paused.id)
    assert f"flow run {paused.id}" in message
    page = url_for("flow-run", obj_id=paused.id)
    assert page and page in message, message  # the session server's UI address, derived from its API's
    [approve] = [line.strip().removeprefix("approve: ") for line in message.splitlines() if "'approve': True" in line]
    assert any("'approve': False" in line for line in message.splitlines()), message

    # The printed call, run as a person would run it in a shell, answers the run.
    answer = approve.replace("YOUR NAME", "cy").replace("WHY", "read the report")
    done = subprocess.run(["bash", "-c", answer], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    thread.join(timeout=120)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["summary"].outcome == "promoted"
    review = ModelRegistry(f"{root}/registry").get("digits", 1)["review"]
    assert (review["reviewer"], review["comment"]) == ("cy", "read the report")
    # The flow's promotion event says who and why, as a promotion by hand does (tests/flows/cli/test_cli.py).
    [promoted] = [e for e in model_events("digits", since=since, expected=1) if e.event == "kerasflow.model.promoted"]
    assert set(promoted.payload) == {"version", "alias", "fingerprint", "actor", "reason"}
    assert promoted.payload["actor"] == "kerasflow train"
    assert promoted.payload["reason"].startswith("gate passed: ")
    assert promoted.payload["reason"].endswith("; approved by cy: read the report")


def test_rejection_is_recorded_with_its_comment_and_blocks_the_version(root):
    thread, outcome = start(manual(root))
    paused = paused_flow_run()
    resume_flow_run(paused.id, run_input={"approve": False, "reviewer": "ben", "comment": "class 8 is weak"})
    thread.join(timeout=120)

    assert isinstance(outcome.get("error"), ApprovalRejected)
    assert "digits v1 rejected by ben: class 8 is weak; 'production' unchanged" in str(outcome["error"])
    registry = ModelRegistry(f"{root}/registry")
    metadata = registry.get("digits", 1)
    assert metadata["status"] == "rejected"
    assert (metadata["review"]["approved"], metadata["review"]["comment"]) == (False, "class 8 is weak")
    assert registry.alias_target("digits", "production") is None
    with pytest.raises(RegistryError, match="rejected"):
        registry.set_alias("digits", "production", 1, reason="sneak it in", actor="test")


def test_no_answer_before_the_timeout_rejects(root):
    thread, outcome = start(manual(root, timeout=3))
    thread.join(timeout=180)

    assert isinstance(outcome.get("error"), ApprovalRejected)
    assert "rejected by timeout: no answer within 3 s" in str(outcome["error"])
    metadata = ModelRegistry(f"{root}/registry").get("digits", 1)
    assert metadata["status"] == "rejected" and metadata["review"]["reviewer"] == "timeout"


def test_a_candidate_approved_after_another_promotion_does_not_replace_a_model_it_was_never_compared_with(root):
    """Issue 28: two runs judged against the same production; the later one must not move the alias over the
    earlier one's model unseen. Here the later answer is a person's approval, given after another promotion."""
    from kerasflow.models.registry import ModelRegistry
    from kerasflow.tasks.register import StaleBaseline

    thread, outcome = start(manual(root))
    paused = paused_flow_run()
    registry = ModelRegistry(f"{root}/registry")
    judged = registry.get("digits", 1)
    assert judged["gate"]["alias_version"] is None, "judged while production held no model"
    # Meanwhile another run registers and promotes its own model.
    other = registry.register(
        "digits",
        model_file=root / "registry/digits/versions/1/model.keras",
        metadata={"status": "registered"},
        idempotency_key="another-run",
    )
    registry.set_alias("digits", "production", other["version"], reason="another run", actor="test")

    resume_flow_run(paused.id, run_input={"approve": True, "reviewer": "ana", "comment": "looks right"})
    thread.join(timeout=120)

    error = outcome.get("error")
    assert isinstance(error, StaleBaseline), outcome
    assert "digits v1 passed its gate against no model (a first run), but 'production' has since moved to v2" in str(
        error
    )
    assert error.summary.outcome == "rejected"
    assert registry.alias_target("digits", "production") == 2
    assert [entry["version"] for entry in registry.alias_history("digits", "production")] == [2]
