"""Multi-trial strategies: the ask/tell core, the operators on samples, each method on a synthetic
objective over the DARTS space with a known optimum, seeded reproducibility, failures, and the NNI
execution-engine driver."""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np
import pytest

from nni_nas_bench.errors import ConfigError, TrialFailedError
from nni_nas_bench.strategies import create_strategy, get_strategy_class, list_strategies
from search_spaces import create_space

TARGET_OP = "sep_conv_3x3"
# Small settings per method, so a 150-query search takes well under a second (weaknas: a few).
SMALL: dict[str, dict[str, Any]] = {
    "random_search": {},
    "evolution": {"population": 20, "sample_size": 5},
    "nsganet": {"population": 20, "generations": 7, "offspring": 20},
    "weaknas": {"initial": 20, "per_iteration": 10, "top_k": 20, "pool_size": 200, "hidden": 64, "iterations": 50},
    "reinforce": {},
    "tpe": {},
    "nni_tpe": {},
    "zero_cost": {},  # random search's draws; its ranking is the evaluator's (a proxy score under nnictl)
}


@pytest.fixture(scope="module")
def space() -> Any:
    return create_space("darts")


def objective(sample: dict[str, Any]) -> dict[str, Any]:
    """Accuracy = share of decisions at the known optimum (every op sep_conv_3x3, inputs (0, 1)).

    FLOPs grow with every convolution, so accuracy and FLOPs conflict as in real spaces.
    """
    hits = [v == TARGET_OP if "/op_" in k else v == (0, 1) for k, v in sample.items()]
    flops = sum(1.0 for k, v in sample.items() if "/op_" in k and "conv" in str(v))
    return {"default": 100.0 * sum(hits) / len(hits), "flops": flops}


def multi_trial_names() -> list[str]:
    return [n for n in list_strategies() if getattr(get_strategy_class(n), "kind", None) == "multi_trial"]


# ------------------------------------------------------------------------------ core and operators
def test_ask_tell_bookkeeping_and_failures(space: Any) -> None:
    strategy = create_strategy("random_search", budget=3, seed=0)
    with pytest.raises(RuntimeError, match="start"):
        strategy.ask()
    strategy.start(space)
    samples = [strategy.ask() for _ in range(3)]
    assert strategy.ask() is None and strategy.done() and strategy.num_pending == 3
    with pytest.raises(TrialFailedError, match="none of 0"):
        strategy.best()
    strategy.tell(samples[1], {"default": float("nan")})  # NaN = failed
    strategy.tell(samples[0], {"default": 50.0})
    strategy.tell(samples[2], None)  # failed
    with pytest.raises(ValueError, match="not asked"):
        strategy.tell(samples[0], {"default": 1.0})
    history = strategy.history
    assert [h["metrics"] for h in history] == [None, {"default": 50.0}, None]
    assert math.isnan(history[0]["best_so_far"]) and history[2]["best_so_far"] == 50.0
    assert strategy.best() == (samples[0], {"default": 50.0})
    assert strategy.num_pending == 0


def test_operators_stay_in_the_space(space: Any) -> None:
    strategy = create_strategy("random_search", budget=1, seed=0)
    strategy.start(space)
    a, b = strategy.random_sample(), strategy.random_sample()
    for _ in range(50):
        child = strategy.mutate(a)
        space.mutables.check_contains(child)
        changed = [k for k in a if child[k] != a[k]]
        assert len(changed) == 1  # exactly one decision, to a different value
        mixed = strategy.crossover(a, b)
        space.mutables.check_contains(mixed)
        assert all(mixed[k] in (a[k], b[k]) for k in a)
    code = strategy.encode(a)
    assert code.sum() == len(strategy.labels) and code.shape == (sum(len(c) for c in strategy.choices),)
    assert strategy.from_indices(strategy.indices(a)) == a


def test_bad_settings() -> None:
    with pytest.raises(ConfigError, match="budget must be an integer >= 1"):
        create_strategy("random_search", budget=0)
    with pytest.raises(ConfigError, match="bad settings"):
        create_strategy("random_search", population=3)


# ------------------------------------------------------------------------------ every method
def test_random_search_beats_a_random_sample(space: Any) -> None:
    result = create_strategy("random_search", budget=50, seed=0).search(space, objective)
    rng = np.random.RandomState(123)
    mean_random = np.mean([objective(space.random_sample(rng))["default"] for _ in range(200)])
    assert result.best_metrics["default"] > mean_random + 5
    assert result.num_queries == 50
    assert result.genotype.to_text() == space.to_genotype(result.best_sample).to_text()
    assert [h["best_so_far"] for h in result.history] == sorted(h["best_so_far"] for h in result.history)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_nni_engine_driver(name: str, space: Any) -> None:
    """``_run`` under NNI's own in-process engine: samples become frozen models that NNI evaluates."""
    import nni
    from nni.nas.evaluator import FunctionalEvaluator
    from nni.nas.execution import SequentialExecutionEngine
    from nni.nas.space import RawFormatModelSpace

    from search_spaces.model_space import CellModelSpace

    def evaluate(model: Any) -> None:
        nni.report_final_result(objective(model.space.to_sample(model.genotype))["default"])

    executable = RawFormatModelSpace.from_model(CellModelSpace("darts", C=4, layers=3, num_classes=2),
                                                FunctionalEvaluator(evaluate))
    strategy = create_strategy(name, budget=8, seed=0, poll_interval=0.01, **SMALL[name])
    strategy(executable, SequentialExecutionEngine())
    assert len(strategy.history) == 8 and all(h["metrics"] is not None for h in strategy.history)
    best_sample, best_metrics = strategy.best()
    assert best_metrics["default"] == objective(best_sample)["default"]
    if name == "nsganet":  # NNI keeps only the number: FLOPs are counted on each frozen network
        assert len({h["metrics"]["flops"] for h in strategy.history}) > 1



def test_every_multi_trial_method_has_small_settings() -> None:
    assert sorted(SMALL) == sorted(multi_trial_names())


def mean_best(method: str, space: Any, budget: int = 150) -> float:
    """Mean best accuracy of 3 seeded searches (seeds 0, 1, 2) of ``budget`` queries."""
    return float(np.mean([create_strategy(method, budget=budget, seed=seed, **SMALL[method])
                          .search(space, objective).best_metrics["default"] for seed in range(3)]))


@pytest.fixture(scope="module")
def random_search_best(space: Any) -> float:
    return mean_best("random_search", space)


@pytest.mark.parametrize("name", [n for n in SMALL if n not in ("random_search", "zero_cost")])
def test_method_beats_random_search(name: str, space: Any, random_search_best: float) -> None:
    """Mean best over 3 seeds, 150 queries each, above random search's with the same seeds and budget."""
    best = mean_best(name, space)
    assert best > random_search_best + 5, f"{name}: {best:.1f} vs random search {random_search_best:.1f}"


@pytest.mark.parametrize("name", sorted(SMALL))
def test_seeded_search_is_reproducible(name: str, space: Any) -> None:
    """Same seed and evaluations -> same history (also with concurrent asks); another seed -> another."""
    def history(seed: int) -> list[Any]:
        strategy = create_strategy(name, budget=45, seed=seed, **SMALL[name])
        result = strategy.search(space, objective, batch_size=4)
        assert result.num_queries == 45
        space.mutables.check_contains(result.best_sample)
        return [(h["sample"], h["metrics"]) for h in result.history]

    first = history(1)
    assert history(1) == first
    assert history(2) != first


@pytest.mark.parametrize("name", sorted(SMALL))
def test_failures_spend_budget_and_are_not_results(name: str, space: Any) -> None:
    """Every third evaluation fails: the budget still ends the search, and the pick is a real result."""
    calls = []

    def flaky(sample: dict[str, Any]) -> dict[str, Any] | None:
        calls.append(sample)
        return None if len(calls) % 3 == 0 else objective(sample)

    result = create_strategy(name, budget=40, seed=0, **SMALL[name]).search(space, flaky, batch_size=2)
    assert len(calls) == 40 and sum(h["metrics"] is None for h in result.history) == 13
    assert result.best_metrics == objective(result.best_sample)


def test_nni_engine_driver_does_not_wait_forever(space: Any) -> None:
    """Models that never finish (NNI 3.0's engine can stall near maxTrialNumber) count as failed after
    ``wait_timeout`` seconds without progress, and the search ends instead of hanging."""
    from nni.nas.evaluator import FunctionalEvaluator
    from nni.nas.space import ModelStatus, RawFormatModelSpace

    from search_spaces.model_space import CellModelSpace

    class StalledEngine:  # two workers whose models stay in training
        def __init__(self) -> None:
            self.submitted: list[Any] = []

        def budget_available(self) -> bool:
            return True

        def idle_worker_available(self) -> bool:
            return len(self.submitted) < 2

        def submit_models(self, *models: Any) -> None:
            for model in models:
                model.status = ModelStatus.Training
            self.submitted.extend(models)

    executable = RawFormatModelSpace.from_model(CellModelSpace("darts", C=4, layers=3, num_classes=2),
                                                FunctionalEvaluator(lambda model: None))
    strategy = create_strategy("random_search", budget=5, seed=0, wait_timeout=0.3, poll_interval=0.01)
    strategy(executable, StalledEngine())
    assert [h["metrics"] for h in strategy.history] == [None, None] and strategy.num_pending == 0
    with pytest.raises(TrialFailedError):
        strategy.best()


def test_every_method_searches_every_space() -> None:
    """The contract: any registered space is a product of categoricals; each method returns a member of it."""
    from search_spaces import list_spaces

    def evaluate(sample: dict[str, Any]) -> dict[str, Any]:
        text = repr(sorted(sample.items())).encode()
        return {"default": (zlib.crc32(text) % 1000) / 10, "flops": float(zlib.adler32(text) % 100)}

    light = {**SMALL, "weaknas": {**SMALL["weaknas"], "initial": 6, "per_iteration": 3, "top_k": 5, "pool_size": 10,
                                  "iterations": 5}}
    for space_name in list_spaces():
        space = create_space(space_name)
        for name, settings in light.items():
            result = create_strategy(name, budget=15, seed=0, **settings).search(space, evaluate, batch_size=3)
            space.mutables.check_contains(result.best_sample)
            text = result.genotype.to_text()
            assert space.parse(text).to_text() == text, (space_name, name)
            assert result.best_metrics == evaluate(result.best_sample)


# ------------------------------------------------------------------------------ NSGA-II
def test_non_dominated_sort() -> None:
    from nni_nas_bench.strategies.nsganet import non_dominated_sort

    # Minimised objectives (100 - accuracy, flops); pymoo's sorting, identical points share a front.
    points = np.array([[10, 10], [20, 5], [30, 1], [15, 9], [20, 10], [40, 12], [10, 10]], dtype=float)
    assert non_dominated_sort(points) == [[0, 1, 2, 3, 6], [4], [5]]


def test_nsganet_budget_and_pareto_pick(space: Any) -> None:
    # pymoo's n_gen counts the initial population: --n_gens 30 evaluates 40 + 29 x 20 candidates.
    assert create_strategy("nsganet").budget == 40 + 29 * 20
    strategy = create_strategy("nsganet", population=4, generations=2, offspring=2, seed=0)
    strategy.start(space)
    first = [strategy.ask() for _ in range(4)]
    assert strategy.ask() is None  # the initial population must be evaluated first
    for sample, (acc, flops) in zip(first, [(90, 10), (90, 5), (80, 1), (95, 50)]):
        strategy.tell(sample, {"default": acc, "flops": flops})
    offspring = [strategy.ask(), strategy.ask()]
    assert strategy.ask() is None and strategy.done()
    for sample in offspring:
        strategy.tell(sample, None)
    assert strategy.best() == (first[3], {"default": 95, "flops": 50})
    with pytest.raises(ConfigError, match="needs FLOPs"):
        other = create_strategy("nsganet", seed=0)
        other.start(space)
        other.tell(other.ask(), {"default": 50.0})
