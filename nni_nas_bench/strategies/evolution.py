"""Regularized evolution (Real et al., AAAI 2019, "aging evolution"): SPEC's extra multi-trial baseline.

The population is the ``population`` most recent successful evaluations; each new candidate is the
best of ``sample_size`` members drawn at random WITH replacement (Real et al.'s Algorithm 1; AutoDL's
``R_EA.py``), mutated in ONE decision: one op, or one input of a node. In the DARTS space a node's two
inputs are ONE categorical over pairs of distinct states (``normal/inputs_2``), so the mutation changes
one element of the pair to another state (not both at once), as Real et al.'s hidden-state mutation
changes one input; each op and each input is equally likely to be the one mutated. The oldest
member dies whatever its accuracy (aging), which is what keeps the search from over-exploiting early
lucky evaluations. Until the population is full, candidates are uniform samples of the space. It never
waits for results, so candidates run asynchronously on any number of workers, as in the paper.
Defaults are the paper's CIFAR-10 setting (P = 100, S = 25); NAS-Bench-201's baseline uses P = 10, S = 3
(AutoDL-Projects ``scripts-search/NAS-Bench-201-algos/R-EA.sh``, ``docs/NAS-Bench-201.md``).
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies.checks import check_int
from nni_nas_bench.strategies.multi_trial import Metrics, MultiTrialStrategy, Sample


class RegularizedEvolutionStrategy(MultiTrialStrategy):
    """Aging evolution with tournament selection of size ``sample_size`` from a population of ``population``."""

    name = "evolution"

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
        picks = self.rng.randint(len(members), size=self.sample_size)  # with replacement, as Algorithm 1
        parent = max((members[i] for i in picks), key=lambda m: m[1])[0]  # first drawn on ties
        return self.mutate(parent)

    def _units(self) -> list[tuple[int, int | None]]:
        """What one mutation may change: ``(decision, None)`` for a plain decision with a choice, and
        ``(decision, k)`` for input k of a pair-of-inputs decision whose node has a third state to move to."""
        units: list[tuple[int, int | None]] = []
        for i, values in enumerate(self.choices):
            n_states = _pair_states(values)
            if n_states is None:
                units += [(i, None)] if len(values) > 1 else []
            elif n_states > 2:
                units += [(i, 0), (i, 1)]
        return units

    def mutate(self, sample: Sample) -> Sample:
        """``sample`` with one op or one input changed to a different, uniformly drawn value."""
        units = self._units()
        if not units:
            return dict(sample)
        i, k = units[self.rng.randint(len(units))]
        if k is None:
            label, values = self.labels[i], self.choices[i]
            current = values.index(sample[label])
            new = self.rng.randint(len(values) - 1)
            return {**sample, label: values[new + (new >= current)]}
        label = self.labels[i]
        pair = tuple(sample[label])
        others = [s for s in range(_pair_states(self.choices[i])) if s not in pair]  # distinct from both inputs
        moved = (others[self.rng.randint(len(others))], pair[1 - k])
        return {**sample, label: tuple(sorted(moved))}

    def _observe(self, sample: Sample, metrics: Metrics | None) -> None:
        if metrics is None:
            return
        self._alive.append((sample, float(metrics["default"])))
        if len(self._alive) > self.population:
            self._alive.popleft()  # aging: the oldest dies, not the worst


def _pair_states(values: list[Any]) -> int | None:
    """n when ``values`` are exactly the pairs of distinct states of ``range(n)`` (a DARTS input pair,
    ``search_spaces/cell_space.py``), else None."""
    if not values or not all(isinstance(v, tuple) and len(v) == 2 for v in values):
        return None
    n = max(max(v) for v in values) + 1
    return n if list(values) == list(itertools.combinations(range(n), 2)) else None
