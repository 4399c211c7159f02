"""Manual approval: after a passed gate, a person approves or rejects in the Prefect UI.

The flow run pauses with a form (``ApprovalInput``) whose description is the gate report;
answering it resumes the run. Approve promotes; reject records the decision and its
comment beside the version (``review.json``; the version can then never take an alias);
no answer before ``gate.approval_timeout_seconds`` rejects. Called from the flow, not a
task: a pause belongs to the flow run.
"""

from __future__ import annotations

from prefect import get_run_logger, pause_flow_run
from prefect.exceptions import FlowPauseTimeout
from prefect.input import RunInput
from pydantic import BaseModel, ConfigDict, Field

from kerasflow.models.registry import ModelRegistry
from kerasflow.tasks import storage
from kerasflow.tasks.config import TrainConfig
from kerasflow.tasks.gate import GateRejected, report_markdown
from kerasflow.tasks.refs import GateReport, ModelVersion

__all__ = ["ApprovalDecision", "ApprovalInput", "ApprovalRejected", "request_approval"]


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


def request_approval(version: ModelVersion, report: GateReport, *, config: TrainConfig) -> ApprovalDecision:
    """Pause the flow run until a person answers; record and return the decision."""
    logger = get_run_logger()
    timeout = config.gate.approval_timeout_seconds
    description = (
        f"## Approve {version.name} v{version.version} for {config.registry.alias!r}?\n\n"
        f"The gate passed. Approve to promote it; reject (or no answer within {timeout} s) keeps "
        f"{config.registry.alias!r} where it is.\n\n{report_markdown(report, name=version.name)}"
    )
    logger.info("waiting up to %d s for a person to approve %s v%d", timeout, version.name, version.version)
    try:
        answer = pause_flow_run(
            wait_for_input=ApprovalInput.with_initial_data(description=description, approve=False),
            timeout=timeout,
            poll_interval=min(5, timeout),
            key=f"approve-{version.name}-v{version.version}",
        )
        decision = ApprovalDecision(approved=answer.approve, reviewer=answer.reviewer, comment=answer.comment)
    except FlowPauseTimeout:
        decision = ApprovalDecision(approved=False, reviewer="timeout", comment=f"no answer within {timeout} s")
    registry = ModelRegistry(storage.registry_url(config.storage.root))
    review = registry.record_review(
        version.name,
        version.version,
        approved=decision.approved,
        reviewer=decision.reviewer,
        comment=decision.comment,
    )
    decision = ApprovalDecision(approved=review["approved"], reviewer=review["reviewer"], comment=review["comment"])
    logger.info("%s v%d %s", version.name, version.version, decision.describe())
    return decision
