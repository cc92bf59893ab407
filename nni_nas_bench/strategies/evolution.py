"""Regularized evolution (Real et al., AAAI 2019, "aging evolution"): SPEC's extra multi-trial baseline.

The population is the ``population`` most recent successful evaluations; each new candidate is the
best of ``sample_size`` members drawn at random (a tournament), mutated in ONE decision. The oldest
member dies whatever its accuracy (aging), which is what keeps the search from over-exploiting early
lucky evaluations. Until the population is full, candidates are uniform samples of the space. It never
waits for results, so candidates run asynchronously on any number of workers, as in the paper.
Defaults are the paper's CIFAR-10 setting (P = 100, S = 25).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies import register_strategy
from nni_nas_bench.strategies.checks import check_int
from nni_nas_bench.strategies.multi_trial import Metrics, MultiTrialStrategy, Sample


@register_strategy("evolution")
class RegularizedEvolutionStrategy(MultiTrialStrategy):
    """Aging evolution with tournament selection of size ``sample_size`` from a population of ``population``."""

    def __init__(self, *, population: int = 100, sample_size: int = 25, **settings: Any):
        super().__init__(**settings)
        self.population = check_int(self.name, "population", population)
        self.sample_size = check_int(self.name, "sample_size", sample_size)
        if sample_size > population:
            raise ConfigError(f"evolution.sample_size ({sample_size}) must be <= population ({population})")
        self._alive: deque[tuple[Sample, float]] = deque()
        self._initial = 0

    def _settings(self) -> dict[str, Any]:
        return {"population": self.population, "sample_size": self.sample_size}

    def _reset(self) -> None:
        self._alive = deque()
        self._initial = 0  # random samples asked so far (the initial population)

    def _propose(self) -> Sample:
        if self._initial < self.population or not self._alive:
            # Initial population; also the fallback while every evaluation so far failed.
            self._initial += 1
            return self.random_sample()
        members = list(self._alive)
        picks = self.rng.choice(len(members), size=min(self.sample_size, len(members)), replace=False)
        parent = max((members[i] for i in picks), key=lambda m: m[1])[0]
        return self.mutate(parent)

    def _observe(self, sample: Sample, metrics: Metrics | None) -> None:
        if metrics is None:
            return
        self._alive.append((sample, float(metrics["default"])))
        if len(self._alive) > self.population:
            self._alive.popleft()  # aging: the oldest dies, not the worst
