"""Decisions with confidence: each mode's three outcomes, the MDD, the rows that would decide, and Holm."""

from __future__ import annotations

import pytest

from kerasflow.tasks.confidence import decide_change, holm_adjusted, one_sided_p, z_of


@pytest.mark.parametrize(
    ("mode", "margin", "improvement", "se", "verdict"),
    [
        # non_inferiority: pass when the interval's lower end is at least -margin, fail when its upper end is below.
        ("non_inferiority", 0.01, 0.000, 0.004, "pass"),  # [-0.0078, +0.0078] >= -0.01
        ("non_inferiority", 0.01, -0.004, 0.006, "inconclusive"),  # [-0.0158, +0.0078] straddles -0.01
        ("non_inferiority", 0.01, -0.030, 0.006, "fail"),  # [-0.0418, -0.0182] < -0.01
        ("non_inferiority", 0.00, 0.000, 0.000, "pass"),  # the same predictions on every row
        ("non_inferiority", 0.00, 0.020, 0.005, "pass"),  # shown better
        # superiority: pass when the lower end is above the margin, fail when the upper end is below it.
        ("superiority", 0.00, 0.020, 0.005, "pass"),
        ("superiority", 0.00, 0.000, 0.000, "inconclusive"),  # equal to production: not shown better
        ("superiority", 0.00, 0.004, 0.006, "inconclusive"),
        ("superiority", 0.01, 0.020, 0.004, "pass"),  # [+0.0122, +0.0278] > 0.01
        ("superiority", 0.01, 0.012, 0.004, "inconclusive"),
        ("superiority", 0.00, -0.020, 0.005, "fail"),  # shown worse, so not better
    ],
)
def test_each_mode_has_three_outcomes(mode, margin, improvement, se, verdict):
    outcome = decide_change(improvement, se, mode=mode, margin=margin, confidence=0.95, rows=1000)
    assert outcome.verdict == verdict
    assert outcome.low == pytest.approx(improvement - 1.959964 * se) and outcome.high >= outcome.low
    on_the_boundary = mode == "superiority" and improvement == margin  # no test size decides it
    assert (outcome.rows_needed is not None) == (verdict == "inconclusive" and not on_the_boundary)


def test_the_issues_251_rows_the_mdd_and_the_rows_that_would_decide():
    # One row of 251 worse, a discordance of 3%: the paired sd of the difference, per row.
    se = ((0.03 - (1 / 251) ** 2) / 251) ** 0.5
    outcome = decide_change(-1 / 251, se, mode="non_inferiority", margin=0.01, confidence=0.95, rows=251)
    assert outcome.verdict == "inconclusive"
    assert outcome.mdd == pytest.approx((1.959964 + 0.841621) * se, rel=1e-5)
    # At that many rows the interval, as wide as 80% power asks, clears -0.01 from -1/251.
    grown = outcome.rows_needed
    assert grown == pytest.approx(251 * ((1.959964 + 0.841621) * se / (0.01 - 1 / 251)) ** 2, abs=1)
    assert 5_000 < grown < 8_000
    wider = decide_change(
        -1 / 251, se * (251 / grown) ** 0.5, mode="non_inferiority", margin=0.01, confidence=0.95, rows=grown
    )
    assert wider.verdict == "pass"


def test_confidence_sets_the_width():
    assert z_of(0.95) == pytest.approx(1.959964, rel=1e-6) and z_of(0.9) == pytest.approx(1.644854, rel=1e-6)
    with pytest.raises(ValueError, match=r"received confidence=1\.5"):
        z_of(1.5)


def test_holm_adjusts_step_down_and_keeps_the_order():
    assert holm_adjusted([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjusted([]) == []
    assert one_sided_p(0.7, 0.05, 0.8, side="min") == pytest.approx(0.02275, rel=1e-3)
    assert one_sided_p(0.9, 0.05, 0.8, side="max") == pytest.approx(0.02275, rel=1e-3)
    assert one_sided_p(0.7, 0.0, 0.8, side="min") == 0.0 and one_sided_p(0.9, 0.0, 0.8, side="min") == 1.0
