"""REINFORCE (Williams 1992) over independent categorical decisions: the multi-trial RL baseline.

The policy holds one vector of logits per decision (no controller network: the decisions of a space of
this suite are a product of categoricals, as NAS-Bench-201's RL baseline treats them). Each result
updates the logits with the policy gradient ``lr · (r − b) · ∇ log π(sample)``, where ``r`` is the
accuracy as a fraction and ``b`` an exponential moving average of past rewards (``baseline_decay``),
which removes most of the gradient's variance. It plays the role of NNI's ``PolicyBasedRL`` without
its tianshou/gym dependency. Updates happen as results arrive, so candidates run asynchronously.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies import register_strategy
from nni_nas_bench.strategies.multi_trial import Metrics, MultiTrialStrategy, Sample


@register_strategy("reinforce")
class ReinforceStrategy(MultiTrialStrategy):
    """Policy-gradient search with independent softmax policies per decision and a moving-average baseline."""

    def __init__(self, *, lr: float = 0.5, baseline_decay: float = 0.9, **settings: Any):
        super().__init__(**settings)
        if not isinstance(lr, (int, float)) or lr <= 0:
            raise ConfigError(f"reinforce.lr must be a positive number, got {lr!r}")
        if not isinstance(baseline_decay, (int, float)) or not 0 <= baseline_decay < 1:
            raise ConfigError(f"reinforce.baseline_decay must be in [0, 1), got {baseline_decay!r}")
        self.lr, self.baseline_decay = float(lr), float(baseline_decay)

    def _settings(self) -> dict[str, Any]:
        return {"lr": self.lr, "baseline_decay": self.baseline_decay}

    def _reset(self) -> None:
        self._logits = [np.zeros(len(values)) for values in self.choices]
        self._baseline: float | None = None

    def probabilities(self) -> list[np.ndarray]:
        """The current policy: one probability vector per decision (``self.labels`` order)."""
        out = []
        for logits in self._logits:
            e = np.exp(logits - logits.max())
            out.append(e / e.sum())
        return out

    def _propose(self) -> Sample:
        return self.from_indices([self.rng.choice(len(p), p=p) for p in self.probabilities()])

    def _observe(self, sample: Sample, metrics: Metrics | None) -> None:
        if metrics is None:
            return  # a failed evaluation carries no reward signal
        reward = float(metrics["default"]) / 100.0
        if self._baseline is None:
            self._baseline = reward
        advantage = reward - self._baseline
        for logits, p, i in zip(self._logits, self.probabilities(), self.indices(sample)):
            grad = -p
            grad[i] += 1.0  # ∇ log softmax(logits)[i]
            logits += self.lr * advantage * grad
        self._baseline = self.baseline_decay * self._baseline + (1 - self.baseline_decay) * reward
