"""Gate: may the candidate replace production? A pure function of metrics and config.

Value checks bound a metric absolutely; change checks bound its regression against the
production baseline (absolute or relative, in the metric's direction); per-class checks
bound a metric in every class (recall of each class >= 0.8). Without a baseline
change checks report "no baseline" and do not fail (TFX's first-run behaviour).
"""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from kerasflow.tasks.config import Change, GateConfig
from kerasflow.tasks.failures import DeterministicFailure
from kerasflow.tasks.refs import Evaluation, GateCheck, GateReport, Metrics

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
) -> GateReport:
    """Run every configured check; the report passes when none fails.

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
    """
    checks = [_baseline_check(baseline_error, config)] if baseline_error is not None else []
    checks += [
        _value_check(metric, side, threshold, candidate)
        for metric, bound in sorted(config.value.items())
        for side, threshold in (("min", bound.min), ("max", bound.max))
        if threshold is not None
    ]
    checks += [_change_check(metric, change, candidate, baseline) for metric, change in sorted(config.change.items())]
    checks += [
        check
        for column, bounds in sorted(config.per_slice.items())
        for metric, bound in sorted(bounds.items())
        for side, threshold in (("min", bound.min), ("max", bound.max))
        if threshold is not None
        for check in _slice_checks(metric, side, threshold, candidate, column=column)
    ]
    checks += [
        check
        for metric, bound in sorted(config.per_class.items())
        for side, threshold in (("min", bound.min), ("max", bound.max))
        if threshold is not None
        for check in _slice_checks(metric, side, threshold, candidate)
    ]
    return GateReport(
        passed=all(c.verdict != "fail" for c in checks),
        checks=checks,
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


def _value_check(metric: str, side: str, threshold: float, candidate: Metrics) -> GateCheck:
    """``metric >= threshold`` (side "min") or ``metric <= threshold`` (side "max")."""
    value = candidate.values.get(metric)
    op = ">=" if side == "min" else "<="
    if value is None:
        verdict, detail = "fail", f"{metric} was not measured (have {sorted(candidate.values)})"
    else:
        ok = value >= threshold if side == "min" else value <= threshold
        verdict = "pass" if ok else "fail"
        detail = f"{metric} {value:.4f} {op if ok else ('<' if side == 'min' else '>')} {threshold}"
    return GateCheck(
        metric=metric, kind="value", value=value, threshold=f"{op} {threshold}", verdict=verdict, detail=detail
    )


def _slice_checks(
    metric: str, side: str, threshold: float, candidate: Metrics, *, column: str | None = None
) -> list[GateCheck]:
    """One value check per slice of ``metric``: per class (``column`` None) or per value of ``column``."""
    if column is None:
        slices = candidate.per_class.get(metric)
        label, measured = "each class", sorted(candidate.per_class)
    else:
        slices = {v: m[metric] for v, m in candidate.per_slice.get(column, {}).items() if metric in m}
        label, measured = f"each {column}", sorted(candidate.per_slice)
    if not slices:
        return [
            GateCheck(
                metric=f"{metric}[{label}]",
                kind="slice",
                value=None,
                threshold=f"{'>=' if side == 'min' else '<='} {threshold}",
                verdict="fail",
                detail=f"{metric} per {label.removeprefix('each ')} was not measured (have {measured})",
            )
        ]
    checks = []
    for slice_name, value in slices.items():
        check = _value_check(metric, side, threshold, Metrics(split="", num_examples=0, values={metric: value}))
        name = f"{metric}[{slice_name}]" if column is None else f"{metric}[{column}={slice_name}]"
        checks.append(
            check.model_copy(update={"metric": name, "kind": "slice", "detail": f"{name}{check.detail[len(metric) :]}"})
        )
    return checks


def _change_check(metric: str, change: Change, candidate: Metrics, baseline: Metrics | None) -> GateCheck:
    """The candidate's regression against the baseline, in the metric's direction."""
    value = candidate.values.get(metric)
    up = change.higher_is_better if change.higher_is_better is not None else higher_is_better(metric)
    unit = " of baseline" if change.relative else ""
    base = baseline.values.get(metric) if baseline else None
    if baseline is None:
        verdict, detail = "no baseline", f"{metric}: no baseline to compare"
    elif value is None or base is None:
        verdict, detail = "fail", f"{metric} missing from candidate or baseline"
    else:
        regression = (base - value) if up else (value - base)
        if change.relative:
            regression = regression / abs(base) if base else (0.0 if regression <= 0 else float("inf"))
        ok = regression <= change.max_regression
        verdict = "pass" if ok else "fail"
        detail = (
            f"{metric} {value:.4f} vs baseline {base:.4f}: regression {regression:.4f}{unit} "
            f"{'<=' if ok else '>'} {change.max_regression}"
        )
    return GateCheck(
        metric=metric,
        kind="change",
        value=value,
        threshold=f"regression <= {change.max_regression}{unit} ({'higher' if up else 'lower'} is better)",
        baseline=base,
        verdict=verdict,
        detail=detail,
    )


def report_markdown(report: GateReport, *, name: str) -> str:
    """The gate report as it reads in the Prefect UI.

    Args:
        report: the gate's report.
        name: the model's name, for the heading.
    """
    verdict = "**passed**" if report.passed else "**rejected**"
    base = f"v{report.baseline_version}" if report.baseline_version else "none (first run)"
    rows = "\n".join(
        f"| {c.metric} | {c.kind} | {'' if c.value is None else f'{c.value:.4f}'} | {c.threshold} | "
        f"{'' if c.baseline is None else f'{c.baseline:.4f}'} | {c.verdict} |"
        for c in report.checks
    )
    return (
        f"### Gate for {name}: {verdict}\n\nBaseline: {base}\n\n"
        "| metric | kind | value | threshold | baseline | verdict |\n|---|---|---|---|---|---|\n" + rows
    )


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
    )
    create_table_artifact(
        key="gate-report",
        table=[
            c.model_dump(include={"metric", "kind", "value", "threshold", "baseline", "verdict"}) for c in report.checks
        ],
        description=f"gate for {name}: {'passed' if report.passed else 'rejected'}",
    )
    create_markdown_artifact(
        key="gate-summary", markdown=report_markdown(report, name=name), description=report.summary()
    )
    return report
