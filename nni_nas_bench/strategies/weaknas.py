"""WeakNAS (Wu et al., NeurIPS 2021): a sequence of weak predictors narrows the search step by step.

As the authors' ``WeakNAS.py`` (VITA-Group/WeakNAS, ``run``): ``initial`` distinct uniform samples (100;
NAS-Bench-201: 10), fit a weak predictor on everything evaluated, rank by its prediction, take the
predicted top ``top_k`` (100) of ALL that is ranked, remove what was already evaluated from it, and
evaluate ``per_iteration`` (10) drawn uniformly without replacement from what is left; when fewer than
``per_iteration`` are left, the best-predicted not-evaluated ones in order. Refit, repeat until the budget
is spent. Each refit waits for the previous batch (as in the paper).

What is ranked: the whole space when it has at most ``WHOLE_SPACE_LIMIT`` architectures (NAS-Bench-201's
15,625, as the authors' code does), enumerated once as index vectors; otherwise a fresh pool of
``pool_size`` distinct unseen samples from the space's own sampler (DARTS-like spaces, ~10^18).

The predictor (``predictor``), on the one-hot-per-decision encoding (the reference's ``--mlp_onehot``):

- ``mlp`` (default, the reference's ``--predictor MLP``): scikit-learn's ``MLPRegressor`` with the
  reference's arguments — ``hidden_layer_sizes`` ``layers`` × ``hidden`` (4 × 1000), ``max_iter``
  ``iterations`` (100 epochs) — and scikit-learn's defaults for the rest (ReLU, Adam lr ``lr`` 1e-3,
  mini-batches of min(200, n), L2 ``alpha`` 1e-4, early stop after 10 epochs without improvement);
  seeded from ``self.rng``. Costly: a 4 × 1000 refit and a ranking of 15,625 cells take seconds on a CPU,
  nothing next to a candidate's training but dominant in tabular runs;
- ``gbdt``: gradient-boosted regression trees, the paper's other main predictor (the reference's
  ``--predictor XGBoost``: 1000 trees of depth 20, squared error, xgboost's learning rate 0.3), here
  scikit-learn's ``GradientBoostingRegressor`` with those values, not XGBoost (no extra dependency;
  xgboost's L2 penalty on leaf weights, lambda 1, has no counterpart);
- ``linear``: least squares (ridge 1e-3), the weakest predictor; it refits in microseconds, so the
  tabular table (``nni_nas_bench.tabular.runner``: 300 runs × 99 refits) uses it; the MLP's cost and
  result are measured next to it in ``benchmarks/tabular.py``.

The predictor learns accuracies standardised with the mean and deviation of the samples evaluated so far.
The reference standardises with the whole benchmark's labels (``norm_label_all_train``, WeakNAS.py:418),
which a search cannot know (it is the table being searched, and off a tabular benchmark it does not
exist); for the ranking only the shift and scale differ, and for the MLP's L2 penalty and Adam steps the
observed statistics give targets of the same unit variance.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies.checks import check_int, check_number
from nni_nas_bench.strategies.multi_trial import Metrics, MultiTrialStrategy, Sample

WHOLE_SPACE_LIMIT = 100_000  # spaces up to this size are ranked whole instead of through a random pool
PREDICTORS = ("mlp", "gbdt", "linear")
# Small spaces enumerated once per process (see WeakNasStrategy._enumerate): shape -> rows, encodings.
_ENUMERATED: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def make_mlp(*, hidden: int, layers: int, iterations: int, lr: float, alpha: float, seed: int) -> Any:
    """The reference's predictor: ``MLPRegressor(hidden_layer_sizes=mlp_size, max_iter=mlp_iter)``
    (WeakNAS.py:299), the rest scikit-learn's defaults, seeded for reproducibility."""
    from sklearn.neural_network import MLPRegressor

    return MLPRegressor(hidden_layer_sizes=(hidden,) * layers, max_iter=iterations, learning_rate_init=lr,
                        alpha=alpha, random_state=seed)


def make_gbdt(*, trees: int, depth: int, learning_rate: float, seed: int) -> Any:
    """Gradient-boosted trees with the reference's XGBoost settings (WeakNAS.py:288-293: ``max_depth``
    20, 1000 boosting rounds, ``reg:squarederror``; xgboost's default eta 0.3), as scikit-learn's."""
    from sklearn.ensemble import GradientBoostingRegressor

    return GradientBoostingRegressor(n_estimators=trees, max_depth=depth, learning_rate=learning_rate,
                                     loss="squared_error", random_state=seed)


class WeakNasStrategy(MultiTrialStrategy):
    """Iterative weak predictors: ``initial`` random samples, then batches from the predicted top set."""

    name = "weaknas"

    def __init__(self, *, initial: int = 100, per_iteration: int = 10, top_k: int = 100, pool_size: int = 10000,
                 predictor: str = "mlp", hidden: int = 1000, layers: int = 4, iterations: int = 100, lr: float = 1e-3,
                 alpha: float = 1e-4, trees: int = 1000, depth: int = 20, tree_lr: float = 0.3, **settings: Any):
        super().__init__(**settings)
        if predictor not in PREDICTORS:
            raise ConfigError(f"weaknas.predictor must be one of {', '.join(PREDICTORS)}, got {predictor!r}")
        self.predictor = predictor
        self.initial = check_int(self.name, "initial", initial)
        self.per_iteration = check_int(self.name, "per_iteration", per_iteration)
        self.top_k = check_int(self.name, "top_k", top_k)
        self.pool_size = check_int(self.name, "pool_size", pool_size)
        if top_k < per_iteration or pool_size < top_k:
            raise ConfigError(f"weaknas needs per_iteration <= top_k <= pool_size, got {per_iteration}, {top_k}, "
                              f"{pool_size}")
        self.hidden = check_int(self.name, "hidden", hidden)
        self.layers = check_int(self.name, "layers", layers)
        self.iterations = check_int(self.name, "iterations", iterations)
        if not isinstance(lr, (int, float)) or lr <= 0:
            raise ConfigError(f"weaknas.lr must be a positive number, got {lr!r}")
        self.lr = float(lr)
        self.alpha = check_number(self.name, "alpha", alpha)
        self.trees = check_int(self.name, "trees", trees)
        self.depth = check_int(self.name, "depth", depth)
        self.tree_lr = check_number(self.name, "tree_lr", tree_lr)

    def _settings(self) -> dict[str, Any]:
        out = {"initial": self.initial, "per_iteration": self.per_iteration, "top_k": self.top_k,
               "pool_size": self.pool_size, "predictor": self.predictor}
        if self.predictor == "mlp":
            out.update(hidden=self.hidden, layers=self.layers, iterations=self.iterations, lr=self.lr,
                       alpha=self.alpha)
        elif self.predictor == "gbdt":
            out.update(trees=self.trees, depth=self.depth, tree_lr=self.tree_lr)
        return out

    def _reset(self) -> None:
        self._queue: list[Sample] = []
        self._initial_asked = 0
        self._outstanding = 0
        # Index rows and accuracies of the successful evaluations (rows [0, _n) are filled): arrays, so a
        # refit does not rebuild them from Python lists (99 refits per tabular run).
        self._rows = np.zeros((self.budget, len(self.choices)), dtype=np.int64)
        self._accuracies = np.zeros(self.budget)
        self._n = 0
        self._seen: set[tuple[int, ...]] = set()  # asked samples of a large space (a small one: _unseen)
        self._sizes = tuple(len(values) for values in self.choices)
        self._whole: np.ndarray | None = None  # every architecture as index rows, when the space is small
        if math.prod(self._sizes) <= WHOLE_SPACE_LIMIT:
            self._whole, self._whole_x = self._enumerate(self._sizes)
            self._unseen = np.ones(len(self._whole), dtype=bool)  # by flat index (np.ravel_multi_index)

    def _propose(self) -> Sample | None:
        if self._initial_asked < self.initial:
            self._initial_asked += 1
            sample = self._initial_sample()
        else:
            if not self._queue:
                if self._outstanding:
                    return None  # the next predictor needs this batch's results
                self._queue = self._next_batch()
            sample = self._queue.pop(0)
        self._outstanding += 1
        indices = self.indices(sample)
        if self._whole is not None:
            self._unseen[np.ravel_multi_index(indices, self._sizes)] = False
        else:
            self._seen.add(tuple(indices))
        return sample

    def _observe(self, sample: Sample, metrics: Metrics | None) -> None:
        self._outstanding -= 1
        if metrics is not None:
            if self._n == len(self._accuracies):  # a budget raised after start
                self._rows = np.concatenate([self._rows, self._rows])
                self._accuracies = np.concatenate([self._accuracies, self._accuracies])
            self._rows[self._n], self._accuracies[self._n] = self.indices(sample), float(metrics["default"])
            self._n += 1

    def _initial_sample(self) -> Sample:
        """A uniform sample not asked yet: the reference draws its initial set without replacement
        (``np.random.choice(..., replace=False)``, WeakNAS.py:244)."""
        for _ in range(1000):
            sample = self.random_sample()
            indices = self.indices(sample)
            if self._whole is not None:
                if self._unseen[np.ravel_multi_index(indices, self._sizes)]:
                    return sample
            elif tuple(indices) not in self._seen:
                return sample
        if self._whole is not None and self._unseen.any():  # a nearly exhausted small space: what is left
            return self.from_indices(self._whole[self.rng.choice(np.flatnonzero(self._unseen))])
        return sample

    def _next_batch(self) -> list[Sample]:
        """Fit the predictor on every result so far; draw a batch from its top set, less what was evaluated."""
        if self._whole is not None:  # rank the whole space (all asked: only repeats are left)
            rows, features = self._whole, self._whole_x
            unseen = self._unseen if self._unseen.any() else np.ones_like(self._unseen)
        else:
            rows = np.array([self.indices(s) for s in self._random_pool()])
            features, unseen = self.encode_indices(rows), np.ones(len(rows), dtype=bool)
        candidates = np.flatnonzero(unseen)
        if self._n < 2:  # nothing to learn from yet (all failed): uniform picks
            picks = self.rng.choice(candidates, size=min(self.per_iteration, len(candidates)), replace=False)
        else:
            y = self._accuracies[: self._n]
            predicted = self._fit_predict(self.encode_indices(self._rows[: self._n]), (y - y.mean()) / (y.std() + 1e-8),
                                          features)
            picks = self.select(predicted, unseen)
        return [self.from_indices(rows[i]) for i in picks]

    def _enumerate(self, sizes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Every architecture of a small space as index rows, and their encoding: float32 for the
        scikit-learn predictors (as they are fitted), float64 for the linear one (what its product with
        float64 weights computes in anyway, so 99 predictions per run do not each cast 15,625 rows).
        Built once per process and space shape, read-only: a tabular worker runs hundreds of searches."""
        if sizes not in _ENUMERATED:
            whole = np.indices(sizes).reshape(len(sizes), -1).T
            encoded = self.encode_indices(whole)
            arrays = (whole, encoded, encoded.astype(np.float64))
            for array in arrays:
                array.setflags(write=False)
            _ENUMERATED[sizes] = arrays
        whole, encoded, encoded64 = _ENUMERATED[sizes]
        return whole, encoded64 if self.predictor == "linear" else encoded

    def select(self, predicted: np.ndarray, unseen: np.ndarray) -> np.ndarray:
        """The reference's pick from a ranking (WeakNAS.py:247-265, 304-309): the top ``top_k`` of ALL
        ranked (best first, lower index first on ties), less what was evaluated; ``per_iteration`` of what
        is left uniformly without replacement, or, when fewer are left, the best-predicted unseen ones."""
        left = (top := self._best(predicted, self.top_k))[unseen[top]]
        if len(left) >= self.per_iteration:
            return self.rng.choice(left, size=self.per_iteration, replace=False)
        # The best-predicted unseen ones: the ranking restricted to them (their indices ascend, so ties
        # still go to the lower index).
        candidates = np.flatnonzero(unseen)
        return candidates[self._best(predicted[candidates], self.per_iteration)]

    @staticmethod
    def _best(predicted: np.ndarray, k: int) -> np.ndarray:
        """The first ``k`` indices of the ranking (best first, lower index first on ties): the ``k`` smallest
        ``(-predicted, index)``. A partial sort picks every index at least as good as the ``k``-th before
        sorting those: on NB201 that ranks ~100 of 15,625 cells per iteration instead of all of them
        (``tests/conformance/test_weaknas.py`` checks it against the full sort, ties included)."""
        key = -predicted
        if k < len(key) and not np.isnan(key).any():
            head = np.flatnonzero(key <= np.partition(key, k - 1)[k - 1])
            return head[np.lexsort((head, key[head]))][:k]
        return np.lexsort((np.arange(len(key)), key))[:k]

    def _random_pool(self) -> list[Sample]:
        """``pool_size`` distinct unseen uniform samples (a large space: ranking all of it is impossible)."""
        pool, keys = [], set()
        for _ in range(self.pool_size * 3):  # a tiny space may run out
            sample = self.random_sample()
            key = tuple(self.indices(sample))
            if key not in self._seen and key not in keys:
                keys.add(key)
                pool.append(sample)
                if len(pool) == self.pool_size:
                    break
        return pool or [self.random_sample() for _ in range(self.per_iteration)]

    def make_predictor(self, seed: int) -> Any:
        """The configured scikit-learn estimator (``mlp``, ``gbdt``); None for ``linear``."""
        if self.predictor == "mlp":
            return make_mlp(hidden=self.hidden, layers=self.layers, iterations=self.iterations, lr=self.lr,
                            alpha=self.alpha, seed=seed)
        if self.predictor == "gbdt":
            return make_gbdt(trees=self.trees, depth=self.depth, learning_rate=self.tree_lr, seed=seed)
        return None

    def _fit_predict(self, x: np.ndarray, y: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Fit the configured predictor on ``(x, y)`` and predict ``features``."""
        seed = int(self.rng.randint(2**31))
        model = self.make_predictor(seed)
        if model is None:
            design = np.hstack([x, np.ones((len(x), 1))])
            weights = np.linalg.solve(design.T @ design + 1e-3 * np.eye(design.shape[1]), design.T @ y)
            return features @ weights[:-1] + weights[-1]
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():  # 100 epochs is the reference's budget, not a failure to report
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x, y)
        return np.asarray(model.predict(features), dtype=np.float64)
