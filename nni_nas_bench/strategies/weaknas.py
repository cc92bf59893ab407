"""WeakNAS (Wu et al., NeurIPS 2021): a sequence of weak predictors narrows the search step by step.

SPEC: start with ``initial`` uniform samples (100; NAS-Bench-201: 10), fit a weak predictor (an MLP of
4 hidden layers × 1000 units trained for 100 iterations; gradient-boosted trees are the paper's other
choice, not used here so that scikit-learn is not a dependency), rank a large pool of uniform samples
(``pool_size``, the space's own sampler) by the prediction, and evaluate ``per_iteration`` (10)
architectures drawn from the predicted top ``top_k`` (100); refit on everything evaluated so far and
repeat until the budget is spent. The predictor sees each sample as one-hot per decision and learns
standardized accuracies (Adam, full batch). Each refit waits for the previous batch (as in the paper).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies import register_strategy
from nni_nas_bench.strategies.checks import check_int
from nni_nas_bench.strategies.multi_trial import Metrics, MultiTrialStrategy, Sample


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
                 hidden: int = 1000, layers: int = 4, iterations: int = 100, lr: float = 1e-3, **settings: Any):
        super().__init__(**settings)
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
                "pool_size": self.pool_size, "hidden": self.hidden, "layers": self.layers,
                "iterations": self.iterations, "lr": self.lr}

    def _reset(self) -> None:
        self._queue: list[Sample] = []
        self._initial_asked = 0
        self._outstanding = 0
        self._data: list[tuple[Sample, float]] = []
        self._seen: set[tuple[int, ...]] = set()

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
        self._seen.add(tuple(self.indices(sample)))
        return sample

    def _observe(self, sample: Sample, metrics: Metrics | None) -> None:
        self._outstanding -= 1
        if metrics is not None:
            self._data.append((sample, float(metrics["default"])))

    def _next_batch(self) -> list[Sample]:
        """Fit the predictor on every result so far; draw a batch from its top set of a fresh pool."""
        pool, keys = [], set()
        for _ in range(self.pool_size * 3):  # unseen, distinct samples; a tiny space may run out
            sample = self.random_sample()
            key = tuple(self.indices(sample))
            if key not in self._seen and key not in keys:
                keys.add(key)
                pool.append(sample)
                if len(pool) == self.pool_size:
                    break
        if not pool:
            pool = [self.random_sample() for _ in range(self.per_iteration)]
        if len(self._data) < 2:  # nothing to learn from yet (all failed): uniform samples
            return pool[: self.per_iteration]
        x = np.stack([self.encode(s) for s, _ in self._data])
        y = np.array([acc for _, acc in self._data])
        y = (y - y.mean()) / (y.std() + 1e-8)
        model = fit_mlp(x, y, hidden=self.hidden, layers=self.layers, iterations=self.iterations, lr=self.lr,
                        seed=int(self.rng.randint(2**31)))
        with torch.no_grad():
            predicted = model(torch.from_numpy(np.stack([self.encode(s) for s in pool]))).squeeze(1).numpy()
        top = np.argsort(-predicted, kind="stable")[: self.top_k]
        picks = self.rng.choice(top, size=min(self.per_iteration, len(top)), replace=False)
        return [pool[i] for i in picks]
