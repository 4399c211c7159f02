"""The gate section of the config tree: absolute bounds, change checks with confidence, per class and slice, approval.

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
    """A decision on candidate - baseline on the same test rows, with confidence (docs/concepts/gate.md).

    ``non_inferiority`` (the default, what ``max_regression`` always meant) passes when the
    interval shows the regression is at most ``max_regression``; ``superiority`` passes only
    when it shows an improvement of more than ``min_improvement``.
    """

    mode: Literal["non_inferiority", "superiority"] = Field(
        "non_inferiority",
        description="non_inferiority: shown not worse than max_regression; superiority: shown better by more than "
        "min_improvement",
    )
    max_regression: float = Field(0.0, ge=0, description="non_inferiority's margin, in the metric's units")
    min_improvement: float = Field(0.0, ge=0, description="superiority's margin, in the metric's units")
    relative: bool = Field(False, description="the margin is a fraction of the baseline value")
    higher_is_better: bool | None = Field(None, description="default: False for losses and errors, True otherwise")
    confidence: float | None = Field(
        None, gt=0.5, lt=1, description="two-sided confidence of the interval; default: gate.confidence"
    )

    @model_validator(mode="after")
    def _margin_of_its_mode(self) -> Change:
        other = "min_improvement" if self.mode == "non_inferiority" else "max_regression"
        # A value, not the key's presence: a config dumped and read back (a deployment's parameters, the
        # recorded config) holds both margins, the other one at its default 0.
        if getattr(self, other):
            expected = "superiority" if other == "min_improvement" else "non_inferiority"
            raise ValueError(f"received {other} with mode {self.mode}, expected it with mode {expected}")
        return self

    @property
    def margin(self) -> float:
        """The margin of the check's mode."""
        return self.max_regression if self.mode == "non_inferiority" else self.min_improvement


class GateConfig(_Section):
    value: dict[str, Bound] = Field(default_factory=dict)
    per_slice: dict[str, dict[str, Bound]] = Field(
        default_factory=dict, description="column -> metric -> bound met by every value, e.g. region: {auc: {min: 0.7}}"
    )
    change: dict[str, Change] = Field(default_factory=dict)
    per_class: dict[Literal["recall", "precision", "accuracy"], Bound] = Field(
        default_factory=dict, description="bounds every class must meet, e.g. recall: {min: 0.8}"
    )
    confidence: float = Field(
        0.95, gt=0.5, lt=1, description="two-sided confidence of every interval (change, per-class, per-slice checks)"
    )
    inconclusive: Literal["keep_production", "reject", "promote"] = Field(
        "keep_production",
        description="when the test split cannot tell: keep_production (not promoted, recorded as kept), reject "
        "(recorded as a rejection), promote",
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
