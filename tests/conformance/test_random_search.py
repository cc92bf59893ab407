"""Conformance of ``random_search``: sampling without replacement as WeakNAS counts random search (Wu et
al. 2021, NAS-Bench-201 table: ~7,800 queries to the optimum of 15,625 cells, i.e. (N + 1) / 2), with the
with-replacement sampler of NAS-Bench-201's baseline one setting away (D-X-Y/AutoDL-Projects@
f46486e21b71ae6459a700be720d7648b5429569, ``exps/NAS-Bench-201-algos/RANDOM.py:96-97`` calling
``random_arch()`` of ``R_EA.py:115-128``, a fresh uniform draw each time)."""

from __future__ import annotations

import numpy as np

from nni_nas_bench.strategies import create_strategy
from tests.conformance.multi_trial_toy import ToySpace

SPACE = ToySpace({"a": list(range(5)), "b": ["x", "y"]})  # 10 architectures


def keys(strategy: object, n: int) -> list[tuple[int, ...]]:
    return [tuple(strategy.indices(strategy.ask())) for _ in range(n)]  # type: ignore[attr-defined]


def test_ten_asks_on_a_ten_element_space_are_ten_distinct_architectures() -> None:
    """Without replacement (default): before the fix, 10 uniform draws with replacement repeated."""
    for seed in range(5):
        strategy = create_strategy("random_search", seed=seed, budget=30)
        strategy.start(SPACE)
        assert len(set(keys(strategy, 10))) == 10
        assert len(set(keys(strategy, 10))) == 10  # then a new round over the whole space


def test_the_optimum_takes_half_the_space_on_average() -> None:
    """Expected queries to a given architecture: (N + 1) / 2 = 5.5 without replacement; the geometric
    mean N = 10 with replacement (RANDOM.py)."""
    def first_hit(replace: bool, seed: int) -> int:
        strategy = create_strategy("random_search", seed=seed, budget=10**4, replace=replace)
        strategy.start(SPACE)
        n = 1
        while tuple(strategy.indices(strategy.ask())) != (0, 0):
            n += 1
        return n

    without = [first_hit(False, s) for s in range(200)]
    with_replacement = np.mean([first_hit(True, s) for s in range(200)])
    assert max(without) <= 10 and abs(np.mean(without) - 5.5) < 0.7 and with_replacement > 8.0


def test_with_replacement_is_the_space_sampler_itself() -> None:
    """``replace: true``: each ask is ``space.random_sample(rng)``, as RANDOM.py's fresh ``random_arch()``."""
    strategy = create_strategy("random_search", seed=3, budget=20, replace=True)
    strategy.start(SPACE)
    rng = np.random.RandomState(3)
    assert [strategy.ask() for _ in range(20)] == [SPACE.random_sample(rng) for _ in range(20)]
