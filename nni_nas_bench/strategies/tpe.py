"""TPE (Bergstra et al., NeurIPS 2011) over a product of categorical decisions, vectorised.

Tree-structured Parzen estimators model p(x | good) = l(x) and p(x | bad) = g(x) from the evaluations so
far, and propose the candidate (of ``candidates`` drawn from l) that maximises l(x) / g(x), which is
proportional to the expected improvement. On a NAS space every decision is categorical, so each
estimator is, per decision, a smoothed histogram of the values the good (resp. bad) evaluations took —
independent per decision, as in the paper and hyperopt's implementation — with these of hyperopt's
defaults: ``startup`` 20 uniform samples before modelling, the good set is the best
``min(ceil(gamma * sqrt(n)), forgetting)`` of n results (gamma 0.25), a prior pseudo-count of
``prior_weight`` 1 added to EVERY value of a decision (hyperopt's ``tpe_cat_pseudocounts``: ``counts +
K * prior_weight * (1/K)``; NNI's ``suggest_categorical``: ``counts + prior_weight``), and ``candidates``
24 draws per proposal. hyperopt's linear forgetting (older results, in the order they were told,
down-weighted once there are more than 25) is kept too. As in hyperopt (``broadcast_best``) and NNI
(``suggest_parameter`` per key), each decision takes, independently, the one of its ``candidates`` draws
from l with the best l/g.

Why not NNI's ``TpeTuner`` (still available as ``nni_tpe``, the reference this one is measured against
in ``benchmarks/tabular.py``): it works on general hyper-parameter spaces and knows nothing of a finite
space, so on NAS-Bench-201 it re-proposes cells it has already evaluated (each repeat spends a query, in a
real benchmark a full training), and it costs about 2 ms per proposal, which alone made the tabular table
miss its time target. Here an architecture is never proposed twice (``allow_repeats`` false): when the
per-decision choice is an architecture already asked, the draws are ranked as whole architectures (sum
of the decisions' log l/g) and the best one not asked is taken; when all were, a fresh uniform sample is
taken — repeats happen only once the whole space has been asked. Pending (asked, not yet told) samples
count as asked, which is what keeps concurrent workers from training the same architecture.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies.checks import check_int, check_number
from nni_nas_bench.strategies.multi_trial import Metrics, MultiTrialStrategy, Sample


class TpeStrategy(MultiTrialStrategy):
    """TPE with per-decision categorical Parzen estimators; never proposes an architecture twice."""

    name = "tpe"

    def __init__(self, *, startup: int = 20, candidates: int = 24, gamma: float = 0.25, prior_weight: float = 1.0,
                 forgetting: int = 25, allow_repeats: bool = False, **settings: Any):
        super().__init__(**settings)
        self.startup = check_int(self.name, "startup", startup)
        self.candidates = check_int(self.name, "candidates", candidates)
        self.gamma = check_number(self.name, "gamma", gamma)
        if not 0 < self.gamma < 1:
            raise ConfigError(f"tpe.gamma is the share of good results, in (0, 1); got {gamma!r}")
        self.prior_weight = check_number(self.name, "prior_weight", prior_weight)
        self.forgetting = check_int(self.name, "forgetting", forgetting)
        if not isinstance(allow_repeats, bool):
            raise ConfigError(f"tpe.allow_repeats must be true or false, got {allow_repeats!r}")
        self.allow_repeats = allow_repeats

    def _settings(self) -> dict[str, Any]:
        return {"startup": self.startup, "candidates": self.candidates, "gamma": self.gamma,
                "prior_weight": self.prior_weight, "forgetting": self.forgetting, "allow_repeats": self.allow_repeats}

    def _reset(self) -> None:
        sizes = np.array([len(values) for values in self.choices])
        self._sizes = sizes
        # Flat value ids: decision d's value v is column offsets[d] + v of every histogram.
        self._offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self._valid = np.arange(sizes.max())[None, :] < sizes[:, None]  # (decisions, max size)
        # Indices and accuracy of each successful result, in the order told (rows [0, _n) are filled).
        self._x = np.zeros((self.budget, len(sizes)), dtype=np.int64)
        self._y = np.zeros(self.budget)
        self._n = 0
        # The results ranked best first, ties to the earlier one: (-accuracy, time) kept sorted as they come
        # (a stable argsort of -y per proposal gives the same order, at O(n log n) each time).
        self._ranked: list[tuple[float, int]] = []
        self._uniform = bool((sizes == sizes[0]).all())  # every decision has as many values (NB201: 5)
        self._columns = np.arange(len(sizes))
        self._asked_keys: set[tuple[int, ...]] = set()
        self._space_size = math.prod(int(s) for s in sizes)

    # ------------------------------------------------------------------------------ ask / tell
    def _propose(self) -> Sample:
        if self._n >= self.startup:
            indices = self._model_proposal()
            if indices is not None:
                return self._take(indices)
        return self._take(self._fresh_uniform())

    def _observe(self, sample: Sample, metrics: Metrics | None) -> None:
        if metrics is not None:  # a failure teaches nothing, but its architecture stays asked
            if self._n == len(self._y):  # a budget raised after start
                self._x, self._y = np.concatenate([self._x, self._x]), np.concatenate([self._y, self._y])
            accuracy = float(metrics["default"])
            self._x[self._n], self._y[self._n] = self.indices(sample), accuracy
            bisect.insort(self._ranked, (-accuracy, self._n))
            self._n += 1

    # ------------------------------------------------------------------------------ the model
    def _model_proposal(self) -> np.ndarray | None:
        """Per decision, the draw from l with the best l/g (hyperopt, NNI); if that architecture was asked,
        the best not-asked draw ranked as a whole architecture; None when every draw was asked."""
        log_l, log_g = self.log_densities()
        # Draw candidates from l, decision by decision (row d: the next ``candidates`` uniforms, as one
        # ``rng.choice(K, candidates, p=l_d)`` per decision would), by inverting each cumulative histogram.
        cumulative = np.cumsum(np.exp(log_l), axis=1)
        u = self.rng.rand(len(self._sizes), self.candidates)
        cand = (u[:, :, None] >= cumulative[:, None, :]).sum(axis=2).T  # (candidates, decisions)
        cand = np.minimum(cand, self._sizes - 1)  # float round-off at the top of a histogram
        columns = self._columns
        ratio = (log_l - log_g)[columns, cand]  # (candidates, decisions)
        choice = cand[np.argmax(ratio, axis=0), columns]  # independent per decision, first on ties
        if self.allow_repeats or tuple(choice) not in self._asked_keys:
            return choice
        for k in np.argsort(-ratio.sum(axis=1), kind="stable"):
            if self.allow_repeats or tuple(cand[k]) not in self._asked_keys:
                return cand[k]
        return None

    def log_densities(self) -> tuple[np.ndarray, np.ndarray]:
        """log l and log g of every decision's values (rows: decisions, padded) from the results so far.

        The good set is the best ``min(ceil(gamma sqrt(n)), forgetting)`` (hyperopt's ``ap_split_trials``
        with ``gamma_cap`` = its linear forgetting, 25; NNI's ``split_history``), ties to the earlier
        result; both sets keep the order results were told, which linear forgetting weighs by.
        """
        n = self._n
        n_good = min(math.ceil(self.gamma * math.sqrt(n)), self.forgetting)
        good = sorted(t for _, t in self._ranked[:n_good])  # time order, for forgetting
        is_bad = np.ones(n, dtype=bool)
        is_bad[good] = False
        x = self._x[:n]
        log_l, log_g = np.log(self._densities(x[good], x[is_bad]))
        return log_l, log_g

    def _weights(self, n: int) -> np.ndarray:
        """hyperopt's linear forgetting: the oldest of ``n`` results ramp up from 1/n, the newest 25 count fully."""
        weights = np.ones(n)
        if n > self.forgetting:
            weights[: n - self.forgetting] = np.linspace(1.0 / n, 1.0, n - self.forgetting)
        return weights

    def _densities(self, good: np.ndarray, bad: np.ndarray) -> np.ndarray:
        """Per decision, the prior-smoothed, forgetting-weighted histograms of the ``good`` and the ``bad``
        rows, stacked (2, decisions, values): one weighted ``bincount`` for both (each bin still sums its
        rows in the order told, as two counts would)."""
        total, columns = int(self._sizes.sum()), good.shape[1]
        ids = np.concatenate([(good + self._offsets).ravel(), (bad + self._offsets + total).ravel()])
        weights = np.concatenate([self._weights(len(good)), self._weights(len(bad))]).repeat(columns)
        flat = np.bincount(ids, weights=weights, minlength=2 * total)
        if self._uniform:
            density = flat.reshape(2, *self._valid.shape) + self.prior_weight  # prior_weight per value (hyperopt)
        else:
            hist = np.zeros((2, *self._valid.shape))
            hist[:, self._valid] = flat.reshape(2, total)
            density = np.where(self._valid, hist + self.prior_weight, 0.0)
        return np.maximum(density / density.sum(axis=2, keepdims=True), 1e-300)  # padding: never drawn

    # ------------------------------------------------------------------------------ repeats
    def _fresh_uniform(self) -> np.ndarray:
        """A uniform sample by the space's sampler, not asked yet (unless repeats are allowed or all were)."""
        for _ in range(1000):
            indices = np.array(self.indices(self.random_sample()))
            if self.allow_repeats or tuple(indices) not in self._asked_keys:
                return indices
        if len(self._asked_keys) < self._space_size <= 10**7:  # a nearly exhausted small space: what is left
            for flat in self.rng.permutation(self._space_size):
                indices = np.array(np.unravel_index(flat, tuple(self._sizes)))
                if tuple(indices) not in self._asked_keys:
                    return indices
        return indices  # every architecture was asked: a repeat is the only option

    def _take(self, indices: np.ndarray) -> Sample:
        self._asked_keys.add(tuple(int(i) for i in indices))
        return self.from_indices(indices)
