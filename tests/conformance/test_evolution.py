"""Conformance of ``evolution`` with regularized evolution: Real et al., AAAI 2019, Algorithm 1, and its
NAS-Bench-201 baseline in D-X-Y/AutoDL-Projects@f46486e21b71ae6459a700be720d7648b5429569
(``exps/NAS-Bench-201-algos/R_EA.py``; settings ``scripts-search/NAS-Bench-201-algos/R-EA.sh``,
``docs/NAS-Bench-201.md:233``)."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from nni_nas_bench.strategies import create_strategy
from search_spaces import create_space
from tests.conformance.multi_trial_toy import ToySpace

ROOT = Path(__file__).resolve().parents[2]


def changed_units(before: dict[str, Any], after: dict[str, Any]) -> int:
    """Ops and inputs that differ: a DARTS input pair counts the inputs it changed (0, 1 or 2)."""
    n = 0
    for label, value in before.items():
        if isinstance(value, tuple):
            n += 2 - len(set(value) & set(after[label]))
        else:
            n += value != after[label]
    return n


def test_a_darts_mutation_changes_one_op_or_one_input() -> None:
    """Real et al. 2019 §2 (hidden-state mutation: ONE input of a pairwise combination moves to another
    hidden state; op mutation: one op); DARTS decides a node's inputs as one pair categorical
    (search_spaces/cell_space.py ``inputs_{node}``). Before the fix the whole pair was resampled, often
    changing both inputs."""
    space = create_space("darts")
    strategy = create_strategy("evolution", seed=0)
    strategy.start(space)
    rng = np.random.RandomState(1)
    inputs_moved = 0
    for _ in range(300):
        parent = space.random_sample(rng)
        child = strategy.mutate(parent)
        assert changed_units(parent, child) == 1
        space.mutables.check_contains(child)
        inputs_moved += any(isinstance(v, tuple) and v != child[k] for k, v in parent.items())
    assert 50 < inputs_moved < 250  # both kinds happen


def test_an_nb201_mutation_switches_one_op_to_a_different_one() -> None:
    """R_EA.py:131-148 (mutate_arch_func): one edge, a different op (``while xop == current``)."""
    space = create_space("nb201")
    strategy = create_strategy("evolution", seed=0)
    strategy.start(space)
    rng = np.random.RandomState(2)
    for _ in range(100):
        parent = space.random_sample(rng)
        child = strategy.mutate(parent)
        assert sum(parent[k] != child[k] for k in parent) == 1


def test_tournament_samples_with_replacement() -> None:
    """Real et al. Algorithm 1 and R_EA.py:199-208: ``sample_size`` draws of ``random.choice(population)``
    (with replacement), parent = the best drawn. With P = S = 3 the best member is drawn with probability
    1 - (2/3)^3 = 0.70; without replacement (before the fix) it was always the parent."""
    space = ToySpace({f"d{i}": list(range(4)) for i in range(3)})
    strategy = create_strategy("evolution", seed=0, budget=10**6, population=3, sample_size=3)
    strategy.start(space)
    members = [{f"d{i}": v for i in range(3)} for v in range(3)]  # pairwise 3 decisions apart
    strategy._alive = deque((m, float(v)) for v, m in enumerate(members))  # member v has accuracy v
    strategy._initial = 3
    from_best = 0
    for _ in range(400):
        child = strategy.ask()
        distance = [sum(child[k] != m[k] for k in child) for m in members]
        assert sorted(distance)[0] == 1  # exactly one parent, one decision away
        from_best += distance[2] == 1
    assert 0.62 < from_best / 400 < 0.78


def test_nb201_yaml_uses_the_nb201_baseline_settings() -> None:
    """R-EA.sh: ``--ea_population 10``; docs/NAS-Bench-201.md:233: sample size 3."""
    config = yaml.safe_load((ROOT / "experiments/nb201/evolution.yml").read_text())
    search = config["tuner"]["classArgs"]["search"]
    assert (search["population"], search["sample_size"]) == (10, 3)
