"""WeakNAS (Wu et al., NeurIPS 2021): a sequence of weak predictors narrows the search step by step.

SPEC: start with ``initial`` uniform samples (100; NAS-Bench-201: 10), fit a weak predictor, rank the
space by its prediction, and evaluate ``per_iteration`` (10) architectures drawn from the predicted top
``top_k`` (100) of those not evaluated yet; refit on everything evaluated so far and repeat until the
budget is spent. Each refit waits for the previous batch (as in the paper).

What is ranked: the whole space when it has at most ``WHOLE_SPACE_LIMIT`` architectures (NAS-Bench-201's
15,625, as the authors' code does), enumerated once as index vectors; otherwise a fresh pool of
``pool_size`` distinct unseen samples from the space's own sampler (DARTS-like spaces, ~10^18).

The predictor (``predictor``), on the one-hot-per-decision encoding, learning standardized accuracies:

- ``mlp`` (default, SPEC): a ReLU MLP of ``layers`` × ``hidden`` (4 × 1000) trained full batch with Adam
  for ``iterations`` (100) steps. The paper's main predictor. Costly: with 4 × 1000 units a refit
  takes seconds on a CPU, which is nothing next to a candidate's training but dominates tabular runs;
- ``linear``: least squares (ridge 1e-3) — the weakest predictor of the authors' code, which offers
  LinearRegression next to MLP, trees and boosting (gradient-boosted trees, the paper's other main
  choice, are not used so that scikit-learn/XGBoost are not dependencies). It refits in microseconds,
  so the tabular table (``nni_nas_bench.tabular.runner``: 300 runs × 99 refits) uses it; the MLP's
  cost and result are measured next to it in ``benchmarks/tabular.py``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies import register_strategy
from nni_nas_bench.strategies.checks import check_int
from nni_nas_bench.strategies.multi_trial import Metrics, MultiTrialStrategy, Sample

WHOLE_SPACE_LIMIT = 100_000  # spaces up to this size are ranked whole instead of through a random pool
PREDICTORS = ("mlp", "linear")


def fit_mlp(x: np.ndarray, y: np.ndarray, *, hidden: int, layers: int, iterations: int, lr: float,
            seed: int) -> nn.Module:
    """A ReLU MLP regressor of ``y`` on ``x``, trained full batch with Adam; deterministic given ``seed``."""
    with torch.random.fork_rng(devices=[]):  # own seed, without touching the caller's torch RNG
        torch.manual_seed(seed)
        widths = [x.shape[1]] + [hidden] * layers
        blocks: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            blocks += [nn.Linear(a, b), nn.ReLU()]
        model = nn.Sequential(*blocks, nn.Linear(widths[-1], 1))
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))[:, None]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(iterations):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(inputs), targets)
        loss.backward()
        optimizer.step()
    return model.eval()


@register_strategy("weaknas")
class WeakNasStrategy(MultiTrialStrategy):
    """Iterative weak predictors: ``initial`` random samples, then batches from the predicted top set."""

    def __init__(self, *, initial: int = 100, per_iteration: int = 10, top_k: int = 100, pool_size: int = 10000,
                 predictor: str = "mlp", hidden: int = 1000, layers: int = 4, iterations: int = 100, lr: float = 1e-3,
                 **settings: Any):
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

    def _settings(self) -> dict[str, Any]:
        return {"initial": self.initial, "per_iteration": self.per_iteration, "top_k": self.top_k,
                "pool_size": self.pool_size, "predictor": self.predictor, "hidden": self.hidden, "layers": self.layers,
                "iterations": self.iterations, "lr": self.lr}

    def _reset(self) -> None:
        self._queue: list[Sample] = []
        self._initial_asked = 0
        self._outstanding = 0
        self._rows: list[list[int]] = []  # index rows and accuracies of the successful evaluations
        self._accuracies: list[float] = []
        self._seen: set[tuple[int, ...]] = set()  # asked samples of a large space (a small one: _unseen)
        self._sizes = tuple(len(values) for values in self.choices)
        self._whole: np.ndarray | None = None  # every architecture as index rows, when the space is small
        if math.prod(self._sizes) <= WHOLE_SPACE_LIMIT:
            self._whole = np.indices(self._sizes).reshape(len(self._sizes), -1).T
            self._whole_x = self.encode_indices(self._whole)
            self._unseen = np.ones(len(self._whole), dtype=bool)  # by flat index (np.ravel_multi_index)

    def _propose(self) -> Sample | None:
        if self._initial_asked < self.initial:
            self._initial_asked += 1
            sample = self.random_sample()
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
            self._rows.append(self.indices(sample))
            self._accuracies.append(float(metrics["default"]))

    def _next_batch(self) -> list[Sample]:
        """Fit the predictor on every result so far; draw a batch from its top set of what is unseen."""
        if self._whole is not None:  # rank the whole space, then keep the unseen (all seen: only repeats)
            rows, features = self._whole, self._whole_x
            allowed = self._unseen if self._unseen.any() else np.ones_like(self._unseen)
        else:
            rows = np.array([self.indices(s) for s in self._random_pool()])
            features, allowed = self.encode_indices(rows), np.ones(len(rows), dtype=bool)
        candidates = np.flatnonzero(allowed)
        if len(self._accuracies) < 2:  # nothing to learn from yet (all failed): uniform picks
            picks = self.rng.choice(candidates, size=min(self.per_iteration, len(candidates)), replace=False)
        else:
            y = np.array(self._accuracies)
            predicted = self._fit_predict(self.encode_indices(np.array(self._rows)), (y - y.mean()) / (y.std() + 1e-8),
                                          features)
            predicted = np.where(allowed, predicted, -np.inf)
            k = min(self.top_k, len(candidates))
            top = np.argpartition(-predicted, k - 1)[:k]
            top = top[np.lexsort((top, -predicted[top]))]  # best first, lower index first on ties
            picks = self.rng.choice(top, size=min(self.per_iteration, k), replace=False)
        return [self.from_indices(rows[i]) for i in picks]

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

    def _fit_predict(self, x: np.ndarray, y: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Fit the configured predictor on ``(x, y)`` and predict ``features``."""
        seed = int(self.rng.randint(2**31))
        if self.predictor == "linear":
            design = np.hstack([x, np.ones((len(x), 1))])
            weights = np.linalg.solve(design.T @ design + 1e-3 * np.eye(design.shape[1]), design.T @ y)
            return features @ weights[:-1] + weights[-1]
        model = fit_mlp(x, y, hidden=self.hidden, layers=self.layers, iterations=self.iterations, lr=self.lr,
                        seed=seed)
        with torch.no_grad():
            return model(torch.from_numpy(features.astype(np.float32))).squeeze(1).numpy()
