"""The benchmark tuner against a simulated NNI manager: waiting for searches, failed searches, NNI's
misattributed trial ends, and the trial parameters it hands out."""

from __future__ import annotations

from typing import Any

import pytest
from nni import NoMoreTrialError

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.tuners.benchmark import BenchmarkTuner
from nni_nas_bench.tuners.random_baseline import RandomBaselineTuner
from tests import simulated_manager
from tests.simulated_manager import Done
from tests.support import found_genotype

TINY_SEARCH = {"order": 1, "epochs": 1, "channels": 4, "layers": 3}


def simulate(tuner: BenchmarkTuner, *, concurrency: int, failing_seeds: tuple[int, ...] = (), seed: int = 0,
             misattribute: bool = False, order: str = "metric") -> Done:
    """Drive ``tuner`` through the simulated NNI manager (tests/simulated_manager.py); searches with a seed
    in ``failing_seeds`` fail, every other search 'finds' :func:`found_genotype` of its seed."""

    def ok(params: dict[str, Any]) -> bool:
        return not params.get("search_failed") and not (
            params["role"] == "search" and params["search_seed"] in failing_seeds)

    def metrics(params: dict[str, Any], _: bool) -> dict[str, Any]:
        found = {"default": 50.0, "role": params["role"]}
        if params["role"] == "search":
            found.update(genotype=found_genotype(params["search_seed"]), search_seed=params["search_seed"])
        return found

    return simulated_manager.simulate(tuner, concurrency=concurrency, ok=ok, metrics=metrics, seed=seed,
                                      misattribute=misattribute, order=order)


def _tuner(**kwargs: Any) -> BenchmarkTuner:
    return BenchmarkTuner(**{"method": "darts", "dataset": "cifar10", "num_searches": 3, "num_random": 2,
                             "search": TINY_SEARCH, **kwargs})


def _check(done: list[tuple[int, dict[str, Any], bool]], num_searches: int, failing: tuple[int, ...] = ()) -> None:
    roles = [p["role"] for _, p, _ in done]
    assert roles.count("search") == roles.count("searched") == num_searches
    search_trials = {f"T{pid}": p["search_seed"] for pid, p, ok in done if p["role"] == "search" and ok}
    for _, params, ok in done:
        if params["role"] != "searched":
            continue
        seed = params["search_seed"]
        if seed in failing:
            assert params["search_failed"] and not ok
        else:
            assert params["genotype"] == found_genotype(seed) and search_trials[params["source_trial"]] == seed


@pytest.mark.parametrize("concurrency", [1, 2, 4, 9])
@pytest.mark.parametrize("order", ["metric", "end", "request"])
def test_every_search_gets_its_final_training(concurrency: int, order: str) -> None:
    for order_seed in range(3):
        tuner = _tuner()
        assert tuner.num_trials == 8
        _check(simulate(tuner, concurrency=concurrency, seed=order_seed, order=order), 3)


@pytest.mark.parametrize("concurrency", [1, 2, 5])
@pytest.mark.parametrize("misattribute", [False, True])
@pytest.mark.parametrize("order", ["metric", "end", "request"])
def test_failed_searches_do_not_hang_the_experiment(concurrency: int, misattribute: bool, order: str) -> None:
    for order_seed in range(3):
        done = simulate(_tuner(), concurrency=concurrency, failing_seeds=(0, 2), seed=order_seed,
                        misattribute=misattribute, order=order)
        _check(done, 3, failing=(0, 2))


def test_all_searches_failing_still_ends() -> None:
    done = simulate(_tuner(num_random=0), concurrency=2, failing_seeds=(0, 1, 2), misattribute=True)
    assert sum(1 for _, p, _ in done if p.get("search_failed")) == 3


def test_trial_parameters() -> None:
    tuner = _tuner(search_seed=10, arch_seed=5, protocol={"preset": "quick", "epochs": 2}, train_seed=3)
    first = [tuner.generate_parameters(i) for i in range(5)]
    with pytest.raises(NoMoreTrialError):
        tuner.generate_parameters(5)  # searches are still running: nothing ready
    assert [p["role"] for p in first] == ["search"] * 3 + ["random"] * 2
    assert [p["search_seed"] for p in first[:3]] == [10, 11, 12]
    assert all(p["search"] == TINY_SEARCH and p["method"] == "darts" and p["space_args"] == {} for p in first[:3])
    baseline = RandomBaselineTuner(dataset="cifar10", num_archs=2, seed=5, protocol={"preset": "quick", "epochs": 2},
                                   train_seed=3)
    for k, params in enumerate(first[3:]):
        reference = baseline.trial_parameters(k)
        assert params["genotype"] == reference["genotype"] and params["protocol"] == reference["protocol"]
        assert params["method"] == "random" and params["arch_index"] == k and params["arch_seed"] == 5
    tuner.receive_trial_result(1, first[1], {"default": 40.0, "genotype": found_genotype(11)}, trial_job_id="abc")
    searched = tuner.generate_parameters(5)
    assert searched == {"role": "searched", "method": "darts", "dataset": "cifar10", "space": "darts",
                        "space_args": {}, "search_seed": 11, "genotype": found_genotype(11), "source_trial": "abc",
                        "protocol": first[3]["protocol"]}
    assert "#" not in str(searched) and "//" not in str(searched)  # NNI's tuner channel mangles these


def test_a_search_reporting_garbage_gets_a_stand_in() -> None:
    tuner = _tuner()
    params = [tuner.generate_parameters(i) for i in range(5)]
    tuner.receive_trial_result(0, params[0], 12.5)  # a bare number, no genotype
    tuner.receive_trial_result(1, params[1], {"genotype": "Genotype(normal=[('conv_9x9', 0)])"})
    stand_ins = [tuner.generate_parameters(i) for i in (5, 6)]
    assert {p["search_seed"] for p in stand_ins} == {0, 1}
    assert all(p["role"] == "searched" and "genotype" not in p and p["search_failed"] for p in stand_ins)


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "enas_x"}, "unknown strategy 'enas_x'"),
    ({"search": {"epochs": 0}}, "darts.epochs must be an integer >= 1"),
    ({"search": {"epoch": 5}}, "bad settings"),
    ({"search": {"seed": 5}}, "must not hold 'seed'"),
    ({"num_searches": 0}, "num_searches must be an integer >= 1"),
    ({"dataset": "cifar11"}, "unknown dataset 'cifar11'"),
    ({"protocol": "quik"}, "unknown protocol preset 'quik'"),
])
def test_bad_class_args(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        assert _tuner(**kwargs).num_trials  # built in a thread: num_trials (as every callback) raises its error
