"""A dataset's statistics as the Prefect UI shows them: a table per split, then plots.

Kept apart from tasks/data/statistics.py (plain numpy, no rendering). The ingest task publishes
this as the ``dataset-statistics`` artifact on every run, so a run's page says what the
model was trained on, reused dataset or not.
"""

from __future__ import annotations

from kerasflow.tasks.data.statistics import (
    CategoricalStats,
    ColumnStats,
    DatasetStatistics,
    NumericStats,
    SplitStatistics,
)
from kerasflow.tasks.data.text_statistics import TextStats
from kerasflow.tasks.learning import plots

# Columns a split's table lists, and columns drawn: a 500-column table stays a page, not a scroll.
MAX_ROWS = 50
MAX_PLOTS = 12
HISTOGRAM_BINS = 20
TOP_VALUES = 15

__all__ = ["distribution", "markdown"]


def markdown(fingerprint: str, statistics: DatasetStatistics) -> str:
    """Every split's table, then the training split's distributions (label first) drawn as one figure.

    Args:
        fingerprint: the dataset's fingerprint, in the heading.
        statistics: the dataset's statistics.

    Returns:
        Markdown, the figure embedded as a PNG.
    """
    sections = [f"### Dataset {fingerprint}: statistics"]
    sections += [_split_markdown(split, stats) for split, stats in statistics.splits.items()]
    train = statistics.splits.get("train")
    if train is not None:
        drawn = ([("label", train.label)] if train.label is not None else []) + list(train.columns.items())
        panels = [(name, *distribution(column)) for name, column in drawn[:MAX_PLOTS]]
        if panels:
            sections.append(f"#### train: distributions (share of rows){_more(len(drawn), MAX_PLOTS)}")
            sections.append(plots.embed_png(plots.distribution_grid_png(panels), alt="training split distributions"))
    return "\n\n".join(sections)


def distribution(stats: ColumnStats) -> tuple[list[str], list[float]]:
    """What a plot of one column draws: equal-width bins from min to max, or the top values; shares of rows.

    Returns:
        Two lists: each bar's label (a bin's lower edge, or a value), and each bar's share of the rows present.
    """
    if isinstance(stats, NumericStats):
        if not stats.count:
            return ["(missing)"], [1.0]
        width = (stats.max - stats.min) / HISTOGRAM_BINS
        if width == 0:  # one value: one bar
            return [f"{stats.min:.4g}"], [1.0]
        edges = [stats.min + width * i for i in range(1, HISTOGRAM_BINS)]
        counts = stats.histogram(edges)
        total = counts.sum() or 1.0
        return [f"{stats.min + width * i:.3g}" for i in range(HISTOGRAM_BINS)], [float(c) / total for c in counts]
    top = stats.top(TOP_VALUES)
    total = stats.count or 1
    return [value for value, _ in top], [n / total for _, n in top]


def _split_markdown(split: str, stats: SplitStatistics) -> str:
    lines = [f"#### {split}: {stats.rows} rows"]
    if stats.label is not None:
        lines.append(f"Label: {_describe(stats.label)}")
    if stats.columns:
        shown = list(stats.columns.items())[:MAX_ROWS]
        lines.append(
            "| column | missing | summary |\n|---|---|---|\n"
            + "\n".join(f"| {name} | {_missing(column)} | {_describe(column)} |" for name, column in shown)
            + _more(len(stats.columns), MAX_ROWS)
        )
    return "\n\n".join(lines)


def _describe(stats: ColumnStats) -> str:
    if isinstance(stats, TextStats):
        if not stats.count:
            return "no text"
        median, p95 = stats.quantiles([0.5, 0.95])
        top = ", ".join(f"{token} {n / stats.count:.1%}" for token, n in stats.top(5))
        return (
            f"tokens per text: mean {stats.mean:.4g}, median {median:.4g}, 95% {p95:.4g}, max {stats.max:.4g}; "
            f"{stats.empty} empty; in most texts: {top or '(none)'}"
        )
    if isinstance(stats, NumericStats):
        if not stats.count:
            return "no value present"
        return f"mean {stats.mean:.4g}, std {stats.std:.4g}, min {stats.min:.4g}, max {stats.max:.4g}"
    assert isinstance(stats, CategoricalStats)
    top = ", ".join(f"{value} {n / max(stats.count, 1):.1%}" for value, n in stats.top(5))
    more = f" (+{stats.unique - 5} more)" if stats.unique > 5 else ""
    return f"{stats.unique} value(s): {top}{more}"


def _missing(stats: ColumnStats) -> str:
    total = stats.count + stats.missing
    return f"{stats.missing} ({stats.missing / total:.1%})" if stats.missing else "0"


def _more(total: int, shown: int) -> str:
    return (
        f"\n\n({total - shown} more not shown; all of them are in statistics.json beside the dataset)"
        if total > shown
        else ""
    )
