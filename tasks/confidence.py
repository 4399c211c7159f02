"""Decisions with confidence: a change's outcome from its estimate and standard error, and Holm's correction.

Pure functions of numbers, no I/O (the gate, tasks/gate.py, stays a pure function of the
evidence and the config). Everything speaks of the *improvement*: candidate - baseline
in the metric's better direction (for a loss, baseline - candidate), whose two-sided
interval at ``confidence`` is ``improvement ± z·se``.

- ``non_inferiority`` (margin ``m`` = ``max_regression``): **pass** when the interval's
  lower end is at least ``-m`` (the regression is shown to be at most ``m``; a candidate
  that predicts as production does, interval [0, 0], passes at ``m = 0``); **fail** when
  its upper end is below ``-m`` (shown to regress by more); else **inconclusive**.
- ``superiority`` (margin ``m`` = ``min_improvement``): **pass** when the lower end is
  above ``m`` (shown better by more than ``m``); **fail** when the upper end is below
  ``m`` (shown not to be better by ``m``); else, including a candidate equal to
  production at ``m = 0``, **inconclusive**.

The minimum detectable difference (MDD) is ``(z + z_0.80)·se``: how far the true
improvement must lie from the decision boundary for the interval to clear it 80% of the
time. An inconclusive check's rows needed scale the test size by
``((z + z_0.80)·se / |improvement - boundary|)²``: the test size at which the difference
seen now would be decided with 80% power, assuming the per-row spread stays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

__all__ = ["Outcome", "decide_change", "holm_adjusted", "one_sided_p", "z_of"]

POWER = 0.80
_NORMAL = NormalDist()
Verdict = Literal["pass", "fail", "inconclusive"]


def z_of(confidence: float) -> float:
    """The normal quantile of a two-sided interval at ``confidence`` (1.96 at 0.95)."""
    if not 0 < confidence < 1:
        raise ValueError(f"received confidence={confidence}, expected a number between 0 and 1")
    return _NORMAL.inv_cdf(1 - (1 - confidence) / 2)


@dataclass(frozen=True)
class Outcome:
    """A change check decided: the verdict, the improvement's interval, the MDD and the rows that would decide.

    Args:
        verdict: pass, fail or inconclusive.
        low: the improvement's interval, lower end.
        high: its upper end.
        mdd: the minimum detectable difference at this test size (80% power).
        rows_needed: when inconclusive, about how many test rows would decide; None otherwise, or never.
    """

    verdict: Verdict
    low: float
    high: float
    mdd: float
    rows_needed: int | None


def decide_change(
    improvement: float,
    se: float,
    *,
    mode: Literal["non_inferiority", "superiority"],
    margin: float,
    confidence: float,
    rows: int,
) -> Outcome:
    """The outcome of one change check (see the module's docstring for the rules).

    Args:
        improvement: candidate - baseline in the metric's better direction.
        se: its standard error.
        mode: ``non_inferiority`` or ``superiority``.
        margin: ``max_regression`` or ``min_improvement`` (in the improvement's units).
        confidence: the interval's two-sided confidence.
        rows: the test rows the estimate is of.
    """
    z = z_of(confidence)
    low, high = improvement - z * se, improvement + z * se
    if mode == "non_inferiority":
        boundary = -margin
        verdict: Verdict = "pass" if low >= boundary else "fail" if high < boundary else "inconclusive"
    else:
        boundary = margin
        verdict = "pass" if low > boundary else "fail" if high < boundary else "inconclusive"
    power_z = z + _NORMAL.inv_cdf(POWER)
    rows_needed = None
    distance = abs(improvement - boundary)
    if verdict == "inconclusive" and distance > 0 and rows > 0:
        rows_needed = math.ceil(rows * (power_z * se / distance) ** 2)
    return Outcome(verdict=verdict, low=low, high=high, mdd=power_z * se, rows_needed=rows_needed)


def one_sided_p(value: float, se: float, bound: float, *, side: Literal["min", "max"]) -> float:
    """The p-value of "the true value is on the allowed side of ``bound``" given ``value`` measured with ``se``.

    Small when ``value`` lies far on the wrong side (below a min, above a max).

    Args:
        value: the measured value.
        se: its standard error.
        bound: the bound.
        side: ``min`` (value >= bound allowed) or ``max`` (value <= bound allowed).
    """
    shortfall = (bound - value) if side == "min" else (value - bound)
    if se <= 0:
        return 0.0 if shortfall > 0 else 1.0
    return 1 - _NORMAL.cdf(shortfall / se)


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input's order: reject those at most the family's alpha.

    Holm controls the chance of any false failure across the family at alpha, for any
    dependence between the tests, and never rejects fewer than Bonferroni.

    Args:
        p_values: one per hypothesis of the family.
    """
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
