"""Manual approval: after a passed gate, a person approves or rejects in the Prefect UI.

The flow run waits with a form (``ApprovalInput``) whose description is the gate report;
answering it resumes the run. While it waits, the run logs its id, its page in the UI
(when Prefect knows the UI's address) and the two shell commands that approve or reject
it through the API (``prefect.flow_runs.resume_flow_run``): a ``kerasflow train`` on the
embedded server has no UI, and those commands are the way to answer it. Approve promotes;
reject records the decision and its comment beside the version (``review.json``; the
version can then never take an alias).
Called from the flow, not a task: waiting belongs to the flow run.

How it waits depends on where it runs:
- Locally, without a deployment, the run pauses in its process (``pause_flow_run``), and
  no answer before ``gate.approval_timeout_seconds`` rejects.
- Under a deployment, the run is suspended (``suspend_flow_run``): its process exits, so
  the worker's slot, pod or GPU node is free while a person decides, and the server
  reschedules the run once answered. A resumed run starts again from the top of its
  flow, so first the candidate is recorded in the run's folder
  (``<root>/runs/<run-id>/awaiting-approval.json``, :func:`awaiting_approval`), and the
  flow goes on from it: no ingest, training or evaluation again. The suspension's key
  makes the resumed run's second call return the person's answer instead of suspending
  again. No answer in time: the server's pause-expiry service fails the run; nothing of
  this process is left to record it, so the version stays registered (not rejected) and
  the next run of the same data asks again, reusing the trained model.
"""

from __future__ import annotations

import shlex
import sys

from prefect import get_run_logger, pause_flow_run, suspend_flow_run
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.input import RunInput
from prefect.settings import PREFECT_API_URL
from prefect.utilities.urls import url_for
from pydantic import BaseModel, ConfigDict, Field

from kerasflow.models.registry import ModelRegistry
from kerasflow.tasks import storage
from kerasflow.tasks.gate import GateRejected, report_markdown
from kerasflow.tasks.refs import Candidate, RunTarget

__all__ = ["ApprovalDecision", "ApprovalInput", "ApprovalRejected", "awaiting_approval", "request_approval"]

AWAITING_FILE = "awaiting-approval.json"


class ApprovalInput(RunInput):
    """The form shown in the Prefect UI when a candidate waits for approval."""

    approve: bool = Field(False, description="promote this version")
    reviewer: str = Field("", description="who decides (recorded with the version)")
    comment: str = Field("", description="why (recorded with the version)")


class ApprovalDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    approved: bool
    reviewer: str
    comment: str

    def describe(self) -> str:
        verdict = "approved" if self.approved else "rejected"
        return f"{verdict} by {self.reviewer or 'an unnamed reviewer'}" + (f": {self.comment}" if self.comment else "")


class ApprovalRejected(GateRejected):
    """A person rejected the candidate, or nobody answered in time."""


def request_approval(candidate: Candidate, *, target: RunTarget, timeout: int, run_id: str) -> ApprovalDecision:
    """Wait until a person answers (paused, or suspended under a deployment); record and return the decision.

    Args:
        candidate: the registered candidate that passed the gate.
        target: the storage root and the alias the candidate would move.
        timeout: seconds to wait for an answer (``gate.approval_timeout_seconds``).
        run_id: the flow run's id; names the run folder the candidate is recorded in before a suspension.

    Returns:
        The decision on record in the registry: this one, or an earlier review of the same version. No answer
        within the timeout of a paused run is a rejection by ``timeout``.
    """
    logger = get_run_logger()
    version = candidate.version
    description = (
        f"## Approve {version.name} v{version.version} for {target.alias!r}?\n\n"
        f"The gate passed. Approve to promote it; reject (or no answer within {timeout} s) keeps "
        f"{target.alias!r} where it is.\n\n{report_markdown(candidate.report, name=version.name)}"
    )
    form = ApprovalInput.with_initial_data(description=description, approve=False)
    key = f"approve-{version.name}-v{version.version}"
    suspendable = _suspendable()
    context = FlowRunContext.get()
    waiting_run = str(context.flow_run.id) if context is not None and context.flow_run is not None else run_id
    waiting = f"{version.name} v{version.version}"
    logger.info(
        _waiting_message(waiting, alias=target.alias, timeout=timeout, flow_run_id=waiting_run, suspended=suspendable)
    )
    try:
        if not suspendable:
            answer = pause_flow_run(wait_for_input=form, timeout=timeout, poll_interval=min(5, timeout), key=key)
        else:
            # Recorded before suspending: the process ends inside suspend_flow_run, and the run
            # resumed after the answer reads it back to go on from here.
            storage.write_file(_awaiting_url(target, run_id), candidate.model_dump_json(indent=2).encode())
            answer = suspend_flow_run(wait_for_input=form, timeout=timeout, key=key)
        decision = ApprovalDecision(approved=answer.approve, reviewer=answer.reviewer, comment=answer.comment)
    except FlowPauseTimeout:
        decision = ApprovalDecision(approved=False, reviewer="timeout", comment=f"no answer within {timeout} s")
    registry = ModelRegistry(storage.registry_url(target.root))
    review = registry.record_review(
        version.name,
        version.version,
        approved=decision.approved,
        reviewer=decision.reviewer,
        comment=decision.comment,
    )
    storage.remove_file(_awaiting_url(target, run_id))  # answered: a later retry of this run starts over
    decision = ApprovalDecision(approved=review["approved"], reviewer=review["reviewer"], comment=review["comment"])
    logger.info("%s v%d %s", version.name, version.version, decision.describe())
    return decision


def awaiting_approval(target: RunTarget, run_id: str) -> Candidate | None:
    """The candidate this run was suspended with, if it is a run resumed after a person's answer.

    Only a deployment's run can have been suspended (the flow asks only when ``gate.approval``
    is manual): every other run starts without touching storage here (a store that is down fails the step that needs
    it, with that step's retries, not the start of the flow).

    Args:
        target: the storage root the run folder is under.
        run_id: the flow run's id.
    """
    if not _suspendable():
        return None
    body = storage.read_file(_awaiting_url(target, run_id))
    return None if body is None else Candidate.model_validate_json(body)


def _waiting_message(candidate: str, *, alias: str, timeout: int, flow_run_id: str, suspended: bool) -> str:
    """What a person needs to answer the waiting run: its id, its page, the calls that approve or reject it.

    A paused run waits in this process, so the person is on this machine and this
    interpreter has Prefect; a suspended run's process is gone, and its worker's
    interpreter means nothing to the person: then ``python``.
    """
    python = "python" if suspended else shlex.quote(sys.executable)
    api_url = PREFECT_API_URL.value()
    server = f"PREFECT_API_URL={shlex.quote(api_url)} " if api_url else ""

    def answer(approve: bool) -> str:
        call = (
            f"from prefect.flow_runs import resume_flow_run; resume_flow_run('{flow_run_id}', "
            f"run_input={{'approve': {approve}, 'reviewer': 'YOUR NAME', 'comment': 'WHY'}})"
        )
        return f'{server}{python} -c "{call}"'

    lines = [f"{candidate} waits up to {timeout} s for approval to take {alias!r}: flow run {flow_run_id}"]
    page = url_for("flow-run", obj_id=flow_run_id)
    lines.append(f"  answer the form at {page}, or from a shell:" if page else "  answer from a shell:")
    lines += [f"  approve: {answer(True)}", f"  reject:  {answer(False)}"]
    return "\n".join(lines)


def _suspendable() -> bool:
    """A deployment's run, not a subflow: the only runs Prefect's server lets suspend."""
    context = FlowRunContext.get()
    run = context.flow_run if context is not None else None
    return run is not None and run.deployment_id is not None and run.parent_task_run_id is None


def _awaiting_url(target: RunTarget, run_id: str) -> str:
    return storage.join(storage.run_url(target.root, run_id), AWAITING_FILE)
