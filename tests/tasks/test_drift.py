"""Drift between two datasets' statistics, with real shifts: TFDV's measures, thresholds, schema changes."""

from __future__ import annotations

import re

import numpy as np
import pytest

from kerasflow.tasks.data.statistics import split_statistics
from kerasflow.tasks.drift import SchemaChanged, compare

rng = np.random.default_rng(7)
COUNTRIES = np.array(["de", "fr", "gb", "us"], dtype=object)


def table(rows: int, *, shift: float = 0.0, dominant: str | None = None, missing: float = 0.0):
    amount = rng.normal(100, 15, rows) + shift * 15
    amount[rng.random(rows) < missing] = np.nan
    country = rng.choice(COUNTRIES, rows)
    if dominant is not None:
        country[rng.random(rows) < 0.5] = dominant
    return split_statistics(
        {"amount": amount, "hour": rng.uniform(0, 24, rows), "country": country},
        categorical=["country"],
        labels=rng.integers(0, 2, rows),
        class_names=["ok", "fraud"],
    )


def drift(current, baseline=None, **thresholds):
    return compare(
        baseline or table(5000),
        current,
        numeric_threshold=0.1,
        categorical_threshold=0.1,
        thresholds=thresholds,
        baseline_name="production's data",
        current_name="new data",
    )


def by_column(report):
    return {c.column: c for c in report.columns}


def test_a_number_moved_by_one_standard_deviation_drifts_and_unchanged_columns_do_not():
    report = drift(table(5000, shift=1.0))
    columns = by_column(report)
    assert columns["amount"].drifted and columns["amount"].distance > 0.12
    assert columns["amount"].measure == "jensen_shannon"
    assert re.fullmatch(r"mean (99|100)\.\d+ -> 11[45]\.\d+, std 1[45]\.\d+ -> 1[45]\.\d+", columns["amount"].detail)
    assert len(columns["amount"].bins) == 21, "20 bins at the baseline's 5 % quantiles, and the missing values"
    for unchanged in ("hour", "country", "label"):
        assert not columns[unchanged].drifted and columns[unchanged].distance < 0.05, unchanged
    assert [c.column for c in report.drifted()] == ["amount"]
    assert "1 of 4 column(s) drifted from production's data: amount: jensen-shannon" in report.summary()
    # Half a standard deviation stays under the default threshold; a column's own threshold catches it.
    half = table(5000, shift=0.5)
    assert not by_column(drift(half))["amount"].drifted
    assert by_column(drift(half, amount=0.02))["amount"].drifted
    # The same distribution sampled again is far below the threshold, small samples included.
    assert by_column(drift(table(300)))["amount"].distance < 0.05


def test_a_new_dominant_category_drifts_by_l_infinity():
    column = by_column(drift(table(5000, dominant="ng")))["country"]
    assert column.drifted and column.measure == "l_infinity" and column.distance == pytest.approx(0.5, abs=0.03)
    assert column.detail.startswith("'ng' 0.0% -> ") and column.detail.endswith("(new)")
    assert column.bins[0] == "ng" and column.current[0] == pytest.approx(0.5, abs=0.03)


def test_numbers_going_missing_drift():
    column = by_column(drift(table(5000, missing=0.4)))["amount"]
    assert column.drifted and column.bins[-1] == "(missing)" and column.current[-1] == pytest.approx(0.4, abs=0.03)


def test_a_schema_change_is_an_error_naming_it_not_drift():
    baseline = table(2000)
    renamed = table(2000)
    renamed.columns["amount_eur"] = renamed.columns.pop("amount")
    with pytest.raises(SchemaChanged, match=r"column 'amount' is gone; column 'amount_eur' is new"):
        drift(renamed, baseline)
    retyped = table(2000)
    retyped.columns["hour"] = split_statistics(
        {"hour": np.array(["a", "b"], dtype=object)}, categorical=["hour"]
    ).columns["hour"]
    with pytest.raises(SchemaChanged, match=r"column 'hour' held numbers and now holds categories"):
        drift(retyped, baseline)


def test_a_report_of_many_drifted_columns_draws_only_the_furthest_past_their_thresholds():
    """Scoring 40 rows of a 300-column table drew 208 figures (84 s of its 85 s); the table still lists all."""
    from kerasflow.tasks.drift_comparison import MAX_DRAWN, ColumnDrift, DriftReport, report_markdown

    def column(i: int) -> ColumnDrift:
        return ColumnDrift(column=f"f{i}", measure="jensen_shannon", distance=0.2 + i / 100, threshold=0.1,
                           detail="moved", bins=["a", "b"], baseline=[0.5, 0.5], current=[0.1, 0.9])  # fmt: skip

    report = DriftReport(baseline="training data", current="scored rows", columns=[column(i) for i in range(30)])
    markdown = report_markdown(report, title="Training/serving skew", labels=("training data", "scored rows"))
    drawn = re.findall(r"^#### (f\d+)$", markdown, flags=re.M)
    assert drawn == [f"f{i}" for i in range(29, 29 - MAX_DRAWN, -1)], "the furthest past the threshold first"
    assert markdown.count("data:image/png") == MAX_DRAWN
    assert all(f"| f{i} |" in markdown for i in range(30)), "every column stays in the table"
    assert f"30 columns drifted; the {MAX_DRAWN} furthest" in markdown
