"""NSGA-Net (Lu et al., GECCO 2019): NSGA-II (Deb et al. 2002) over a cell space, no weight sharing.

Two objectives: validation accuracy (maximised) and FLOPs (minimised). SPEC's search: a population of
40 uniform samples, then 30 generations of 20 offspring each (budget 40 + 30 × 20 = 640 candidates),
every candidate trained from scratch with the short protocol (20 epochs, batch 128, 16 ch, 8 cells).
Each generation:

1. parents by binary tournament on (non-domination rank, crowding distance);
2. offspring = crossover of two parents (probability ``crossover_prob``, per-decision mix) followed by a
   mutation of one decision, never an architecture evaluated before (up to a few retries);
3. survival: parents ∪ evaluated offspring are sorted into non-dominated fronts, filled front by front,
   the last front cut by crowding distance (boundary points first).

A generation waits for all its offspring (NSGA-II is generational). The final pick is the most accurate
architecture on the Pareto front of every evaluation (ties: fewer FLOPs). FLOPs come from the
evaluation's ``flops`` metric (the trainer reports the child network's MFLOPs), else from
``space.flops(sample)``; on NNI's engine path, whose metrics are a number only, they are counted on the
frozen model at ``image_size``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies import register_strategy
from nni_nas_bench.strategies.checks import check_int
from nni_nas_bench.strategies.multi_trial import Metrics, MultiTrialStrategy, Sample


def non_dominated_sort(objectives: np.ndarray) -> list[list[int]]:
    """Fronts (lists of row indices) of ``objectives`` (rows = points, columns minimised), best first."""
    n = len(objectives)
    leq = (objectives[:, None, :] <= objectives[None, :, :]).all(axis=2)
    lt = (objectives[:, None, :] < objectives[None, :, :]).any(axis=2)
    dominates = leq & lt  # dominates[i, j]: i dominates j
    dominated_by = dominates.sum(axis=0)
    fronts: list[list[int]] = []
    current = [i for i in range(n) if dominated_by[i] == 0]
    while current:
        fronts.append(current)
        following = []
        for i in current:
            for j in np.flatnonzero(dominates[i]):
                dominated_by[j] -= 1
                if dominated_by[j] == 0:
                    following.append(int(j))
        current = sorted(following)
    return fronts


def crowding_distance(objectives: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each point within one front (boundary points: infinity)."""
    n, m = objectives.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(objectives[:, k], kind="stable")
        values = objectives[order, k]
        distance[order[0]] = distance[order[-1]] = np.inf
        span = values[-1] - values[0]
        if span > 0:
            distance[order[1:-1]] += (values[2:] - values[:-2]) / span
    return distance


@register_strategy("nsganet")
class NsgaNetStrategy(MultiTrialStrategy):
    """NSGA-II on (accuracy, FLOPs); ``budget`` defaults to population + generations × offspring."""

    def __init__(self, *, population: int = 40, generations: int = 30, offspring: int = 20,
                 crossover_prob: float = 0.9, image_size: int = 32, budget: int | None = None, **settings: Any):
        self.population = check_int("nsganet", "population", population)
        self.generations = check_int("nsganet", "generations", generations)
        self.offspring = check_int("nsganet", "offspring", offspring)
        if not isinstance(crossover_prob, (int, float)) or not 0 <= crossover_prob <= 1:
            raise ConfigError(f"nsganet.crossover_prob must be in [0, 1], got {crossover_prob!r}")
        self.crossover_prob = float(crossover_prob)
        self.image_size = check_int("nsganet", "image_size", image_size)
        super().__init__(budget=budget or population + generations * offspring, **settings)

    def _settings(self) -> dict[str, Any]:
        return {"population": self.population, "generations": self.generations, "offspring": self.offspring,
                "crossover_prob": self.crossover_prob}

    def _reset(self) -> None:
        self._parents: list[tuple[Sample, np.ndarray]] = []
        self._evaluated: list[tuple[Sample, np.ndarray]] = []  # successful results of this generation
        self._rank = np.zeros(0)
        self._crowd = np.zeros(0)
        self._to_ask = self.population  # asks left in this generation
        self._outstanding = 0           # asks of this generation not told yet
        self._seen: set[tuple[int, ...]] = set()

    # ------------------------------------------------------------------------------ generations
    def _propose(self) -> Sample | None:
        if self._to_ask == 0:
            if self._outstanding:
                return None  # generational: wait for the rest of this generation
            self._survive()
            self._to_ask = self.offspring
        self._to_ask -= 1
        self._outstanding += 1
        sample = self._child() if self._parents else self.random_sample()
        self._seen.add(tuple(self.indices(sample)))
        return sample

    def _observe(self, sample: Sample, metrics: Metrics | None) -> None:
        self._outstanding -= 1
        if metrics is not None:
            self._evaluated.append((sample, self._objectives(sample, metrics)))

    def _engine_metrics(self, model: Any) -> Metrics | None:
        metrics = super()._engine_metrics(model)
        if metrics is not None and not hasattr(self.space, "flops"):
            from nni_nas_bench.training.cost import count_mflops

            metrics["flops"] = count_mflops(model.executable_model(), self.image_size)  # the frozen network
        return metrics

    def _objectives(self, sample: Sample, metrics: Metrics) -> np.ndarray:
        flops = metrics.get("flops")
        if flops is None and hasattr(self.space, "flops"):
            flops = self.space.flops(sample)
        if flops is None:
            raise ConfigError("nsganet needs FLOPs: the evaluation must report 'flops' (trials do) or the space "
                              f"must offer flops(sample); {type(self.space).__name__} does neither")
        return np.array([-float(metrics["default"]), float(flops)])

    def _survive(self) -> None:
        """Parents ∪ this generation's results -> the next ``population`` parents (fronts, then crowding)."""
        pool = self._parents + self._evaluated
        self._evaluated = []
        if not pool:
            self._parents = []
            return
        objectives = np.stack([o for _, o in pool])
        chosen: list[int] = []
        rank = np.zeros(len(pool))
        crowd = np.zeros(len(pool))
        for r, front in enumerate(non_dominated_sort(objectives)):
            distance = crowding_distance(objectives[front])
            rank[front], crowd[front] = r, distance
            if len(chosen) + len(front) <= self.population:
                chosen.extend(front)
            else:
                order = np.argsort(-distance, kind="stable")
                chosen.extend(front[i] for i in order[: self.population - len(chosen)])
                break
        self._parents = [pool[i] for i in chosen]
        self._rank, self._crowd = rank[chosen], crowd[chosen]

    def _tournament(self) -> Sample:
        a, b = self.rng.randint(len(self._parents), size=2)
        better = a if (self._rank[a], -self._crowd[a]) <= (self._rank[b], -self._crowd[b]) else b
        return self._parents[better][0]

    def _child(self) -> Sample:
        child: Sample = {}
        for _ in range(20):  # avoid re-evaluating an architecture; give up after a few tries
            first = self._tournament()
            child = self.crossover(first, self._tournament()) if self.rng.rand() < self.crossover_prob else first
            child = self.mutate(child)
            if tuple(self.indices(child)) not in self._seen:
                break
        return child

    # ------------------------------------------------------------------------------ final pick
    def _pick(self, succeeded: list[dict[str, Any]]) -> dict[str, Any]:
        """The most accurate architecture on the Pareto front of all evaluations (ties: fewer FLOPs)."""
        objectives = np.stack([self._objectives(h["sample"], h["metrics"]) for h in succeeded])
        front = non_dominated_sort(objectives)[0]
        best = min(front, key=lambda i: (objectives[i, 0], objectives[i, 1], i))
        return succeeded[best]
