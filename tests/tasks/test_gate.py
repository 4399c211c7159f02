import pytest

from kerasflow.tasks.config import GateConfig
from kerasflow.tasks.gate import decide, higher_is_better
from kerasflow.tasks.refs import Metrics


def metrics(**values):
    return Metrics(split="test", num_examples=100, values=values)


CASES = [
    # (id, candidate, baseline, gate config, passed, verdicts in check order)
    ("min passes", metrics(accuracy=0.96), None, {"value": {"accuracy": {"min": 0.95}}}, True, ["pass"]),
    ("min fails", metrics(accuracy=0.94), None, {"value": {"accuracy": {"min": 0.95}}}, False, ["fail"]),
    ("min is inclusive", metrics(accuracy=0.95), None, {"value": {"accuracy": {"min": 0.95}}}, True, ["pass"]),
    ("max on loss", metrics(loss=0.6), None, {"value": {"loss": {"max": 0.5}}}, False, ["fail"]),
    ("both bounds", metrics(auc=0.9), None, {"value": {"auc": {"min": 0.8, "max": 0.99}}}, True, ["pass", "pass"]),
    ("missing metric fails", metrics(accuracy=0.9), None, {"value": {"auc": {"min": 0.5}}}, False, ["fail"]),
    (
        "first run: no baseline",
        metrics(accuracy=0.9),
        None,
        {"change": {"accuracy": {"max_regression": 0.0}}},
        True,
        ["no baseline"],
    ),
    (
        "small drop allowed",
        metrics(accuracy=0.946),
        metrics(accuracy=0.95),
        {"change": {"accuracy": {"max_regression": 0.005}}},
        True,
        ["pass"],
    ),
    (
        "large drop refused",
        metrics(accuracy=0.94),
        metrics(accuracy=0.95),
        {"change": {"accuracy": {"max_regression": 0.005}}},
        False,
        ["fail"],
    ),
    (
        "improvement passes",
        metrics(accuracy=0.99),
        metrics(accuracy=0.95),
        {"change": {"accuracy": {"max_regression": 0.0}}},
        True,
        ["pass"],
    ),
    (
        "loss is lower-is-better: rise refused",
        metrics(loss=0.30),
        metrics(loss=0.20),
        {"change": {"loss": {"max_regression": 0.05}}},
        False,
        ["fail"],
    ),
    (
        "loss is lower-is-better: fall passes",
        metrics(loss=0.10),
        metrics(loss=0.20),
        {"change": {"loss": {"max_regression": 0.0}}},
        True,
        ["pass"],
    ),
    (
        "relative regression",
        metrics(auc=0.892),
        metrics(auc=0.9),
        {"change": {"auc": {"max_regression": 0.01, "relative": True}}},
        True,
        ["pass"],
    ),
    (
        "relative regression refused",
        metrics(auc=0.88),
        metrics(auc=0.9),
        {"change": {"auc": {"max_regression": 0.01, "relative": True}}},
        False,
        ["fail"],
    ),
    (
        "explicit direction wins",
        metrics(latency=12.0),
        metrics(latency=10.0),
        {"change": {"latency": {"max_regression": 1.0, "higher_is_better": False}}},
        False,
        ["fail"],
    ),
    (
        "value and change together",
        metrics(accuracy=0.97, loss=0.1),
        metrics(accuracy=0.96, loss=0.12),
        {
            "value": {"accuracy": {"min": 0.95}},
            "change": {"accuracy": {"max_regression": 0.0}, "loss": {"max_regression": 0.0}},
        },
        True,
        ["pass", "pass", "pass"],
    ),
]


@pytest.mark.parametrize(
    ("candidate", "baseline", "config", "passed", "verdicts"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_decide(candidate, baseline, config, passed, verdicts):
    report = decide(candidate, baseline, GateConfig.model_validate(config), baseline_version=1 if baseline else None)
    assert report.passed is passed
    assert [c.verdict for c in report.checks] == verdicts
    if not passed:
        assert report.summary().startswith("rejected: ")
        assert all(c.detail for c in report.failures())


def test_no_checks_passes():
    assert decide(metrics(accuracy=0.1), None, GateConfig()).passed


@pytest.mark.parametrize(
    ("name", "up"),
    [("accuracy", True), ("auc", True), ("loss", False), ("val_loss", False), ("mae", False), ("recall", True)],
)
def test_direction(name, up):
    assert higher_is_better(name) is up


def sliced(**per_class):
    return Metrics(split="test", num_examples=100, values={"accuracy": 0.9}, per_class=per_class)


@pytest.mark.parametrize(
    ("candidate", "gate_config", "passed", "checks"),
    [
        (
            sliced(recall={"cat": 0.91, "dog": 0.85}),
            {"per_class": {"recall": {"min": 0.8}}},
            True,
            [("recall[cat]", "pass"), ("recall[dog]", "pass")],
        ),
        (
            sliced(recall={"cat": 0.91, "dog": 0.78}),
            {"per_class": {"recall": {"min": 0.8}}},
            False,
            [("recall[cat]", "pass"), ("recall[dog]", "fail")],
        ),
        (
            sliced(precision={"cat": 0.99}),
            {"per_class": {"precision": {"min": 0.5, "max": 0.98}}},
            False,
            [("precision[cat]", "pass"), ("precision[cat]", "fail")],
        ),
        (sliced(), {"per_class": {"recall": {"min": 0.8}}}, False, [("recall[each class]", "fail")]),
    ],
    ids=["every class passes", "one class below", "both bounds", "not measured"],
)
def test_per_class_checks(candidate, gate_config, passed, checks):
    report = decide(candidate, None, GateConfig.model_validate(gate_config))
    assert report.passed is passed
    assert [(c.metric, c.verdict) for c in report.checks] == checks
    assert all(c.kind == "slice" for c in report.checks)
    failing = [c for c in report.checks if c.verdict == "fail" and c.value is not None]
    for check in failing:
        assert check.detail.startswith(check.metric) and ("<" in check.detail or ">" in check.detail)


def test_per_class_metrics_come_from_predictions():
    import numpy as np

    from kerasflow.tasks.evaluate import compute_metrics

    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 0, 0, 1, 1, 1, 2, 0])
    from kerasflow.tasks.learning.learning_tasks import TASKS

    m = compute_metrics(
        y_true, np.eye(3)[predicted], task=TASKS["multiclass"], class_names=["a", "b", "c"], split="test"
    )
    assert m.per_class["recall"] == {"a": 0.75, "b": 1.0, "c": 0.5}
    assert m.per_class["precision"] == pytest.approx({"a": 0.75, "b": 2 / 3, "c": 1.0})
    report = decide(m, None, GateConfig(per_class={"recall": {"min": 0.6}}))
    assert [c.detail for c in report.checks if c.verdict == "fail"] == ["recall[c] 0.5000 < 0.6"]


def by_region(**per_value):
    return Metrics(split="test", num_examples=100, values={"auc": 0.9}, per_slice={"region": per_value})


@pytest.mark.parametrize(
    ("candidate", "checks"),
    [
        (by_region(eu={"auc": 0.81}, us={"auc": 0.75}), [("auc[region=eu]", "pass"), ("auc[region=us]", "pass")]),
        (by_region(eu={"auc": 0.81}, apac={"auc": 0.52}), [("auc[region=eu]", "pass"), ("auc[region=apac]", "fail")]),
        (by_region(), [("auc[each region]", "fail")]),
    ],
    ids=["every region passes", "one region below", "not sliced"],
)
def test_per_slice_checks_bound_every_value_of_a_column(candidate, checks):
    report = decide(candidate, None, GateConfig(per_slice={"region": {"auc": {"min": 0.7}}}))
    assert [(c.metric, c.verdict) for c in report.checks] == checks
    assert report.passed is all(v == "pass" for _, v in checks)


@pytest.mark.parametrize(("policy", "passed", "verdict"), [("reject", False, "fail"), ("ignore", True, "no baseline")])
def test_a_production_model_that_cannot_be_evaluated_is_a_check_of_its_own(policy, passed, verdict):
    config = GateConfig(
        value={"accuracy": {"min": 0.5}}, change={"accuracy": {"max_regression": 0.01}}, unusable_baseline=policy
    )
    report = decide(
        metrics(accuracy=0.9), None, config, baseline_error="baseline digits v1 could not be evaluated: refused"
    )
    assert report.passed is passed
    first = report.checks[0]
    assert (first.metric, first.kind, first.verdict) == ("baseline", "baseline", verdict)
    assert first.detail.startswith("baseline digits v1 could not be evaluated: refused")
    # Without an error, no baseline is a first run: the change checks report it and pass.
    assert decide(metrics(accuracy=0.9), None, config).passed
