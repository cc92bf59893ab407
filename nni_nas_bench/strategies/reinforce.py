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
        # where a decision has fewer values (softmax 0, gradient 0, Adam leaves them): one array for
        # log-softmax and Adam instead of one per decision, the same arithmetic per element.
        sizes = [len(values) for values in self.choices]
        self._logits = np.full((len(sizes), max(sizes)), -np.inf)
        for row, size in enumerate(sizes):
            self._logits[row, :size] = 1e-3 * self.rng.randn(size)
        self._sizes = sizes
        self._rows = np.arange(len(sizes))
        self._adam = _Adam(self._logits.shape, lr=self.lr)
        self._ema_num, self._ema_den = 0.0, 0.0
        self._policy: np.ndarray | None = None  # exp(log policy) of the current logits, until the next step

    @property
    def baseline(self) -> float | None:
        """The bias-corrected moving average of the rewards so far (None before the first)."""
        return self._ema_num / self._ema_den if self._ema_den else None

    def _log_policy(self) -> np.ndarray:
        """log_softmax of each row (torch's arithmetic: ``x - max - log(sum(exp(x - max)))``)."""
        shifted = self._logits - self._logits.max(axis=1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))

    def _current_policy(self) -> np.ndarray:
        """``exp(log_softmax)`` of the logits (padded rows 0), computed once per policy: a proposal and the
        gradient of its result read the same one (one step per told result in between)."""
        if self._policy is None:
            self._policy = np.exp(self._log_policy())
        return self._policy

    def probabilities(self) -> list[np.ndarray]:
        """The current policy: one probability vector per decision (``self.labels`` order)."""
        p = self._current_policy()
        return [p[row, :size].copy() for row, size in enumerate(self._sizes)]

    def _propose(self) -> Sample:
        # One draw per decision exactly as the legacy ``RandomState.choice(n, p=p)`` makes it (cumulative sum
        # of p normalised by its last entry, one ``random_sample()``, ``searchsorted(side='right')``; frozen
        # by NEP 19), for all decisions at once: the same samples as one ``choice`` call per decision, in a
        # fifth of the time (1000 proposals per tabular run).
        p = self._current_policy()
        cdf = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
        cdf /= cdf[:, -1:]
        draws = self.rng.random_sample(len(self._sizes))
        return self.from_indices((cdf <= draws[:, None]).sum(axis=1).tolist())

    def _observe(self, sample: Sample, metrics: Metrics | None) -> None:
        if metrics is None:
            return  # a failed evaluation carries no reward signal
        reward = float(metrics["default"])
        m = self.baseline_decay
        self._ema_num = m * self._ema_num + (1 - m) * reward
        self._ema_den = m * self._ema_den + (1 - m)
        # d/d logits of  -sum_rows log_softmax(logits)[row, chosen] * (r - b): the reference's loss.backward()
        # in closed form, (p - onehot) * advantage per row, in the order autograd adds it up.
        advantage = reward - self.baseline
        grad = self._current_policy() * advantage
        grad[self._rows, self.indices(sample)] += -advantage
        self._adam.step(self._logits, grad)
        self._policy = None  # the logits moved


class _Adam:
    """``torch.optim.Adam`` (betas 0.9/0.999, eps 1e-8, no weight decay) on one float64 array, step for step
    the arithmetic of torch's single-tensor CPU path (``exp_avg.lerp_``, ``addcmul_``, ``addcdiv_``).

    Why not torch's own: its ``step()`` costs ~1 ms on a CPU-only machine (a CUDA availability probe through
    NVML per call once pytorch-lightning has set ``PYTORCH_NVML_BASED_CUDA_CHECK``), which was most of the
    tabular table's REINFORCE time (1000 steps per run, 300 runs). ``tests/conformance/test_reinforce.py``
    checks this class against ``torch.optim.Adam`` on random gradients.
    """

    def __init__(self, shape: tuple[int, ...], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.lr, self.betas, self.eps = lr, betas, eps
        self.exp_avg, self.exp_avg_sq, self.steps = np.zeros(shape), np.zeros(shape), 0

    def step(self, param: np.ndarray, grad: np.ndarray) -> None:
        """One update of ``param`` in place."""
        beta1, beta2 = self.betas
        self.steps += 1
        self.exp_avg += (1 - beta1) * (grad - self.exp_avg)
        self.exp_avg_sq *= beta2
        self.exp_avg_sq += (1 - beta2) * (grad * grad)
        step_size = self.lr / (1 - beta1**self.steps)
        denom = np.sqrt(self.exp_avg_sq) / (1 - beta2**self.steps) ** 0.5 + self.eps
        param += -step_size * (self.exp_avg / denom)
