"""REINFORCE (Williams 1992) over independent categorical decisions: NAS-Bench-201's RL baseline.

As AutoDL-Projects' ``exps/NAS-Bench-201-algos/reinforce.py`` (the NAS-Bench-201 paper's REINFORCE): the
policy is one vector of logits per decision (that script's ``arch_parameters``, one row per edge; no
controller network), initialised to ``1e-3 · N(0, 1)``; after each result the EMA baseline is updated
with the reward FIRST (``baseline_decay`` 0.9, bias-corrected: numerator and denominator both
averaged), then the loss ``−log π(sample) · (r − b)`` takes one Adam step of learning rate ``lr`` 0.5
(``docs/NAS-Bench-201.md``: ``REINFORCE.sh cifar10 0.5``). The reward ``r`` is the validation accuracy in
percent, as NAS-Bench-201's API returns it; no entropy bonus (the reference has none). The final pick is
the best evaluated architecture (the reference's ``max(trace)``), not the policy's argmax.

Updates happen as results arrive, so candidates run asynchronously; ``log π(sample)`` is taken under the
policy at update time, which is the sampling-time policy of the reference when one candidate runs at a
time (``trialConcurrency`` 1, or ``search(batch_size=1)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies.multi_trial import Metrics, MultiTrialStrategy, Sample


class ReinforceStrategy(MultiTrialStrategy):
    """Policy-gradient search with independent softmax policies per decision, Adam, and an EMA baseline."""

    name = "reinforce"

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
        # reinforce.py:40-42: one row of 1e-3 * N(0, 1) logits per decision. One matrix, rows padded with -inf
        # where a decision has fewer values (softmax 0, gradient 0, Adam leaves them): one tensor for
        # log_softmax and Adam instead of one per decision, the same arithmetic per element.
        sizes = [len(values) for values in self.choices]
        init = torch.full((len(sizes), max(sizes)), float("-inf"), dtype=torch.float64)
        for row, size in enumerate(sizes):
            init[row, :size] = torch.from_numpy(1e-3 * self.rng.randn(size))
        self._sizes = sizes
        self._logits = torch.nn.Parameter(init)  # float64: exact, tiny
        self._rows = torch.arange(len(sizes))
        self._optimizer = torch.optim.Adam([self._logits], lr=self.lr)
        self._ema_num, self._ema_den = 0.0, 0.0

    @property
    def baseline(self) -> float | None:
        """The bias-corrected moving average of the rewards so far (None before the first)."""
        return self._ema_num / self._ema_den if self._ema_den else None

    def probabilities(self) -> list[np.ndarray]:
        """The current policy: one probability vector per decision (``self.labels`` order)."""
        with torch.no_grad():
            p = torch.softmax(self._logits, dim=1).numpy()
        return [p[row, :size].copy() for row, size in enumerate(self._sizes)]

    def _propose(self) -> Sample:
        return self.from_indices([self.rng.choice(len(p), p=p / p.sum()) for p in self.probabilities()])

    def _observe(self, sample: Sample, metrics: Metrics | None) -> None:
        if metrics is None:
            return  # a failed evaluation carries no reward signal
        reward = float(metrics["default"])
        m = self.baseline_decay
        self._ema_num = m * self._ema_num + (1 - m) * reward
        self._ema_den = m * self._ema_den + (1 - m)
        chosen = torch.as_tensor(self.indices(sample))
        log_prob = torch.log_softmax(self._logits, dim=1)[self._rows, chosen].sum()
        loss = -log_prob * (reward - self.baseline)
        self._optimizer.zero_grad()
        loss.backward()
        self._optimizer.step()
