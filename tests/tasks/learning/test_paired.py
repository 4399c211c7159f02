"""The paired accumulator against brute force: hand-computed intervals, chunking, bounded state, bootstraps."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest

from kerasflow.tasks.learning.learning_tasks import TASKS, LearningTask, Measured
from kerasflow.tasks.learning.paired import (
    AUC_THRESHOLDS,
    TEAM_REPLICATES,
    PairedAccumulator,
    poisson_weights,
)

rng = np.random.default_rng(7)
ROWS = 5003
CUTS = [0, 1, 257, 3000, ROWS]


def fed(task, class_names, y_true, *outputs, cuts=(0, None), models=2, seed=5):
    accumulator = PairedAccumulator(task, class_names, models=models, seed=seed)
    cuts = [0, len(y_true)] if cuts == (0, None) else cuts
    for start, end in itertools.pairwise(cuts):
        accumulator.update(y_true[start:end], *(o[start:end] for o in outputs))
    return accumulator


def binary_pair(rows=ROWS):
    y = rng.integers(0, 2, rows)
    candidate = np.clip(0.3 * y + 0.7 * rng.random(rows), 0, 1)[:, None].astype("float32")
    baseline = np.clip(0.25 * y + 0.75 * rng.random(rows), 0, 1)[:, None].astype("float32")
    return y, candidate, baseline


def test_accuracy_is_the_paired_normal_of_mcnemars_table_by_hand():
    # 200 rows: both right 170, only the candidate 12, only the baseline 5, both wrong 13.
    cases = [(1, 1)] * 170 + [(1, 0)] * 12 + [(0, 1)] * 5 + [(0, 0)] * 13
    y = np.zeros(200, dtype=int)
    candidate = np.eye(3)[[0 if c else 1 for c, _ in cases]]
    baseline = np.eye(3)[[0 if b else 2 for _, b in cases]]
    got = fed(TASKS["multiclass"], "abc", y, candidate, baseline).result()["accuracy"]
    n, b, c = 200, 12, 5
    d = (b - c) / n
    assert (got.candidate, got.baseline) == (182 / 200, 175 / 200)
    assert got.estimate == pytest.approx(d, abs=1e-12)
    assert got.se == pytest.approx((((b + c) / n - d**2) / n) ** 0.5, rel=1e-6)
    assert got.method == "normal"


def test_a_model_against_itself_differs_by_exactly_nothing():
    y, candidate, _ = binary_pair(1000)
    got = fed(TASKS["binary"], ["no", "yes"], y, candidate, candidate).result()
    assert set(got) == {"accuracy", "loss", "precision", "recall", "auc"}
    for name, difference in got.items():
        assert difference.estimate == pytest.approx(0, abs=1e-12), name
        assert difference.se == pytest.approx(0, abs=1e-9), name


def test_mean_metrics_have_the_exact_paired_standard_error_and_every_value_is_the_measurers():
    y, candidate, baseline = binary_pair()
    task = TASKS["binary"]
    got = fed(task, ["no", "yes"], y, candidate, baseline).result()
    loss = [-np.log(np.clip(np.where(y == 1, p[:, 0], 1 - p[:, 0]), 1e-7, 1 - 1e-7)) for p in (candidate, baseline)]
    assert got["loss"].se == pytest.approx(np.std(loss[0] - loss[1]) / np.sqrt(ROWS), rel=1e-6)
    for output, side in ((candidate, "candidate"), (baseline, "baseline")):
        measured = task.measure(y, output, class_names=["no", "yes"]).values
        assert {k: getattr(d, side) for k, d in got.items()} == pytest.approx(measured, rel=1e-5)


@pytest.mark.parametrize("task", ["multiclass", "binary", "regression"])
def test_chunking_changes_nothing(task):
    if task == "multiclass":
        y = rng.integers(0, 4, ROWS)
        outputs = [keras.ops.convert_to_numpy(keras.ops.softmax(rng.normal(size=(ROWS, 4)))) for _ in range(2)]
        names = list("abcd")
    elif task == "binary":
        y, *outputs = binary_pair()
        names = ["no", "yes"]
    else:
        y = rng.normal(150, 70, ROWS)
        outputs = [(y + rng.normal(0, s, ROWS))[:, None] for s in (40, 45)]
        names = []
    whole = fed(TASKS[task], names, y, *outputs).result()
    chunked = fed(TASKS[task], names, y, *outputs, cuts=CUTS).result()
    assert whole.keys() == chunked.keys()
    for name in whole:
        numbers = whole[name].model_dump(exclude={"method"})
        assert chunked[name].model_dump(exclude={"method"}) == pytest.approx(numbers, rel=1e-9, abs=1e-12), name
        assert chunked[name].method == whole[name].method


def test_auc_is_keras_own_and_its_bootstrap_agrees_with_paired_delong_by_brute_force():
    y, candidate, baseline = binary_pair(4000)
    got = fed(TASKS["binary"], ["no", "yes"], y, candidate, baseline).result()["auc"]
    for output, value in ((candidate, got.candidate), (baseline, got.baseline)):
        auc = keras.metrics.AUC()
        auc.update_state(y, output[:, 0])
        assert value == pytest.approx(float(auc.result()), abs=2e-6)
    # DeLong's paired variance on the same binned scores (ties count one half), row by row.
    scores = [np.searchsorted(AUC_THRESHOLDS, o[:, 0].astype("float64")) for o in (candidate, baseline)]
    pos, neg = y == 1, y == 0
    v10, v01 = [], []
    for s in scores:
        greater = (s[pos][:, None] > s[neg][None, :]) + 0.5 * (s[pos][:, None] == s[neg][None, :])
        v10.append(greater.mean(axis=1))
        v01.append(greater.mean(axis=0))
    diff10, diff01 = v10[0] - v10[1], v01[0] - v01[1]
    delong_se = np.sqrt(diff10.var(ddof=1) / pos.sum() + diff01.var(ddof=1) / neg.sum())
    assert got.estimate == pytest.approx(v10[0].mean() - v10[1].mean(), abs=1e-9)
    assert got.method == "bootstrap" and got.se == pytest.approx(delong_se, rel=0.15)


def test_rmse_and_r2_by_the_delta_method_match_a_brute_force_bootstrap_of_rows():
    y = rng.normal(150, 70, 2000)
    outputs = [(y + rng.normal(0, s, 2000))[:, None] for s in (40, 44)]
    got = fed(TASKS["regression"], [], y, *outputs).result()
    draws = {"rmse": [], "r2": []}
    generator = np.random.default_rng(1)
    for _ in range(1000):
        w = generator.poisson(1.0, 2000)
        values = []
        for output in outputs:
            squared = np.sum(w * (output[:, 0] - y) ** 2) / w.sum()
            mean = np.sum(w * y) / w.sum()
            values.append((squared**0.5, 1 - squared / (np.sum(w * (y - mean) ** 2) / w.sum())))
        draws["rmse"].append(values[0][0] - values[1][0])
        draws["r2"].append(values[0][1] - values[1][1])
    for name, drawn in draws.items():
        assert got[name].se == pytest.approx(np.std(drawn), rel=0.1), name


class SpreadTask(LearningTask):
    """A team's task with no row statistics: the interquartile range of its residuals, whole arrays only."""

    name = "spread-test"
    labels = "numbers"

    def measure(self, y_true, y_pred, *, class_names):
        residuals = np.asarray(y_pred).reshape(-1) - np.asarray(y_true)
        if not len(residuals):
            return Measured(values={"iqr": 0.0})
        return Measured(values={"iqr": float(np.subtract(*np.percentile(residuals, [75, 25])))})


def test_a_teams_task_is_bootstrapped_from_seeded_row_weights_whatever_the_chunking():
    rows = 600
    y = rng.normal(0, 1, rows)
    outputs = [(y + rng.normal(0, s, rows))[:, None] for s in (1.0, 1.3)]
    task = SpreadTask()
    chunked = fed(task, [], y, *outputs, cuts=[0, 1, 77, 400, rows], seed=11)
    got = chunked.result()["iqr"]
    # Directly: each replicate's rows repeated by their weights, measured whole.
    weights = poisson_weights(11, 0, rows, TEAM_REPLICATES)
    drawn = []
    for w in weights:
        chosen = np.repeat(np.arange(rows), w)
        c, b = (task.measure(y[chosen], o[chosen], class_names=[]).values["iqr"] for o in outputs)
        drawn.append(c - b)
    points = [task.measure(y, o, class_names=[]).values["iqr"] for o in outputs]
    assert got.estimate == pytest.approx(points[0] - points[1])
    assert got.se == pytest.approx(np.std(drawn, ddof=1), rel=1e-12)
    assert (got.method, chunked.replicates) == ("bootstrap", TEAM_REPLICATES)


def test_poisson_weights_are_poisson_of_one_and_a_function_of_the_rows_position():
    weights = poisson_weights(3, 0, 20_000, 8)
    assert weights.mean() == pytest.approx(1, abs=0.02) and weights.var() == pytest.approx(1, abs=0.03)
    assert (weights == 0).mean() == pytest.approx(np.exp(-1), abs=0.01)
    assert (poisson_weights(3, 4000, 100, 8) == weights[:, 4000:4100]).all()
    assert not (poisson_weights(4, 0, 100, 8) == weights[:, :100]).all(), "another seed, other weights"


def state_bytes(accumulator: PairedAccumulator) -> int:
    parts = [accumulator._moments.mean, accumulator._moments.comoment, accumulator._cells.counts]
    return sum(p.nbytes for p in parts)


def test_the_state_is_the_same_size_at_any_number_of_rows():
    sizes = []
    for rows in (1_000, 100_000):
        y, candidate, baseline = binary_pair(rows)
        accumulator = fed(TASKS["binary"], ["no", "yes"], y, candidate, baseline, cuts=range(0, rows + 1, 1000))
        sizes.append(state_bytes(accumulator))
        assert accumulator.rows == rows
    assert sizes[0] == sizes[1] < 1_000_000
