"""Paired evidence: candidate - baseline of each metric on the same test rows, with its standard error.

Fed chunks of (labels, candidate's outputs[, baseline's outputs]) in stored order, like a
:class:`~kerasflow.tasks.learning.measurers.Measurer`, and holding a fixed amount of state
whatever the number of rows. Three ways, each where it is exact or cheapest:

- **A smooth function of means** (a task's :meth:`~LearningTask.row_statistics` and
  :meth:`~LearningTask.metrics_of_means`: accuracy, loss, MSE and MAE are means over rows;
  precision, recall, RMSE and R² functions of a few means): the per-row statistics of both
  models are accumulated as one mean vector and comoment matrix (Chan's merge), and the
  difference's standard error is the delta method's, ``sqrt(g' Σ g / n)``. For a mean
  this *is* the exact paired standard deviation over ``sqrt(n)``; for accuracy it is the
  Wald interval of McNemar's table, ``var = ((b + c)/n - ((c - b)/n)²)/n`` with ``b`` and
  ``c`` the discordant rows. Wald rather than an exact McNemar test because the gate needs
  an interval it can rescale to any confidence, a margin and a test size (the minimum
  detectable difference, the rows that would decide) from the same two numbers; it is
  known to be slightly liberal under about 20 discordant rows, which the report's MDD shows.
  When the two models agree on every row it is exactly 0: on these rows they do not differ.
- **AUC** is no function of means. Its sufficient statistic at Keras's 200 thresholds is
  the count of rows in each (label, candidate's score bin, baseline's score bin) cell
  (80,802 counts at most), and a Poisson bootstrap of rows is exactly a Poisson draw of
  each cell's count (a sum of Poisson(1) weights is Poisson(count)): so the draws cost
  ``replicates x occupied cells`` once at the end, not ``replicates x rows`` per chunk, and
  no chunking can change them. Seeded; the seed and replicate count are recorded.
- **A team's task** without row statistics: replicate measurers fed each row as many
  times as its Poisson(1) weight, drawn from the seed and the row's position (a hash, so
  chunking does not change it). Costs ``replicates`` times the task's own measuring.

Every interval is ``estimate ± z·se`` (the bootstrap's standard error for bootstrapped
metrics), so the gate picks the confidence and speaks of margins and test sizes in one unit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from kerasflow.tasks.refs import Difference

if TYPE_CHECKING:
    from kerasflow.tasks.learning.task_registry import LearningTask

__all__ = ["BOOTSTRAP_REPLICATES", "BOOTSTRAP_SEED", "Moments", "PairedAccumulator", "RankCells", "poisson_weights"]

BOOTSTRAP_SEED = 20240531
BOOTSTRAP_REPLICATES = 200  # the standard error to about 5% (1/sqrt(2·200))
TEAM_REPLICATES = 100  # each one a measurer of its own: half as many for a team's task
# Keras's AUC thresholds (keras.metrics.AUC(num_thresholds=200)): below 0, 198 inside (0, 1), above 1.
_EPSILON = 1e-7
AUC_THRESHOLDS = np.array([-_EPSILON, *((i + 1) / 199 for i in range(198)), 1 + _EPSILON])
_BINS = len(AUC_THRESHOLDS) + 1
# Poisson(1)'s cumulative distribution up to 19 (beyond: below 1e-17).
_POISSON_CDF = np.cumsum([np.exp(-1.0) / np.prod(np.arange(1, k + 1, dtype=float)) for k in range(20)])


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def poisson_weights(seed: int, start: int, rows: int, replicates: int) -> np.ndarray:
    """Poisson(1) weights of rows ``start .. start + rows`` in each replicate: shape (replicates, rows).

    A function of (seed, row position, replicate) alone, so any chunking draws the same weights.

    Args:
        seed: the bootstrap's seed.
        start: the position of the first row in the split.
        rows: how many rows.
        replicates: how many replicates.
    """
    key = _splitmix64(np.array([seed], dtype=np.uint64))[0]
    positions = np.arange(start, start + rows, dtype=np.uint64)[None, :] * np.uint64(replicates)
    counters = positions + np.arange(replicates, dtype=np.uint64)[:, None]
    uniform = (_splitmix64(counters ^ key) >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return np.searchsorted(_POISSON_CDF, uniform, side="right").astype(np.int64)


class Moments:
    """A stream of row vectors' mean and comoment matrix, merged chunk by chunk (Chan et al.).

    Args:
        width: the length of each row vector.
    """

    def __init__(self, width: int):
        self.rows = 0
        self.mean = np.zeros(width)
        self.comoment = np.zeros((width, width))

    def add(self, z: np.ndarray) -> None:
        """Add a chunk of row vectors, shape (rows, width)."""
        rows = len(z)
        if not rows:
            return
        mean = z.mean(axis=0)
        centered = z - mean
        delta, total = mean - self.mean, self.rows + rows
        self.comoment += centered.T @ centered + np.outer(delta, delta) * (self.rows * rows / total)
        self.mean += delta * (rows / total)
        self.rows = total

    @property
    def covariance(self) -> np.ndarray:
        """The rows' covariance (divided by the rows, as a plug-in estimate is)."""
        return self.comoment / max(self.rows, 1)


class RankCells:
    """Rows counted by (label, candidate's score bin[, baseline's]): AUC's sufficient statistic at Keras's thresholds.

    Args:
        models: 1 (the candidate alone) or 2 (candidate and baseline).
    """

    def __init__(self, models: int):
        self.counts = np.zeros((2,) + (_BINS,) * models, dtype=np.int64)

    def add(self, labels: np.ndarray, *scores: np.ndarray) -> None:
        """Count a chunk: labels 0/1 and each model's score of the positive class."""
        cells = np.asarray(labels, dtype=np.int64).reshape(-1)
        for score in scores:  # bin k: the score is above k of the thresholds, as Keras counts it
            cells = cells * _BINS + np.searchsorted(AUC_THRESHOLDS, np.asarray(score, dtype=np.float64), side="left")
        self.counts += np.bincount(cells, minlength=self.counts.size).reshape(self.counts.shape)

    @staticmethod
    def auc(histograms: np.ndarray) -> np.ndarray:
        """The trapezoidal ROC AUC of (..., label, bin) histograms, as keras.metrics.AUC computes it (0 without both).

        A negative in bin k ranks below every positive in a higher bin and ties, for one
        half, with those in bin k: the trapezoids between Keras's thresholds, summed.
        """
        negatives, positives = histograms[..., 0, :].astype(np.float64), histograms[..., 1, :].astype(np.float64)
        pairs = negatives.sum(axis=-1) * positives.sum(axis=-1)
        above = np.cumsum(positives[..., ::-1], axis=-1)[..., ::-1] - positives  # positives in higher bins
        ranked = np.sum(negatives * (above + positives / 2), axis=-1)
        return np.divide(ranked, pairs, out=np.zeros_like(ranked), where=pairs > 0)

    def values(self, counts: np.ndarray) -> tuple[float, ...]:
        """Each model's AUC of cell counts shaped like ``self.counts``."""
        if counts.ndim == 2:
            return (float(self.auc(counts)),)
        return float(self.auc(counts.sum(axis=2))), float(self.auc(counts.sum(axis=1)))

    def replicates(self, *, seed: int, replicates: int, block: int = 25) -> np.ndarray:
        """Each model's AUC in each Poisson bootstrap replicate: shape (replicates, models).

        Only occupied cells are drawn, and each model's histogram is summed from them by
        sorting the cells on its (label, bin) once: ``replicates x occupied cells`` work.
        """
        rng = np.random.default_rng(seed)
        occupied = np.flatnonzero(self.counts)
        counts = self.counts.reshape(-1)[occupied]
        index = np.unravel_index(occupied, self.counts.shape)
        marginals = []  # per model: the cells' order by its (label, bin), where each run starts, and the run's key
        for axis in range(1, self.counts.ndim):
            key = index[0] * _BINS + index[axis]
            order = np.argsort(key, kind="stable")
            starts = np.flatnonzero(np.r_[True, np.diff(key[order]) != 0])
            marginals.append((order, starts, key[order][starts]))
        out = np.zeros((replicates, len(marginals)))
        for first in range(0, replicates, block):
            drawn = rng.poisson(counts, size=(min(block, replicates - first), len(counts)))
            for model, (order, starts, keys) in enumerate(marginals):
                histograms = np.zeros((len(drawn), 2 * _BINS))
                histograms[:, keys] = np.add.reduceat(drawn[:, order], starts, axis=1)
                out[first : first + len(drawn), model] = self.auc(histograms.reshape(len(drawn), 2, _BINS))
        return out


def _difference(candidate: float, baseline: float | None, *, se: float, relative_se: float | None, method: str):
    estimate = candidate - baseline if baseline is not None else candidate
    return Difference(
        candidate=candidate, baseline=baseline, estimate=estimate, se=se, relative_se=relative_se, method=method
    )


def _relative_se(estimates: np.ndarray, baselines: np.ndarray) -> float | None:
    """The spread of replicates' ``estimate / |baseline|`` (None when a baseline is 0)."""
    if np.any(baselines == 0):
        return None
    return float(np.std(estimates / np.abs(baselines), ddof=1))


class PairedAccumulator:
    """Candidate - baseline of each metric a task measures, on the same rows, with standard errors.

    With ``models=1`` the same for one model's values (a slice's recall or AUC and its noise).

    Args:
        task: the learning task whose metrics are compared.
        class_names: the classes, in the order of the models' outputs.
        models: 2 (candidate and baseline, paired) or 1 (the candidate alone).
        seed: the bootstrap's seed, recorded with the evidence.
    """

    def __init__(self, task: LearningTask, class_names: Sequence[str], *, models: int = 2, seed: int = BOOTSTRAP_SEED):
        if models not in (1, 2):
            raise ValueError(f"received models={models}, expected 1 or 2")
        self.task, self.class_names, self.models, self.seed = task, list(class_names), models, seed
        self.rows, self.replicates = 0, 0
        self._names: list[str] | None = None
        self._moments: Moments | None = None
        self._cells: RankCells | None = None
        self._team: list[list] | None = None  # [replicate][model] measurers, for a task without row statistics
        self._points: list | None = None

    def update(self, y_true: np.ndarray, *outputs: np.ndarray) -> None:
        """Add a chunk of rows: the labels, then each model's outputs for them (candidate first)."""
        if len(outputs) != self.models:
            raise ValueError(f"received {len(outputs)} models' outputs, expected {self.models}")
        rows = len(y_true)
        if not rows:
            return
        stats = [self.task.row_statistics(y_true, out) for out in outputs]
        if stats[0] is None:
            self._update_team(y_true, outputs)
        else:
            if self._names is None:
                self._names = list(stats[0])
                self._moments = Moments(len(self._names) * self.models)
            self._moments.add(np.column_stack([np.asarray(s[n], dtype=np.float64) for s in stats for n in self._names]))
            scores = [self.task.ranking_score(out) for out in outputs]
            if scores[0] is not None:
                self._cells = self._cells or RankCells(self.models)
                self._cells.add(np.asarray(y_true).reshape(-1), *scores)
        self.rows += rows

    def _update_team(self, y_true: np.ndarray, outputs: Sequence[np.ndarray]) -> None:
        self.replicates = TEAM_REPLICATES
        if self._team is None:
            self._team = [[self.task.measurer(self.class_names) for _ in outputs] for _ in range(self.replicates)]
            self._points = [self.task.measurer(self.class_names) for _ in outputs]
        for measurer, out in zip(self._points, outputs, strict=True):
            measurer.update(y_true, out)
        weights = poisson_weights(self.seed, self.rows, len(y_true), self.replicates)
        for replicate, w in zip(self._team, weights, strict=True):
            chosen = np.repeat(np.arange(len(y_true)), w)
            for measurer, out in zip(replicate, outputs, strict=True):
                measurer.update(np.asarray(y_true)[chosen], np.asarray(out)[chosen])

    def result(self) -> dict[str, Difference]:
        """Metric name -> the difference (or, with one model, the value) and its standard error."""
        if self._team is not None:
            return self._team_result()
        if self._moments is None:
            return {}
        out = self._delta_result()
        if self._cells is not None:
            self.replicates = BOOTSTRAP_REPLICATES
            points = self._cells.values(self._cells.counts)
            drawn = self._cells.replicates(seed=self.seed, replicates=self.replicates)
            out["auc"] = self._bootstrapped(points, drawn)
        return out

    def _bootstrapped(self, points: Sequence[float], drawn: np.ndarray) -> Difference:
        if self.models == 1:
            return _difference(
                points[0], None, se=float(np.std(drawn[:, 0], ddof=1)), relative_se=None, method="bootstrap"
            )
        estimates = drawn[:, 0] - drawn[:, 1]
        return _difference(
            points[0],
            points[1],
            se=float(np.std(estimates, ddof=1)),
            relative_se=_relative_se(estimates, drawn[:, 1]),
            method="bootstrap",
        )

    def _team_result(self) -> dict[str, Difference]:
        points = [m.result().values for m in self._points]
        drawn = [[m.result().values for m in replicate] for replicate in self._team]
        names = sorted(set.intersection(*(set(p) for p in points)))
        return {
            name: self._bootstrapped([p[name] for p in points], np.array([[r[name] for r in rep] for rep in drawn]))
            for name in names
        }

    def _delta_result(self) -> dict[str, Difference]:
        width = len(self._names)
        mean, covariance, rows = self._moments.mean, self._moments.covariance, self._moments.rows

        def values(means: np.ndarray) -> dict[str, float]:
            return self.task.metrics_of_means(dict(zip(self._names, means.tolist(), strict=True)))

        per_model = [values(mean[i * width : (i + 1) * width]) for i in range(self.models)]
        jacobians = [_jacobian(values, mean[i * width : (i + 1) * width]) for i in range(self.models)]
        out = {}
        for name, candidate in per_model[0].items():
            grad_c = jacobians[0][name]
            if self.models == 1:
                se = float(np.sqrt(max(grad_c @ covariance @ grad_c, 0.0) / rows))
                out[name] = _difference(candidate, None, se=se, relative_se=None, method="normal")
                continue
            baseline, grad_b = per_model[1][name], jacobians[1][name]
            grad = np.concatenate([grad_c, -grad_b])
            se = float(np.sqrt(max(grad @ covariance @ grad, 0.0) / rows))
            relative_se = None
            if baseline:  # d/dfc, d/dfb of (fc - fb)/|fb|
                d_b = -1 / abs(baseline) - (candidate - baseline) * np.sign(baseline) / baseline**2
                rel = np.concatenate([grad_c / abs(baseline), d_b * grad_b])
                relative_se = float(np.sqrt(max(rel @ covariance @ rel, 0.0) / rows))
            out[name] = _difference(candidate, baseline, se=se, relative_se=relative_se, method="normal")
        return out


def _jacobian(values: Callable[[np.ndarray], dict[str, float]], mean: np.ndarray) -> dict[str, np.ndarray]:
    """Metric name -> its gradient in the means, by central differences (exact for a mean, whose gradient is 1)."""
    steps = 1e-6 * np.maximum(np.abs(mean), 1e-3)
    grads: dict[str, np.ndarray] = {}
    for j, step in enumerate(steps):
        up, down = mean.copy(), mean.copy()
        up[j] += step
        down[j] -= step
        above, below = values(up), values(down)
        for name in above:
            grads.setdefault(name, np.zeros(len(mean)))[j] = (above[name] - below[name]) / (2 * step)
    return grads
