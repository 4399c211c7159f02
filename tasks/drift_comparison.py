"""Two datasets' statistics compared column by column, as TFDV measures drift and skew.

- A number column: the Jensen-Shannon divergence (base 2, so 0 to 1) of its histograms
  over twenty bins at the baseline's 5 %-quantiles (from the fixed buckets of
  tasks/data/numeric_statistics.py: two datasets compare without either read again).
- A text column: the same, of its texts' lengths in tokens (tasks/data/text_statistics.py).
- A categorical column, and a classifier's label: the L-infinity distance of the value
  shares, a missing value counted as a value of its own (the largest change of any one
  value's share).

Measured here: a normal column moved by one standard deviation is at 0.16, by half of one
at 0.04, and two samples of 1,000 rows of the same column at about 0.006; a new category
taking half the rows is at 0.5. The defaults (0.1 each) sit between.

A changed schema (a column added, removed or of another kind) is not drift: one error names
it. Plain functions, nothing read from storage: the drift step (tasks/drift.py) and batch
scoring's skew (tasks/score/) both compare with them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from kerasflow.tasks.data.categorical_statistics import CategoricalStats
from kerasflow.tasks.data.numeric_statistics import NumericStats
from kerasflow.tasks.data.statistics import ColumnStats, SplitStatistics
from kerasflow.tasks.data.text_statistics import TextStats
from kerasflow.tasks.failures import DataValidationError
from kerasflow.tasks.learning import plots

BINS = 20
LABEL = "label"


class SchemaChanged(DataValidationError):
    """The columns, or their kinds, differ from the baseline's: not drift, a different table."""


class ColumnDrift(BaseModel):
    model_config = ConfigDict(frozen=True)

    column: str
    measure: Literal["jensen_shannon", "l_infinity"]
    distance: float
    threshold: float
    detail: str
    # What a plot draws: the bins (numbers) or values (categories), and both sides' shares.
    bins: list[str]
    baseline: list[float]
    current: list[float]

    @property
    def drifted(self) -> bool:
        return self.distance > self.threshold


class DriftReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    baseline: str  # what was compared against: "fraud-tabular v3's training data (dataset 5f69...)"
    current: str
    columns: list[ColumnDrift]

    def drifted(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.drifted]

    def summary(self) -> str:
        drifted = self.drifted()
        if not drifted:
            return f"no column drifted from {self.baseline} ({len(self.columns)} compared)"
        listed = "; ".join(
            f"{c.column}: {c.measure.replace('_', '-')} {c.distance:.3f} > {c.threshold:g} ({c.detail})"
            for c in drifted
        )
        return f"{len(drifted)} of {len(self.columns)} column(s) drifted from {self.baseline}: {listed}"

    def markdown(self, *, title: str = "Data drift") -> str:
        rows = "\n".join(
            f"| {c.column} | {c.measure.replace('_', '-')} | {c.distance:.4f} | {c.threshold:g} | "
            f"{'**drifted**' if c.drifted else 'ok'} | {c.detail} |"
            for c in self.columns
        )
        return (
            f"### {title}: {len(self.drifted())} of {len(self.columns)} column(s) drifted\n\n"
            f"{self.current} against {self.baseline}\n\n"
            f"| column | measure | distance | threshold | verdict | detail |\n|---|---|---|---|---|---|\n{rows}\n"
        )


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """The Jensen-Shannon divergence, base 2, of two histograms (normalized here).

    Args:
        p: the baseline's counts or shares per bin.
        q: the current counts or shares over the same bins.

    Returns:
        The divergence, 0 (same) to 1.
    """
    p = p / p.sum() if p.sum() else p
    q = q / q.sum() if q.sum() else q
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        present = a > 0
        return float((a[present] * np.log2(a[present] / m[present])).sum())

    return max(0.0, 0.5 * kl(p) + 0.5 * kl(q))


def numeric_drift(column: str, baseline: NumericStats, current: NumericStats, *, threshold: float) -> ColumnDrift:
    """Jensen-Shannon divergence of the two histograms over the baseline's quantile bins (missing as a bin).

    Args:
        column: the column's name.
        baseline: the column's statistics in the baseline.
        current: the column's statistics in the data compared.
        threshold: the divergence above which the column has drifted.
    """
    edges = sorted(set(baseline.quantiles([i / BINS for i in range(1, BINS)])))
    p = np.append(baseline.histogram(edges), baseline.missing).astype(float)
    q = np.append(current.histogram(edges), current.missing).astype(float)
    labels = (
        [
            f"< {edges[0]:.4g}",
            *(f"{a:.4g} - {b:.4g}" for a, b in itertools.pairwise(edges)),
            f">= {edges[-1]:.4g}",
            "(missing)",
        ]
        if edges
        else ["all", "(missing)"]
    )
    if not edges:
        p, q = np.array([p[:-1].sum(), p[-1]]), np.array([q[:-1].sum(), q[-1]])
    detail = f"mean {baseline.mean:.4g} -> {current.mean:.4g}, std {baseline.std:.4g} -> {current.std:.4g}"
    if isinstance(baseline, TextStats):  # a text column is compared by its length
        detail = f"tokens per text: {detail}"
    return _column(column, "jensen_shannon", jensen_shannon(p, q), threshold, detail, labels, p, q)


def categorical_drift(
    column: str, baseline: CategoricalStats, current: CategoricalStats, *, threshold: float, top: int = 10
) -> ColumnDrift:
    """L-infinity distance of the value shares (missing as a value); the detail names the value that moved most.

    Args:
        column: the column's name.
        baseline: the column's statistics in the baseline.
        current: the column's statistics in the data compared.
        threshold: the distance above which the column has drifted.
        top: how many values, by largest share, the report's bins keep.
    """
    p, q = _shares(baseline), _shares(current)
    values = sorted(set(p) | set(q), key=lambda v: (-max(p.get(v, 0.0), q.get(v, 0.0)), v))
    changes = {v: abs(p.get(v, 0.0) - q.get(v, 0.0)) for v in values}
    moved = max(changes, key=lambda v: (changes[v], v)) if changes else None
    distance = changes[moved] if moved is not None else 0.0
    detail = (
        f"{moved!r} {p.get(moved, 0.0):.1%} -> {q.get(moved, 0.0):.1%}" + (" (new)" if moved not in p else "")
        if moved is not None
        else "no values"
    )
    shown = values[:top]
    return _column(
        column,
        "l_infinity",
        distance,
        threshold,
        detail,
        shown,
        np.array([p.get(v, 0.0) for v in shown]),
        np.array([q.get(v, 0.0) for v in shown]),
    )


def _shares(stats: CategoricalStats) -> dict[str, float]:
    total = stats.count + stats.missing
    if not total:
        return {}
    shares = {value: n / total for value, n in stats.values.items()}
    if stats.missing:
        shares["(missing)"] = stats.missing / total
    if stats.other:
        shares["(other values)"] = stats.other / total
    return shares


def _column(column, measure, distance, threshold, detail, bins, p, q) -> ColumnDrift:
    p_total, q_total = float(np.sum(p)) or 1.0, float(np.sum(q)) or 1.0
    return ColumnDrift(
        column=column,
        measure=measure,
        distance=round(float(distance), 6),
        threshold=threshold,
        detail=detail,
        bins=[str(b) for b in bins],
        baseline=[float(v) / p_total for v in p],
        current=[float(v) / q_total for v in q],
    )


def _kind(stats: ColumnStats) -> str:
    if isinstance(stats, TextStats):
        return "text"
    return "numbers" if isinstance(stats, NumericStats) else "categories"


def schema_changes(baseline: SplitStatistics, current: SplitStatistics) -> list[str]:
    """How the columns differ: added, removed, or of another kind (numbers / categories).

    Args:
        baseline: the baseline split's statistics.
        current: the statistics of the split compared.

    Returns:
        One sentence per difference, sorted; empty when the schemas agree.
    """
    changes = [f"column {c!r} is new" for c in current.columns if c not in baseline.columns]
    changes += [f"column {c!r} is gone" for c in baseline.columns if c not in current.columns]
    for name in baseline.columns.keys() & current.columns.keys():
        before, after = _kind(baseline.columns[name]), _kind(current.columns[name])
        if before != after:
            changes.append(f"column {name!r} held {before} and now holds {after}")
    return sorted(changes)


def compare(
    baseline: SplitStatistics,
    current: SplitStatistics,
    *,
    numeric_threshold: float,
    categorical_threshold: float,
    thresholds: Mapping[str, float] | None = None,
    baseline_name: str,
    current_name: str,
    label: bool = True,
) -> DriftReport:
    """Every column of ``current`` against ``baseline`` (and the label when ``label``); SchemaChanged if they differ.

    Args:
        baseline: the baseline split's statistics.
        current: the statistics of the split compared.
        numeric_threshold: the Jensen-Shannon divergence above which a number column has drifted.
        categorical_threshold: the L-infinity distance above which a categorical column has drifted.
        thresholds: column name -> its own threshold, over the two above.
        baseline_name: what the baseline is, for the report and messages.
        current_name: what the compared data is, for the report and messages.
        label: also compare the label, when both have one of the same kind.

    Raises:
        SchemaChanged: a column was added or removed, or holds another kind of values.
    """
    changes = schema_changes(baseline, current)
    if changes:
        raise SchemaChanged(
            f"{current_name}: check 'schema' failed: the columns differ from {baseline_name}: {'; '.join(changes)}. "
            "This is a different table, not drift: fix the source, or, if the change is meant, train once with "
            "validation.drift.enabled=false so the next model's data is the new baseline"
        )
    thresholds = dict(thresholds or {})
    pairs: list[tuple[str, Any, Any]] = [
        (name, baseline.columns[name], stats) for name, stats in current.columns.items()
    ]
    if (
        label
        and baseline.label is not None
        and current.label is not None
        and _kind(baseline.label) == _kind(current.label)
    ):
        pairs.append((LABEL, baseline.label, current.label))
    columns = []
    for name, before, after in pairs:
        if isinstance(before, NumericStats):
            columns.append(numeric_drift(name, before, after, threshold=thresholds.get(name, numeric_threshold)))
        else:
            columns.append(
                categorical_drift(name, before, after, threshold=thresholds.get(name, categorical_threshold))
            )
    return DriftReport(baseline=baseline_name, current=current_name, columns=columns)


# The drifted columns drawn in a report, the furthest past their thresholds first. A figure costs
# about 0.3 s: scoring 40 rows of a 300-column table drew 208 and spent 84 s of its 85 s on them.
MAX_DRAWN = 12


def report_markdown(report: DriftReport, *, title: str, labels: tuple[str, str]) -> str:
    """The report's table and, for the drifted columns furthest past their thresholds, both distributions drawn.

    At most :data:`MAX_DRAWN` columns are drawn; the table lists every column.

    Args:
        report: the drift report.
        title: the heading of the report's table.
        labels: the names of the baseline's and the current distributions in the figures.
    """
    sections = [report.markdown(title=title)]
    drifted = sorted(report.drifted(), key=lambda c: -c.distance / c.threshold if c.threshold > 0 else -math.inf)
    if len(drifted) > MAX_DRAWN:
        sections.append(
            f"{len(drifted)} columns drifted; the {MAX_DRAWN} furthest past their thresholds are drawn below, "
            "every one is in the table above."
        )
    for column in drifted[:MAX_DRAWN]:
        png = plots.distributions_png(
            column.bins,
            column.baseline,
            column.current,
            labels=labels,
            title=f"{column.column}: {column.measure.replace('_', '-')} {column.distance:.3f}",
        )
        sections += [f"#### {column.column}", plots.embed_png(png, alt=f"{column.column} distributions")]
    return "\n\n".join(sections)
