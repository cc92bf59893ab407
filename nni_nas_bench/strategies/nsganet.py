"""NSGA-Net (Lu et al., GECCO 2019): pymoo's NSGA-II (Deb et al. 2002) over a cell space, no weight sharing.

The method IS the library's algorithm, as in the code the benchmark ran (antoyang/NAS-Benchmark
``NSGANET/search/nsganet.py`` + ``evolution_search.py``, built on pymoo 0.3.0): a
:class:`pymoo.algorithms.moo.nsga2.NSGA2` driven by ask/tell, with the reference's operators:

- the architecture is an integer vector in the reference's order: per cell (normal, then reduce), per
  block, ``[op, input, op, input]`` (``evolution_search.py:131-142``); other spaces use their decision order;
- binary tournaments by Pareto dominance, then crowding distance, then a coin (pymoo's
  ``binary_tournament``, ``comp_by_dom_and_crowding``, as ``nsganet.py:38-75``);
- :class:`~pymoo.operators.crossover.pntx.TwoPointCrossover`, probability ``crossover_prob`` 0.9 (pymoo's
  default; ``nsganet.py:182``);
- :class:`~pymoo.operators.mutation.pm.PolynomialMutation`, η 3, every offspring, each variable with
  probability 1/n (``nsganet.py:183``: pymoo 0.3.0's ``prob=None`` means 1/n_var). The reference's integer
  mutation (``var_type=np.int``) widens each variable's bounds by 0.5 on both sides, mutates the float and
  rounds it half to even, then clips it into the bounds: the problem below carries the widened bounds and
  :class:`RoundIntoBounds` is that rounding, so pymoo 0.6's operator draws exactly the reference's values;
- survival: rank and crowding (pymoo's ``RankAndCrowding``, ``nsganet.py:83-121``); duplicates of the
  population or of the other offspring are eliminated (``eliminate_duplicates=True``; here pymoo's rule by
  hashing the integer rows, the same decisions at a fraction of the cost);
- objectives (minimised): ``100 − validation accuracy`` and the candidate's FLOPs (``evolution_search.py:96-97``).

``generations`` is pymoo's ``n_gen`` (``termination=('n_gen', n_gens)``): the initial population is
generation 1, so the README command's ``--n_gens 30 --n_offspring 20`` (population 40) evaluates
40 + 29 × 20 = 620 candidates, the default budget. The initial population is drawn by the space's own
uniform sampler (SPEC: never a private sampler; the reference's ``RandomSampling`` draws the same
distribution, each variable uniform in its bounds). A failed evaluation is left out of the generation
told to pymoo. If mating cannot produce a new offspring any more (pymoo then ends the run), the rest of
the budget is spent on uniform samples. All randomness comes from ``seed`` (pymoo's generator is seeded
from ``self.rng``), so a replay of the same asks and tells (``nnictl resume``) proposes the same samples.

The final pick is the most accurate architecture on the Pareto front of every evaluation (ties: fewer
FLOPs); the reference stops at the front and leaves the pick to the user. FLOPs come from the
evaluation's ``flops`` metric (the trainer reports the child network's MFLOPs), else from
``space.flops(sample)``; on NNI's engine path, whose metrics are a number only, they are counted on the
frozen model at ``image_size``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies.checks import check_int
from nni_nas_bench.strategies.multi_trial import Metrics, MultiTrialStrategy, Sample

_UNIT = re.compile(r"^(?P<cell>.+)/(?P<kind>op|input)_(?P<node>\d+)_(?P<unit>\d+)$")


def non_dominated_sort(objectives: np.ndarray) -> list[list[int]]:
    """Fronts (lists of row indices, ascending) of ``objectives`` (rows = points, columns minimised), best first."""
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    return [sorted(int(i) for i in front) for front in NonDominatedSorting().do(np.asarray(objectives, float))]


def reference_order(labels: list[str]) -> list[int]:
    """Positions of ``labels`` in NSGA-Net's bit string: per cell, per block, op then input of each unit.

    Two-point crossover is positional, so the order of the variables is part of the method. Labels
    that are not ``<cell>/{op,input}_<node>_<unit>`` keep their order (other spaces).
    """
    parsed = [_UNIT.match(label) for label in labels]
    if not all(parsed):
        return list(range(len(labels)))
    cells = list(dict.fromkeys(m["cell"] for m in parsed))
    key = [(cells.index(m["cell"]), int(m["node"]), int(m["unit"]), m["kind"] == "input") for m in parsed]
    return sorted(range(len(labels)), key=key.__getitem__)


def _rounding_repair() -> Any:
    from pymoo.core.repair import Repair

    class RoundIntoBounds(Repair):
        """pymoo 0.3.0's integer mutation: round half to even, then clip into the integer bounds."""

        def _do(self, problem: Any, X: np.ndarray, **kwargs: Any) -> np.ndarray:
            return np.clip(np.rint(X), problem.low, problem.high)

    return RoundIntoBounds()


def _exact_duplicates() -> Any:
    from pymoo.core.duplicate import DuplicateElimination

    class ExactDuplicates(DuplicateElimination):
        """pymoo's default duplicate elimination (``DefaultDuplicateElimination``: a row of ``X`` within
        1e-16 of an earlier row of the population, or of any row of ``other``) for integer-valued ``X``,
        where that distance is 0 exactly when the rows are equal: by hashing the rows instead of all
        pairwise distances (a 1,000-query tabular run: 82.1 -> 79.8 ms of CPU, ``benchmarks/tabular.py
        --baseline``). Same decisions (checked against pymoo's class in ``tests/conformance/test_nsganet.py``)."""

        def _do(self, pop: Any, other: Any, is_duplicate: np.ndarray) -> np.ndarray:
            rows = [tuple(x) for x in pop.get("X").tolist()]  # floats: -0.0 and 0.0 are one key
            seen = set() if other is None else {tuple(x) for x in other.get("X").tolist()}
            for i, row in enumerate(rows):
                if row in seen:
                    is_duplicate[i] = True
                elif other is None:
                    seen.add(row)
            return is_duplicate

    return ExactDuplicates()


def _problem(sizes: list[int]) -> Any:
    from pymoo.core.problem import Problem

    class Architectures(Problem):
        """The integer vectors of the space; bounds widened by 0.5 as the reference's integer mutation does."""

        def __init__(self) -> None:
            self.low = np.zeros(len(sizes))
            self.high = np.array(sizes, dtype=float) - 1
            super().__init__(n_var=len(sizes), n_obj=2, xl=self.low - 0.5, xu=self.high + (0.5 - 1e-16))

    return Architectures()


class NsgaNetStrategy(MultiTrialStrategy):
    """pymoo's NSGA-II on (100 − accuracy, FLOPs); ``budget`` defaults to population + (generations − 1) × offspring."""

    name = "nsganet"

    def __init__(self, *, population: int = 40, generations: int = 30, offspring: int = 20,
                 crossover_prob: float = 0.9, mutation_eta: float = 3.0, image_size: int = 32,
                 budget: int | None = None, **settings: Any):
        self.population = check_int("nsganet", "population", population)
        self.generations = check_int("nsganet", "generations", generations)
        self.offspring = check_int("nsganet", "offspring", offspring)
        if not isinstance(crossover_prob, (int, float)) or not 0 <= crossover_prob <= 1:
            raise ConfigError(f"nsganet.crossover_prob must be in [0, 1], got {crossover_prob!r}")
        self.crossover_prob = float(crossover_prob)
        if isinstance(mutation_eta, bool) or not isinstance(mutation_eta, (int, float)) or mutation_eta <= 0:
            raise ConfigError(f"nsganet.mutation_eta (polynomial mutation's η) must be > 0, got {mutation_eta!r}")
        self.mutation_eta = float(mutation_eta)
        self.image_size = check_int("nsganet", "image_size", image_size)
        super().__init__(budget=budget or population + (generations - 1) * offspring, **settings)

    def _settings(self) -> dict[str, Any]:
        return {"population": self.population, "generations": self.generations, "offspring": self.offspring,
                "crossover_prob": self.crossover_prob, "mutation_eta": self.mutation_eta}

    # ------------------------------------------------------------------------------ pymoo
    def make_algorithm(self, initial: np.ndarray) -> Any:
        """The reference's NSGA-II (``nsganet.py:178-215``) in pymoo 0.6, starting from ``initial``."""
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.operators.crossover.pntx import TwoPointCrossover
        from pymoo.operators.mutation.pm import PolynomialMutation

        n_var = len(self.labels)
        return NSGA2(pop_size=self.population, n_offsprings=self.offspring, sampling=initial,
                     crossover=TwoPointCrossover(prob=self.crossover_prob),
                     mutation=PolynomialMutation(prob=1.0, prob_var=1.0 / n_var, eta=self.mutation_eta),
                     repair=_rounding_repair(), eliminate_duplicates=_exact_duplicates())

    def _reset(self) -> None:
        self._order = reference_order(self.labels)
        self._problem = _problem([len(self.choices[i]) for i in self._order])
        initial = np.array([self._to_x(self.random_sample()) for _ in range(self.population)], dtype=float)
        self.algorithm = self.make_algorithm(initial)
        self.algorithm.setup(self._problem, seed=int(self.rng.randint(2**31 - 1)), termination=("n_gen", 10**9))
        self._queue: list[Sample] = []   # asked by pymoo, not yet proposed
        self._generation: Any = None     # pymoo's population being evaluated
        self._results: dict[tuple[int, ...], np.ndarray] = {}  # objectives told for this generation
        self._outstanding = 0            # proposed samples of this generation not told yet
        self._exhausted = False          # mating produced nothing new: pymoo ended the run

    def _to_x(self, sample: Sample) -> list[int]:
        indices = self.indices(sample)
        return [indices[i] for i in self._order]

    def _from_x(self, x: np.ndarray) -> Sample:
        indices = [0] * len(self.labels)
        for position, i in enumerate(self._order):
            indices[i] = round(float(x[position]))
        return self.from_indices(indices)

    def _propose(self) -> Sample | None:
        if self._exhausted:
            return self.random_sample()
        if not self._queue:
            if self._outstanding:
                return None  # generational: wait for the rest of this generation
            if self._generation is not None:
                self._tell_generation()
            self._generation = self.algorithm.ask()
            if self._generation is None or len(self._generation) == 0:
                self._exhausted, self._generation = True, None
                return self.random_sample()
            self._queue = [self._from_x(x) for x in self._generation.get("X")]
        self._outstanding += 1
        return self._queue.pop(0)

    def _observe(self, sample: Sample, metrics: Metrics | None) -> None:
        if self._exhausted:
            return  # a uniform sample after pymoo ended the run
        self._outstanding -= 1
        if metrics is not None:
            self._results[tuple(self._to_x(sample))] = self._objectives(sample, metrics)

    def _tell_generation(self) -> None:
        """Hand pymoo the evaluated members of the generation (failed ones are left out)."""
        from pymoo.core.evaluator import Evaluator
        from pymoo.problems.static import StaticProblem

        pop = self._generation
        keys = [tuple(int(v) for v in np.rint(x)) for x in pop.get("X")]
        told = pop[[i for i, k in enumerate(keys) if k in self._results]]
        F = np.array([self._results[k] for k in keys if k in self._results]).reshape(-1, 2)
        self._results, self._generation = {}, None
        if len(told) == 0 and self.algorithm.pop is None:
            # Every initial candidate failed: start again from a fresh uniform population.
            initial = np.array([self._to_x(self.random_sample()) for _ in range(self.population)], dtype=float)
            self.algorithm = self.make_algorithm(initial)
            self.algorithm.setup(self._problem, seed=int(self.rng.randint(2**31 - 1)), termination=("n_gen", 10**9))
            return
        Evaluator().eval(StaticProblem(self._problem, F=F), told)
        self.algorithm.tell(infills=told)

    # ------------------------------------------------------------------------------ objectives
    def _engine_metrics(self, model: Any) -> Metrics | None:
        metrics = super()._engine_metrics(model)
        if metrics is not None and not hasattr(self.space, "flops"):
            from nni_nas_bench.training.cost import count_mflops

            metrics["flops"] = count_mflops(model.executable_model(), self.image_size)  # the frozen network
        return metrics

    def _objectives(self, sample: Sample, metrics: Metrics) -> np.ndarray:
        """``(100 − accuracy, FLOPs)``, both minimised (``evolution_search.py:96-97``)."""
        flops = metrics.get("flops")
        if flops is None and hasattr(self.space, "flops"):
            flops = self.space.flops(sample)
        if flops is None:
            raise ConfigError("nsganet needs FLOPs: the evaluation must report 'flops' (trials do) or the space "
                              f"must offer flops(sample); {type(self.space).__name__} does neither")
        return np.array([100.0 - float(metrics["default"]), float(flops)])

    # ------------------------------------------------------------------------------ final pick
    def _pick(self, succeeded: list[dict[str, Any]]) -> dict[str, Any]:
        """The most accurate architecture on the Pareto front of all evaluations (ties: fewer FLOPs)."""
        objectives = np.stack([self._objectives(h["sample"], h["metrics"]) for h in succeeded])
        front = non_dominated_sort(objectives)[0]
        best = min(front, key=lambda i: (objectives[i, 0], objectives[i, 1], i))
        return succeeded[best]
