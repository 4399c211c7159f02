"""The gate's bounds on the candidate's own values: overall, per class and per slice, with Holm's correction.

A value check compares the point value with its bound. Per-class and per-slice bounds
are one check per class or slice: at or past the bound it passes; short of it, it fails
only when its interval lies wholly past the bound after Holm's correction across the
family (every class, or every value of the column, under one bound), and is inconclusive
otherwise, so 40 slices do not fail by chance (docs/concepts/gate.md). A class's noise
comes from the confusion counts, a slice's from the evaluation's evidence.
"""

from __future__ import annotations

from kerasflow.tasks.confidence import holm_adjusted, one_sided_p, z_of
from kerasflow.tasks.refs import Difference, GateCheck, Metrics

__all__ = ["class_noise", "slice_checks", "value_check"]


def value_check(metric: str, side: str, threshold: float, candidate: Metrics) -> GateCheck:
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


def class_noise(metric: str, candidate: Metrics) -> dict[str, Difference] | None:
    """Each class's ``metric`` with its standard error, from the confusion counts (a proportion of a class's rows).

    Recall (and a class's accuracy) is the share of the class's rows found; precision the share of the rows
    predicted as the class that are of it. The standard error is a proportion's, with one success and one
    failure added (Laplace), so a class at 0 or 1 still has some noise.
    """
    confusion, per_class = candidate.confusion, candidate.per_class.get(metric)
    if confusion is None or not per_class:
        return None
    truth = [sum(row) for row in confusion]
    present = [c for c, total in enumerate(truth) if total]  # the classes per_class names, in their order
    if len(present) != len(per_class):
        return None
    noise = {}
    for c, (name, value) in zip(present, per_class.items(), strict=True):
        found = confusion[c][c]
        rows = truth[c] if metric != "precision" else sum(row[c] for row in confusion)
        smoothed = (found + 1) / (rows + 2)
        se = (smoothed * (1 - smoothed) / (rows + 2)) ** 0.5
        noise[name] = Difference(candidate=value, estimate=value, se=se, method="normal")
    return noise


def slice_checks(
    metric: str,
    side: str,
    threshold: float,
    candidate: Metrics,
    *,
    column: str | None = None,
    noise: dict[str, Difference] | None = None,
    confidence: float = 0.95,
) -> list[GateCheck]:
    """One value check per slice of ``metric``: per class (``column`` None) or per value of ``column``.

    A slice at or past the bound passes. One short of it fails only when its interval is wholly
    on the wrong side after Holm's correction over the slices with noise (Holm-adjusted
    one-sided p at most (1 - confidence)/2, i.e. the two-sided interval misses the bound);
    else it is inconclusive. A slice without noise is judged on its point value, as before.
    """
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
    known = {name: noise[name] for name in slices if noise and name in noise}
    family = list(known)
    p_values = [one_sided_p(slices[n], known[n].se, threshold, side=side) for n in family]
    adjusted = dict(zip(family, holm_adjusted(p_values), strict=True))
    z, alpha = z_of(confidence), 1 - confidence
    checks = []
    for slice_name, value in slices.items():
        check = value_check(metric, side, threshold, Metrics(split="", num_examples=0, values={metric: value}))
        name = f"{metric}[{slice_name}]" if column is None else f"{metric}[{column}={slice_name}]"
        detail, update = f"{name}{check.detail[len(metric) :]}", {}
        if slice_name in known:
            se = known[slice_name].se
            update = {"estimate": value, "low": value - z * se, "high": value + z * se, "margin": threshold}
            update |= {"confidence": confidence, "point_verdict": check.verdict}
            if check.verdict == "fail":
                shown = adjusted[slice_name] <= alpha / 2
                update["verdict"] = "fail" if shown else "inconclusive"
                detail += (
                    f": [{update['low']:.4f}, {update['high']:.4f}] at {confidence * 100:g}%, Holm-adjusted p "
                    f"{adjusted[slice_name]:.3g} over {len(family)} slices, "
                    + ("shown short of the bound" if shown else "not shown short of the bound: inconclusive")
                )
        checks.append(check.model_copy(update={"metric": name, "kind": "slice", "detail": detail, **update}))
    return checks
