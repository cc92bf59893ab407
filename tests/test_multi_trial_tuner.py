"""The multi-trial tuner against a simulated NNI manager: candidates, failed candidates (with NNI's
misattributed trial ends), searched trials that are each search's best, random trials, tabular mode."""

from __future__ import annotations

from typing import Any

import pytest
from nni import NoMoreTrialError

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies import create_strategy
from nni_nas_bench.tuners import MultiTrialTuner
from nni_nas_bench.tuners.random_baseline import random_trial_parameters
from search_spaces import create_space
from tests import simulated_manager
from tests.simulated_manager import Done
from tests.support import synthetic_accuracy

SPACE = create_space("darts")


def fails(params: dict[str, Any], failing: set[tuple[int, int]]) -> bool:
    return bool(params.get("search_failed")) or (params.get("search_seed"), params.get("candidate_index")) in failing


def simulate(tuner: MultiTrialTuner, *, concurrency: int, failing: set[tuple[int, int]] = frozenset(),
             seed: int = 0, misattribute: bool = False, order: str = "metric") -> Done:
    """Drive ``tuner`` through the simulated NNI manager; candidates in ``failing`` (search seed, index) fail."""

    def metrics(params: dict[str, Any], ok: bool) -> dict[str, Any]:
        return {"default": synthetic_accuracy(params["genotype"]) if ok else None, "flops": 1.0, "role": params["role"]}

    return simulated_manager.simulate(tuner, concurrency=concurrency, ok=lambda params: not fails(params, failing),
                                      metrics=metrics, seed=seed, misattribute=misattribute, order=order)


def _tuner(**kwargs: Any) -> MultiTrialTuner:
    args = {"method": "evolution", "dataset": "cifar10", "num_searches": 2, "num_random": 2,
            "search": {"budget": 6, "population": 3, "sample_size": 2}, "candidate_protocol": "quick",
            "protocol": "quick", **kwargs}
    return MultiTrialTuner(**args)


def _check(done: list[tuple[int, dict[str, Any], bool]], tuner: MultiTrialTuner,
           failing: set[tuple[int, int]] = frozenset()) -> None:
    roles = [p["role"] for _, p, _ in done]
    assert roles.count("candidate") == tuner.num_searches * tuner.budget
    assert roles.count("searched") == tuner.num_searches and roles.count("random") == tuner.num_random
    for i in range(tuner.num_searches):
        seed = tuner.search_seed + i
        candidates = {f"T{pid}": p for pid, p, ok in done if p["role"] == "candidate" and p["search_seed"] == seed}
        assert sorted(p["candidate_index"] for p in candidates.values()) == list(range(tuner.budget))
        good = {job: p for job, p in candidates.items() if (seed, p["candidate_index"]) not in failing}
        searched = [p for _, p, _ in done if p["role"] == "searched" and p["search_seed"] == seed]
        assert len(searched) == 1
        if not good:
            assert searched[0]["search_failed"]
            continue
        best = max(synthetic_accuracy(p["genotype"]) for p in good.values())
        assert synthetic_accuracy(searched[0]["genotype"]) == best  # the search's pick is its best candidate
        assert good[searched[0]["source_trial"]]["genotype"] == searched[0]["genotype"]
        told = tuner.searches[i].history
        assert len(told) == tuner.budget
        assert sum(h["metrics"] is None for h in told) == len(candidates) - len(good)


@pytest.mark.parametrize("concurrency", [1, 3, 8])
@pytest.mark.parametrize("order", ["metric", "end", "request"])
def test_every_search_runs_its_budget_and_trains_its_best(concurrency: int, order: str) -> None:
    for order_seed in range(2):
        tuner = _tuner()
        assert tuner.num_trials == 2 * 6 + 2 + 2
        _check(simulate(tuner, concurrency=concurrency, seed=order_seed, order=order), tuner)


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("misattribute", [False, True])
@pytest.mark.parametrize("method, search", [
    ("evolution", {"budget": 6, "population": 3, "sample_size": 2}),
    ("nsganet", {"population": 3, "generations": 2, "offspring": 2}),  # generational: waits for results
    ("weaknas", {"budget": 7, "initial": 3, "per_iteration": 2, "top_k": 4, "pool_size": 8, "hidden": 8,
                 "iterations": 5}),
])
def test_failed_candidates_are_told_and_never_hang(concurrency: int, misattribute: bool, method: str,
                                                   search: dict[str, Any]) -> None:
    failing = {(0, 1), (0, 4), (1, 0)}
    for order_seed in range(2):
        tuner = _tuner(method=method, search=search)
        done = simulate(tuner, concurrency=concurrency, failing=failing, seed=order_seed, misattribute=misattribute)
        _check(done, tuner, failing)


def test_a_search_whose_candidates_all_fail_gets_a_stand_in() -> None:
    tuner = _tuner(num_random=0)
    done = simulate(tuner, concurrency=2, failing={(0, k) for k in range(6)}, misattribute=True)
    _check(done, tuner, {(0, k) for k in range(6)})


def test_candidates_follow_the_in_process_search() -> None:
    """One trial at a time, a search's candidates are exactly the in-process search with the same seed."""
    tuner = _tuner(num_searches=1, num_random=0, search_seed=7)
    done = simulate(tuner, concurrency=1)
    reference = create_strategy("evolution", seed=7, budget=6, population=3, sample_size=2).search(
        SPACE, lambda s: {"default": synthetic_accuracy(SPACE.to_genotype(s).to_text())})
    assert [p["genotype"] for _, p, _ in done if p["role"] == "candidate"] == [
        SPACE.to_genotype(h["sample"]).to_text() for h in reference.history]
    assert next(p for _, p, _ in done if p["role"] == "searched")["genotype"] == reference.genotype.to_text()


def test_trial_parameters_and_tabular() -> None:
    table = {"benchmark": "nb201", "dataset": "cifar10-valid"}
    tuner = _tuner(num_searches=1, search_seed=3, arch_seed=5, candidate_protocol={"preset": "quick", "epochs": 1},
                   protocol={"preset": "quick", "epochs": 2}, train_seed=4, tabular=table,
                   candidate_space_args={"n_nodes": 4})
    first = [tuner.generate_parameters(i) for i in range(8)]
    with pytest.raises(NoMoreTrialError):
        tuner.generate_parameters(8)  # budget asked, results pending, random trials served
    assert [p["role"] for p in first] == ["candidate"] * 6 + ["random"] * 2
    assert all(p["tabular"] == table for p in first)
    candidate = first[0]
    assert candidate["candidate_index"] == 0 and candidate["search_seed"] == 3 and candidate["method"] == "evolution"
    assert candidate["protocol"]["seed"] == 3 and candidate["protocol"]["epochs"] == 1
    assert candidate["space_args"] == {"n_nodes": 4}
    reference = random_trial_parameters(SPACE, "darts", {}, "cifar10", 5, 0, tuner.protocol)
    assert {k: v for k, v in first[6].items() if k != "tabular"} == reference
    assert reference["protocol"]["seed"] == 4 and reference["protocol"]["epochs"] == 2
    for pid, params in enumerate(first[:6]):
        tuner.receive_trial_result(pid, params, {"default": float(pid), "flops": 1.0}, trial_job_id=f"T{pid}")
    searched = tuner.generate_parameters(8)
    assert searched["role"] == "searched" and searched["genotype"] == first[5]["genotype"]
    assert searched["source_trial"] == "T5" and searched["protocol"] == tuner.protocol
    assert searched["tabular"] == table
    text = str([*first, searched])
    assert "#" not in text and "//" not in text


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "darts"}, "not a multi-trial method"),
    ({"search": {"budget": 0}}, "budget must be an integer >= 1"),
    ({"search": {"seed": 1}}, "must not hold 'seed'"),
    ({"search": {"populaton": 3}}, "bad settings"),
    ({"candidate_protocol": "quik"}, "unknown protocol preset 'quik'"),
    ({"tabular": "nb201"}, "tabular must be a mapping"),
    ({"num_searches": 0}, "num_searches must be an integer >= 1"),
])
def test_bad_class_args(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):  # outside NNI's dispatcher the constructor raises
        _tuner(**kwargs)


def test_under_the_dispatcher_the_build_runs_in_a_thread_and_its_error_comes_at_first_use(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """NNI's manager allows a tuner 10 s to connect: the heavy build must not hold the constructor."""
    import threading

    from nni_nas_bench.tuners import validators

    monkeypatch.setattr(validators, "in_dispatcher", lambda: True)
    release = threading.Event()

    class Tuner(validators.BuildsInBackground):
        def __init__(self) -> None:
            self._build_in_background(self._build)

        def _build(self) -> None:
            release.wait(10)
            raise ConfigError("num_searches must be an integer >= 1, got 0")

    tuner = Tuner()  # returns while the build waits
    assert tuner._builder is not None and tuner._builder.is_alive()
    release.set()
    for _ in range(2):  # every use re-raises the build's error
        with pytest.raises(ConfigError, match="num_searches must be"):
            tuner._wait_built()


def test_benchmark_tuner_refuses_multi_trial_methods() -> None:
    from nni_nas_bench.tuners import BenchmarkTuner

    with pytest.raises(ConfigError, match=r"use nni_nas_bench\.tuners\.MultiTrialTuner"):
        assert BenchmarkTuner(method="random_search", dataset="cifar10").num_trials  # raises the build's error


def test_yaml_max_trial_number_must_be_exact(tmp_path: Any) -> None:
    """More trials allowed than the tuner submits would leave the experiment waiting forever."""
    from nni_nas_bench.experiment_config import check_experiment
    from tests.conftest import REPO

    text = (REPO / "experiments" / "cifar10" / "evolution.yml").read_text().replace("codeDirectory: ../..",
                                                                                     f"codeDirectory: {REPO}")
    assert check_experiment(REPO / "experiments" / "cifar10" / "evolution.yml").num_trials == 8 * 621 + 8
    path = tmp_path / "exp.yml"
    path.write_text(text.replace("maxTrialNumber: 4976", "maxTrialNumber: 4977"))
    with pytest.raises(ConfigError, match="wait for the missing ones forever: set maxTrialNumber: 4976"):
        check_experiment(path)
