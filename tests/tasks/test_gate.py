import pytest

from tasks.config import GateConfig
from tasks.gate import decide, higher_is_better
from tasks.refs import Metrics


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
