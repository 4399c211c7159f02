"""The gate section of the config tree: absolute bounds, change checks, per class and slice, approval.

What the bounds mean is decided in kerasflow/tasks/gate.py; here they are only shaped.
Re-exported by tasks/config/__init__.py.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from kerasflow.tasks.config.runtime import ConfigSection as _Section


class Bound(_Section):
    """An absolute bound on a metric: ``min <= value <= max``."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> Bound:
        if self.min is None and self.max is None:
            raise ValueError("received a bound with neither min nor max, expected at least one")
        return self


class Change(_Section):
    """The largest regression allowed against the production baseline."""

    max_regression: float = Field(ge=0)
    relative: bool = Field(False, description="max_regression is a fraction of the baseline value")
    higher_is_better: bool | None = Field(None, description="default: False for losses and errors, True otherwise")


class GateConfig(_Section):
    value: dict[str, Bound] = Field(default_factory=dict)
    per_slice: dict[str, dict[str, Bound]] = Field(
        default_factory=dict, description="column -> metric -> bound met by every value, e.g. region: {auc: {min: 0.7}}"
    )
    change: dict[str, Change] = Field(default_factory=dict)
    per_class: dict[Literal["recall", "precision", "accuracy"], Bound] = Field(
        default_factory=dict, description="bounds every class must meet, e.g. recall: {min: 0.8}"
    )
    approval: Literal["auto", "manual"] = Field(
        "auto", description="manual: after a passed gate, wait for a person to approve in the Prefect UI"
    )
    approval_timeout_seconds: int = Field(3600, ge=1, description="no answer by then rejects the candidate")
    unusable_baseline: Literal["reject", "ignore"] = Field(
        "reject",
        description="when the model under the alias exists but cannot be loaded or evaluated: reject the candidate "
        "(a planted or broken production model must not switch the change checks off), or ignore it and judge "
        "on absolute bounds alone (e.g. after changing the model's inputs)",
    )
