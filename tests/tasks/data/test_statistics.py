"""Statistics of a split: exact counts and moments, quantiles from fixed buckets, merged across files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kerasflow.tasks.data.statistics import (
    MAX_VALUES,
    CategoricalStats,
    DatasetStatistics,
    NumericStats,
    SplitStatistics,
    bucket_of,
    bucket_value,
    merged,
    split_statistics,
    summary,
)

rng = np.random.default_rng(0)


def test_numbers_have_exact_moments_and_quantiles_within_a_bucket():
    values = rng.normal(50, 20, 20_000)
    values[::50] = np.nan
    stats = NumericStats()
    stats.add(values)
    present = values[~np.isnan(values)]
    assert stats.count == len(present) and stats.missing == 400
    assert np.isclose(stats.mean, present.mean()) and np.isclose(stats.std, present.std())
    assert stats.min == present.min() and stats.max == present.max()
    for share, exact in zip([0.1, 0.5, 0.9], np.quantile(present, [0.1, 0.5, 0.9]), strict=True):
        assert abs(stats.quantiles([share])[0] - exact) <= 0.05 * abs(exact)
    # The bucket edges are fixed: every value lies within 9 % of its bucket's middle.
    sample = np.array([-1e6, -3.5, -1e-3, 0.0, 1e-13, 2e-3, 1.0, 7.25, 4e9])
    middles = np.array([bucket_value(int(b)) for b in bucket_of(sample)])
    np.testing.assert_allclose(middles[np.abs(sample) >= 2**-40], sample[np.abs(sample) >= 2**-40], rtol=0.05)


def test_statistics_of_parts_merge_into_those_of_the_whole():
    numbers = rng.lognormal(2, 1, 9_000)
    text = rng.choice(["a", "b", "c", "(missing)"], 9_000).astype(object)
    labels = rng.integers(0, 3, 9_000)
    kwargs = {"categorical": ["c"], "class_names": ["x", "y", "z"], "missing_tokens": {"c": "(missing)"}}
    whole = split_statistics({"n": numbers, "c": text}, labels=labels, **kwargs)
    parts = [
        DatasetStatistics({"train": split_statistics({"n": numbers[s], "c": text[s]}, labels=labels[s], **kwargs)})
        for s in (slice(0, 1000), slice(1000, 1007), slice(1007, 9000))
    ]
    combined = merged(parts).splits["train"]
    assert combined.rows == whole.rows == 9_000
    n, whole_n = combined.columns["n"], whole.columns["n"]
    assert n.count == whole_n.count and n.buckets == whole_n.buckets
    assert np.isclose(n.mean, whole_n.mean) and np.isclose(n.std, whole_n.std)
    assert combined.columns["c"].values == whole.columns["c"].values
    assert combined.columns["c"].missing == whole.columns["c"].missing == int((text == "(missing)").sum())
    assert combined.label.values == whole.label.values and sum(combined.label.values.values()) == 9_000
    # JSON and back is the same record; the summary lists the top values only.
    again = SplitStatistics.from_json(json.loads(json.dumps(combined.to_json())))
    assert again.to_json() == combined.to_json()
    short = summary(DatasetStatistics({"train": combined}))["train"]
    assert short["columns"]["c"]["unique"] == 3 and "buckets" not in short["columns"]["n"]


def test_a_column_of_many_values_keeps_the_most_frequent():
    stats = CategoricalStats()
    common = np.repeat(np.array(["common-1", "common-2"], dtype=object), 100)
    stats.add(np.concatenate([common, np.array([f"rare-{i}" for i in range(MAX_VALUES + 500)], dtype=object)]))
    # 2 + 10,500 distinct values: the 2 common ones and 9,998 rare ones are kept, 502 rare ones are "other".
    assert stats.unique == MAX_VALUES and stats.other == 502
    assert stats.top(2) == [("common-1", 100), ("common-2", 100)]
    assert stats.count == 200 + MAX_VALUES + 500 == sum(stats.values.values()) + stats.other


def test_the_statistics_report_lists_every_split_and_draws_the_training_split_once():
    from kerasflow.tasks.data import statistics_report

    amounts = np.random.default_rng(9).normal(50, 10, 1000)  # its own draws: the report must not follow test order
    amounts[:30] = np.nan
    countries = np.array(["de"] * 700 + ["fr"] * 300, dtype=object)
    labels = np.array([0] * 990 + [1] * 10)
    split = split_statistics(
        {"amount": amounts, "country": countries, "constant": np.ones(1000)},
        categorical=["country"],
        labels=labels,
        class_names=["legit", "fraud"],
    )
    wide = split_statistics({f"c{i}": np.arange(10.0) for i in range(60)})
    report = statistics_report.markdown("abc", DatasetStatistics({"train": split, "test": wide}))

    assert "#### train: 1000 rows" in report and "Label: 2 value(s): legit 99.0%, fraud 1.0%" in report
    assert "| amount | 30 (3.0%) | mean 50" in report and "| country | 0 | 2 value(s): de 70.0%, fr 30.0% |" in report
    assert "#### test: 10 rows" in report and "| c49 |" in report and "| c50 |" not in report
    assert "(10 more not shown" in report
    assert report.count("data:image/png;base64,") == 1, "one figure of the training split, not one per column"
    bins, shares = statistics_report.distribution(split.columns["amount"])
    assert len(bins) == statistics_report.HISTOGRAM_BINS and sum(shares) == pytest.approx(1.0)
    assert statistics_report.distribution(split.columns["constant"]) == (["1"], [1.0])
