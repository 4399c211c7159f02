"""Gate: may the candidate replace production? A pure function of metrics, evidence and config.

Value checks bound a metric absolutely; change checks decide on candidate - baseline on
the same test rows with an interval (tasks/confidence.py: pass, fail or inconclusive, in
the metric's direction, absolute or relative); per-class and per-slice checks bound a
metric in every class or slice, failing one only when its interval is below the bound
after Holm's correction across them. Without paired evidence (metrics recorded before it,
a team's flow passing Metrics alone) checks compare point values, as before. Without a
baseline change checks report "no baseline" and do not fail (TFX's first-run behaviour).
What an inconclusive gate does is ``gate.inconclusive`` (docs/concepts/gate.md).
"""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from kerasflow.tasks.confidence import decide_change
from kerasflow.tasks.config import Change, GateConfig
from kerasflow.tasks.failures import DeterministicFailure
from kerasflow.tasks.gate_bounds import class_noise, slice_checks, value_check
from kerasflow.tasks.refs import Difference, Evaluation, GateCheck, GateEvidence, GateReport, Metrics

__all__ = ["GateRejected", "decide", "gate", "higher_is_better"]

_LOWER_IS_BETTER = ("loss", "error", "mse", "mae", "rmse")


class GateRejected(DeterministicFailure):
    """The candidate failed the gate; it is registered as rejected and not promoted.

    Attributes:
        summary: the run's summary (a ``RunSummary`` whose outcome is ``rejected``), set by the
            retraining that raised it; None when raised elsewhere.
    """

    summary = None


def higher_is_better(metric: str) -> bool:
    """Losses and errors go down as models improve (and what a task declares so); the rest goes up.

    Decided by the metric's name, so the gate stays a pure function of metrics and config:
    a regression's ``rmse`` may not rise, its ``r2`` may not fall.

    Args:
        metric: the metric's name (``accuracy``, ``val_loss``, ``rmse``...).
    """
    from kerasflow.tasks.learning.learning_tasks import TASK_REGISTRY

    if any(task.is_lower_better(metric) for task in TASK_REGISTRY.items.values()):
        return False
    return not any(token in metric.lower() for token in _LOWER_IS_BETTER)


def decide(
    candidate: Metrics,
    baseline: Metrics | None,
    config: GateConfig,
    *,
    baseline_version: int | None = None,
    baseline_error: str | None = None,
    alias_version: int | None = None,
    evidence: GateEvidence | None = None,
) -> GateReport:
    """Run every configured check; a failed one rejects, an inconclusive one is ``config.inconclusive``'s to decide.

    ``baseline_error`` says the model under the alias exists but could not be measured.
    Judging without it would silently switch the change checks off, which is what a
    planted production model is after; so, unless ``config.unusable_baseline`` is
    "ignore", that is a failed check of its own. ``alias_version``: the version under the
    alias when the candidate was evaluated, measured or not; promotion moves the alias
    only from it (tasks/register.py).

    Args:
        candidate: the candidate's metrics on the test split.
        baseline: the production model's metrics on the same split; None when there is none or it could not
            be measured.
        config: the recipe's ``gate`` section.
        baseline_version: the version the baseline's metrics are of.
        baseline_error: why the model under the alias could not be measured; None when it was, or there is none.
        alias_version: the version under the alias at evaluation; None for ``baseline_version``.
        evidence: the paired differences and slices' noise measured with the metrics; None: point comparisons.
    """
    checks = [_baseline_check(baseline_error, config)] if baseline_error is not None else []
    checks += [
        value_check(metric, side, threshold, candidate)
        for metric, bound in sorted(config.value.items())
        for side, threshold in (("min", bound.min), ("max", bound.max))
        if threshold is not None
    ]
    changes = evidence.changes if evidence is not None and baseline is not None else {}
    checks += [
        _change_check(
            metric,
            change,
            candidate,
            baseline,
            paired=changes.get(metric),
            confidence=change.confidence or config.confidence,
            rows=evidence.rows if evidence else 0,
        )
        for metric, change in sorted(config.change.items())
    ]
    slices = evidence.slices if evidence is not None else {}
    checks += [
        check
        for column, bounds in sorted(config.per_slice.items())
        for metric, bound in sorted(bounds.items())
        for side, threshold in (("min", bound.min), ("max", bound.max))
        if threshold is not None
        for check in slice_checks(
            metric,
            side,
            threshold,
            candidate,
            column=column,
            noise={v: m[metric] for v, m in slices.get(column, {}).items() if metric in m},
            confidence=config.confidence,
        )
    ]
    checks += [
        check
        for metric, bound in sorted(config.per_class.items())
        for side, threshold in (("min", bound.min), ("max", bound.max))
        if threshold is not None
        for check in slice_checks(
            metric, side, threshold, candidate, noise=class_noise(metric, candidate), confidence=config.confidence
        )
    ]
    verdicts = {c.verdict for c in checks}
    decision = "fail" if "fail" in verdicts else "inconclusive" if "inconclusive" in verdicts else "pass"
    return GateReport(
        passed=decision == "pass" or (decision == "inconclusive" and config.inconclusive == "promote"),
        checks=checks,
        decision=decision,
        inconclusive_policy=config.inconclusive,
        baseline_version=baseline_version,
        alias_version=alias_version if alias_version is not None else baseline_version,
    )


def _baseline_check(error: str, config: GateConfig) -> GateCheck:
    ignored = config.unusable_baseline == "ignore"
    return GateCheck(
        metric="baseline",
        kind="baseline",
        value=None,
        threshold="the production model loads and is evaluated",
        verdict="no baseline" if ignored else "fail",
        detail=f"{error}"
        + (
            "; judged on absolute bounds alone (gate.unusable_baseline: ignore)"
            if ignored
            else "; fix or roll back the production model, or set gate.unusable_baseline: ignore to judge "
            "the candidate on absolute bounds alone"
        ),
    )


def _change_check(
    metric: str,
    change: Change,
    candidate: Metrics,
    baseline: Metrics | None,
    *,
    paired: Difference | None = None,
    confidence: float = 0.95,
    rows: int = 0,
) -> GateCheck:
    """Candidate - baseline in the metric's direction, decided with its interval (point values without evidence)."""
    value = candidate.values.get(metric)
    up = change.higher_is_better if change.higher_is_better is not None else higher_is_better(metric)
    unit = " of baseline" if change.relative else ""
    base = baseline.values.get(metric) if baseline else None
    superiority = change.mode == "superiority"
    rule = f"improvement > {change.min_improvement}" if superiority else f"regression <= {change.max_regression}"
    threshold = f"{rule}{unit} ({'higher' if up else 'lower'} is better)"
    fields: dict[str, object] = {}
    if baseline is None:
        verdict, detail = "no baseline", f"{metric}: no baseline to compare"
    elif value is None or base is None:
        verdict, detail = "fail", f"{metric} missing from candidate or baseline"
    else:
        improvement = (value - base) if up else (base - value)
        if change.relative:
            improvement = improvement / abs(base) if base else (0.0 if improvement >= 0 else float("-inf"))
        ok = improvement > change.min_improvement if superiority else -improvement <= change.max_regression
        point = "pass" if ok else "fail"
        se = None if paired is None else (paired.relative_se if change.relative else paired.se)
        if se is None:  # metrics without paired evidence: today's point comparison
            verdict = point
            detail = (
                f"{metric} {value:.4f} vs baseline {base:.4f}: "
                + (f"improvement {improvement:.4f}{unit} {'>' if ok else '<='} {change.min_improvement}"
                   if superiority else
                   f"regression {-improvement:.4f}{unit} {'<=' if ok else '>'} {change.max_regression}")
                + " (point values: no paired evidence)"
            )  # fmt: skip
        else:
            estimate = paired.estimate / abs(paired.baseline) if change.relative else paired.estimate
            improvement = estimate if up else -estimate
            outcome = decide_change(
                improvement, se, mode=change.mode, margin=change.margin, confidence=confidence, rows=rows
            )
            low, high = (outcome.low, outcome.high) if up else (-outcome.high, -outcome.low)
            verdict = outcome.verdict
            fields = {"estimate": estimate, "low": low, "high": high, "margin": change.margin, "mdd": outcome.mdd}
            fields |= {"confidence": confidence, "rows_needed": outcome.rows_needed, "point_verdict": point}
            wanted = f"about {outcome.rows_needed:,} test rows would decide; " if outcome.rows_needed else ""
            detail = (
                f"{metric} {value:.4f} vs baseline {base:.4f}: candidate - baseline {estimate:+.4f}{unit} "
                f"[{low:+.4f}, {high:+.4f}] at {confidence * 100:g}%, {rule}{unit}: {verdict} "
                f"(detectable at {rows:,} rows: {outcome.mdd:.4f}; {wanted}as a point comparison: {point})"
            )
    return GateCheck(
        metric=metric,
        kind="change",
        value=value,
        threshold=threshold,
        baseline=base,
        verdict=verdict,
        detail=detail,
        **fields,
    )


def report_markdown(report: GateReport, *, name: str) -> str:
    """The gate report as it reads in the Prefect UI.

    Args:
        report: the gate's report.
        name: the model's name, for the heading.
    """
    verdict = "**passed**" if report.passed else "**rejected**"
    if report.decision == "inconclusive":
        verdict = f"**inconclusive**, {report.inconclusive_policy or 'reject'}: {verdict.strip('*')}"
    base = f"v{report.baseline_version}" if report.baseline_version else "none (first run)"
    rows = "\n".join(
        f"| {c.metric} | {c.kind} | {_number(c.value)} | {_number(c.baseline)} | {_number(c.estimate, signed=True)} | "
        f"{_interval(c)} | {c.threshold} | {c.verdict} | {c.point_verdict or ''} |"
        for c in report.checks
    )
    return (
        f"### Gate for {name}: {verdict}\n\nBaseline: {base}\n\n"
        "| metric | kind | value | baseline | estimate | interval | margin | outcome | as a point comparison |\n"
        "|---|---|---|---|---|---|---|---|---|\n" + rows + "\n\nestimate: candidate - baseline (a slice: its value)"
    )


def _number(value: float | None, *, signed: bool = False) -> str:
    return "" if value is None else f"{value:+.4f}" if signed else f"{value:.4f}"


def _interval(check: GateCheck) -> str:
    if check.low is None or check.high is None:
        return ""
    return f"[{check.low:+.4f}, {check.high:+.4f}] at {(check.confidence or 0) * 100:g}%"


# The gate report's columns in the Prefect UI's table artifact.
TABLE_FIELDS = (
    "metric", "kind", "value", "baseline", "estimate", "low", "high", "threshold", "verdict", "point_verdict", "mdd",
    "rows_needed",
)  # fmt: skip


@task(name="gate", retries=0)
def gate(evaluation: Evaluation, config: GateConfig, *, name: str) -> GateReport:
    """Decide and publish the report; never retried (the answer cannot change).

    Args:
        evaluation: the candidate's and the baseline's metrics.
        config: the recipe's ``gate`` section.
        name: the model's name, for the artifacts.
    """
    report = decide(
        evaluation.candidate,
        evaluation.baseline,
        config,
        baseline_version=evaluation.baseline_version,
        baseline_error=evaluation.baseline_error,
        alias_version=evaluation.alias_version,
        evidence=evaluation.evidence,
    )
    create_table_artifact(
        key="gate-report",
        table=[{field: getattr(c, field) for field in TABLE_FIELDS} for c in report.checks],
        description=f"gate for {name}: {'passed' if report.passed else 'rejected'} ({report.decision})",
    )
    create_markdown_artifact(
        key="gate-summary", markdown=report_markdown(report, name=name), description=report.summary()
    )
    return report
