"""A text column's statistics: tokens per text and each token's texts, merged, stored, summarized and compared."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kerasflow.tasks.data.statistics import SplitStatistics, split_statistics, summarize
from kerasflow.tasks.data.statistics_report import markdown
from kerasflow.tasks.data.text_statistics import MAX_VOCABULARY, TextStats
from kerasflow.tasks.drift_comparison import SchemaChanged, compare
from tests.tables import TICKET_FILLER, tickets_frame


def descriptions(rows: int, *, seed: int, words: int = 8) -> np.ndarray:
    return tickets_frame(rows, seed=seed, words=words)["description"].to_numpy(dtype=object)


def test_texts_are_counted_by_their_tokens_and_add_up_across_parts():
    texts = np.array(["Refund NOT received!", "", None, "refund, please", "!!!"], dtype=object)
    stats = TextStats()
    stats.add(texts)
    assert (stats.count, stats.missing, stats.empty) == (5, 0, 3), "a missing text is the empty text"
    assert (stats.mean, stats.min, stats.max) == (1.0, 0.0, 3.0)
    assert stats.top(2) == [("refund", 2), ("not", 1)]
    # Two parts merged are the whole, and the JSON form reads back the same.
    first, second = TextStats(), TextStats()
    first.add(texts[:2])
    second.add(texts[2:])
    first.merge(second)
    assert first.to_json() == stats.to_json()
    again = TextStats.from_json(json.loads(json.dumps(stats.to_json())))
    assert again.to_json() == stats.to_json() and again.quantiles([0.5]) == stats.quantiles([0.5])
    split = SplitStatistics.from_json(split_statistics({"d": texts}, text=["d"]).to_json())
    assert isinstance(split.columns["d"], TextStats) and split.columns["d"].documents == stats.documents


def test_the_tokens_counted_are_bounded_and_the_most_frequent_kept_exactly():
    rng = np.random.default_rng(0)
    rare = [f"w{i}" for i in range(3 * MAX_VOCABULARY)]
    texts = [f"common {rare[i]}" if i % 2 else "common frequent" for i in range(len(rare))]
    stats = TextStats()
    for chunk in np.array_split(np.array(rng.permutation(texts), dtype=object), 7):
        stats.add(chunk)
    assert len(stats.documents) <= 2 * MAX_VOCABULARY and len(stats.to_json()["documents"]) == MAX_VOCABULARY
    assert stats.top(2) == [("common", len(texts)), ("frequent", len(texts) // 2)]


def test_a_text_column_is_summarized_and_compared_by_its_length():
    baseline = split_statistics({"description": descriptions(600, seed=1)}, text=["description"])
    same = split_statistics({"description": descriptions(600, seed=2)}, text=["description"])
    longer = split_statistics({"description": descriptions(600, seed=3, words=20)}, text=["description"])

    summary = summarize(baseline.columns["description"])
    assert summary["kind"] == "text" and 5 < summary["tokens_per_text"]["mean"] < 11
    assert summary["empty"] > 0 and summary["top"][0][0] in TICKET_FILLER
    assert "tokens per text: mean" in markdown("f00", type("S", (), {"splits": {"train": baseline}})())

    kwargs = {"numeric_threshold": 0.1, "categorical_threshold": 0.1, "baseline_name": "v1", "current_name": "now"}
    assert not compare(baseline, same, **kwargs).drifted()
    (drifted,) = compare(baseline, longer, **kwargs).drifted()
    assert drifted.column == "description" and drifted.measure == "jensen_shannon"
    assert drifted.detail.startswith("tokens per text: mean ")
    # Text where categories were is another table, not drift.
    categories = split_statistics({"description": descriptions(600, seed=1)}, categorical=["description"])
    with pytest.raises(SchemaChanged, match=r"column 'description' held categories and now holds text"):
        compare(categories, baseline, **kwargs)
