"""MANAS: multi-agent neural architecture search (Lopes, Carlucci, Esperança et al., arXiv 1909.01051).

NAS as a game of many bandit agents: every decision of the cell space (each edge's op, each node's
input pair: one categorical of ``space.mutables``) is an agent with its own policy; together they
sample one architecture per step. There is no architecture optimizer and no mixed edge: the sampled
architecture is trained on a batch of the training half on shared weights (a
:class:`~search_spaces.path_supernet.PathSupernet`), then scored on a batch of the validation half, and
that score is the common reward of all agents.

Each agent plays Exp3-style with Boltzmann exploration, MANAS's setting of adversarial bandits:

    π(a) = (1 − γ) · softmax(R̃(a) / T) + γ / K,     R̃(a_t) += (r_t − b) / π(a_t),

with ``K`` the agent's number of actions, ``r_t`` the validation accuracy (%) of the sampled
architecture, ``b`` the reward baseline, ``R̃`` the importance-weighted cumulative reward (unbiased for
every action, played or not) and the temperature ``T`` decaying linearly per epoch from
``temperature_start`` to ``temperature_end``. The final architecture is each agent's most probable
action. MANAS's code was never released (SPEC "Known defects"); the numbers are SPEC's: reward
baseline 5, γ 0.1 (SPORT8 0.07, FLOWERS102 0.05, MIT67 0.01: set per dataset in the YAMLs),
temperature 1000 → 200 (SPORT8 300 → 100, MIT67 5000 → 2000); 50 epochs, batch 64, 8 cells, 16 channels,
and DARTS's shared-weight optimizer (SGD 0.025 cosine → 0.001, momentum 0.9, weight decay 3e-4, clip 5).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies import register_strategy
from nni_nas_bench.strategies.checks import check_number
from nni_nas_bench.strategies.weight_sharing import SearchContext, WeightSharingStrategy
from search_spaces.genotype import Genotype


class Agent:
    """One decision's Exp3/Boltzmann bandit: importance-weighted cumulative rewards and a mixed policy."""

    def __init__(self, label: str, values: list[Any]):
        self.label, self.values = label, list(values)
        self.rewards = np.zeros(len(self.values))

    def policy(self, temperature: float, gamma: float) -> np.ndarray:
        z = self.rewards / temperature
        z = np.exp(z - z.max())
        return (1 - gamma) * z / z.sum() + gamma / len(self.values)

    def update(self, action: int, reward: float, prob: float) -> None:
        self.rewards[action] += reward / prob


@register_strategy("manas")
class ManasStrategy(WeightSharingStrategy):
    """MANAS over a cell space (the DARTS space in the benchmark) with SPEC's CIFAR defaults."""

    name = "manas"

    def __init__(self, *, epochs: int = 50, batch_size: int = 64, layers: int = 8, channels: int = 16,
                 w_lr: float = 0.025, w_lr_min: float = 0.001, w_weight_decay: float = 3e-4,
                 reward_baseline: float = 5.0, gamma: float = 0.1, temperature_start: float = 1000.0,
                 temperature_end: float = 200.0, **common: Any):
        super().__init__(epochs=epochs, batch_size=batch_size, layers=layers, channels=channels, w_lr=w_lr,
                         w_lr_min=w_lr_min, w_weight_decay=w_weight_decay, **common)
        self.reward_baseline = check_number(self.name, "reward_baseline", reward_baseline, -100.0)
        self.gamma = check_number(self.name, "gamma", gamma)
        if self.gamma > 1:
            raise ConfigError(f"manas.gamma (the uniform exploration share) must be in [0, 1], got {gamma!r}")
        self.temperature_start = check_number(self.name, "temperature_start", temperature_start, 1e-9)
        self.temperature_end = check_number(self.name, "temperature_end", temperature_end, 1e-9)

    @property
    def settings(self) -> dict[str, Any]:
        return {**super().settings, "reward_baseline": self.reward_baseline, "gamma": self.gamma,
                "temperature_start": self.temperature_start, "temperature_end": self.temperature_end}

    def temperature(self, epoch: int) -> float:
        """Linear decay over the epochs, from ``temperature_start`` (first) to ``temperature_end`` (last)."""
        t = epoch / max(self.epochs - 1, 1)
        return self.temperature_start + t * (self.temperature_end - self.temperature_start)

    def _search(self, ctx: SearchContext) -> tuple[Genotype, float]:
        from nni_nas_bench.data._seeding import derive_seed

        agents = [Agent(label, mutable.values) for label, mutable in ctx.space.mutables.items()]
        rng = np.random.RandomState(derive_seed(self.name, "agents", self.seed) % (2**32))
        played: list[tuple[int, float]] = []  # (action, probability) of each agent in the current round
        rewards: list[float] = []

        def genotype_of(actions: list[int]) -> Genotype:
            return ctx.space.to_genotype({a.label: a.values[i] for a, i in zip(agents, actions)})

        def greedy() -> Genotype:
            return genotype_of([int(np.argmax(a.rewards)) for a in agents])

        def propose(temperature: float) -> Genotype:
            played.clear()
            for agent in agents:
                pi = agent.policy(temperature, self.gamma)
                action = int(rng.choice(len(pi), p=pi))
                played.append((action, float(pi[action])))
            return genotype_of([a for a, _ in played])

        def reward(genotype: Genotype) -> None:
            r = self.batch_accuracy(ctx, genotype) - self.reward_baseline
            for agent, (action, prob) in zip(agents, played):
                agent.update(action, r, prob)
            rewards.append(r + self.reward_baseline)

        for epoch in range(self.epochs):
            temperature = self.temperature(epoch)
            rewards.clear()
            row: dict[str, Any] = {"epoch": epoch + 1, **self.train_epoch(ctx, epoch, partial(propose, temperature),
                                                                          after_step=reward)}
            best = greedy()
            row.update({"valid_acc": self.valid_accuracy(ctx, best), "genotype": best.to_text(),
                        "temperature": temperature, "mean_reward": float(np.mean(rewards))})
            self.end_epoch(ctx, row)
        best = greedy()
        return best, ctx.history[-1]["valid_acc"]
