"""NSGA-Net conforms to the code the benchmark ran: antoyang/NAS-Benchmark @ c2758da73192d408aad458768f26d3537dd78c40,
``NSGANET/`` (pymoo 0.3.0's NSGA-II; the authors' ianwhale/nsga-net @ 0ee6225c4ad3afabe5f5e8fd6dcb6dfffb1faf2d has
the same ``search/`` files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from nni_nas_bench.strategies import create_strategy
from search_spaces import create_space

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def space() -> Any:
    return create_space("nsganet")


def _reference_upper_bounds(n_blocks: int = 5, n_ops: int = 9) -> np.ndarray:
    """NSGANET/search/evolution_search.py:131-142, the micro bit string's upper bounds (lower bounds 0)."""
    n_var = 4 * n_blocks * 2
    ub = np.ones(n_var)
    h = 1
    for b in range(0, n_var // 2, 4):
        ub[b], ub[b + 1], ub[b + 2], ub[b + 3] = n_ops - 1, h, n_ops - 1, h
        h += 1
    ub[n_var // 2:] = ub[: n_var // 2]
    return ub


def _started(space: Any, **settings: Any) -> Any:
    strategy = create_strategy("nsganet", seed=0, **settings)
    strategy.start(space)
    return strategy


def _objectives(sample: dict[str, Any]) -> dict[str, float]:
    """A conflicting pair: accuracy grows with the convolutions, and so do FLOPs."""
    convs = sum(1 for v in sample.values() if isinstance(v, str) and "conv" in v)
    return {"default": 50.0 + 2 * convs + (hash(str(sorted(sample.items()))) % 7) / 7, "flops": 10.0 + 5 * convs}


def test_the_algorithm_is_pymoos_nsga2_with_the_reference_operators(space: Any) -> None:
    """NSGANET/search/nsganet.py:178-215: NSGA-II with binary tournaments by dominance then crowding
    (:38-75), PointCrossover(n_points=2) (:182, pymoo's crossover probability 0.9), PolynomialMutation(eta=3)
    with pymoo 0.3.0's per-variable probability 1/n_var on every offspring (:183), rank-and-crowding
    survival (:83-121), eliminate_duplicates=True (:184); population 40 (evolution_search.py:31)."""
    from pymoo.algorithms.moo.nsga2 import NSGA2, binary_tournament
    from pymoo.operators.crossover.pntx import TwoPointCrossover
    from pymoo.operators.mutation.pm import PolynomialMutation
    from pymoo.operators.selection.tournament import TournamentSelection
    from pymoo.operators.survival.rank_and_crowding import RankAndCrowding

    algorithm = _started(space).algorithm
    assert isinstance(algorithm, NSGA2) and algorithm.tournament_type == "comp_by_dom_and_crowding"
    assert algorithm.pop_size == 40 and algorithm.n_offsprings == 20
    selection, crossover, mutation = algorithm.mating.selection, algorithm.mating.crossover, algorithm.mating.mutation
    assert isinstance(selection, TournamentSelection) and selection.func_comp is binary_tournament
    assert isinstance(crossover, TwoPointCrossover) and crossover.n_points == 2 and crossover.prob.value == 0.9
    assert isinstance(mutation, PolynomialMutation) and mutation.eta.value == 3.0
    assert mutation.prob.value == 1.0 and mutation.prob_var.value == pytest.approx(1 / 40)
    assert isinstance(algorithm.survival, RankAndCrowding)
    assert algorithm.eliminate_duplicates is not None and algorithm.eliminate_duplicates is not False


def test_duplicate_elimination_decides_as_pymoos_default(space: Any) -> None:
    """nsganet.py:184 ``eliminate_duplicates=True``, i.e. pymoo's ``DefaultDuplicateElimination`` (a row within
    1e-16 of an earlier row or of another population's): the strategy's hashing elimination keeps and drops
    the same individuals on integer populations full of duplicates (-0.0 included, as rounding makes it)."""
    from pymoo.core.duplicate import DefaultDuplicateElimination
    from pymoo.core.population import Population

    ours, pymoos = _started(space).algorithm.eliminate_duplicates, DefaultDuplicateElimination()
    rng, kept, dropped = np.random.RandomState(0), 0, 0
    for trial in range(30):
        pop = Population.new(X=rng.randint(0, 3, size=(25, 3)).astype(float) * rng.choice([1.0, -1.0], size=(25, 3)))
        others = [Population.new(X=rng.randint(0, 3, size=(k, 3)).astype(float)) for k in (trial % 4, 6)]
        ours_kept, pymoos_kept = ours.do(pop, *others, return_indices=True), pymoos.do(pop, *others,
                                                                                       return_indices=True)
        assert ours_kept[1] == pymoos_kept[1] and ours_kept[2] == pymoos_kept[2]
        kept, dropped = kept + len(ours_kept[1]), dropped + len(ours_kept[2])
    assert kept > 100 and dropped > 100  # both kinds of decision were compared, many times


def test_budget_is_the_readme_commands_n_gens_30_n_offspring_20() -> None:
    """NSGANET/README.md:29-30 (--n_offspring 20 --n_gens 30), population 40 (evolution_search.py:31) and
    termination ('n_gen', 30) (:160-163): pymoo counts the initial population as generation 1, so the
    search evaluates 40 + 29 x 20 candidates."""
    assert create_strategy("nsganet").budget == 620
    assert create_strategy("nsganet", population=4, generations=3, offspring=2).budget == 4 + 2 * 2


def test_encoding_is_the_reference_bit_string(space: Any) -> None:
    """NSGANET/search/micro_encoding.py:27-37 and evolution_search.py:131-142: per cell (normal, reduce), per
    block ``[op, input, op, input]``, ops in the reference's PRIMITIVES order (micro_encoding.py:14-24), block b's
    inputs 0..b+1; two-point crossover cuts this vector, so the order is part of the method."""
    strategy = _started(space)
    order = [strategy.labels[i] for i in strategy._order]
    assert order[:8] == ["normal/op_2_0", "normal/input_2_0", "normal/op_2_1", "normal/input_2_1",
                         "normal/op_3_0", "normal/input_3_0", "normal/op_3_1", "normal/input_3_1"]
    assert order[20].startswith("reduce/")
    problem = strategy._problem
    np.testing.assert_array_equal(problem.high, _reference_upper_bounds())
    np.testing.assert_array_equal(problem.low, 0)
    # The reference's integer mutation widens the bounds by 0.5 (pymoo 0.3.0 PolynomialMutation, var_type=int).
    np.testing.assert_array_equal(problem.xl, -0.5)
    np.testing.assert_allclose(problem.xu, _reference_upper_bounds() + 0.5)
    assert space.mutables.simplify()["normal/op_2_0"].values[:3] == ["max_pool_3x3", "avg_pool_3x3", "skip_connect"]


def test_integer_polynomial_mutation_matches_the_reference_distribution(space: Any) -> None:
    """pymoo 0.3.0 PolynomialMutation(eta=3, var_type=np.int) as nsganet.py:183 configures it: the value x of a
    variable in [0, ub] is mutated in [-0.5, ub + 0.5) with the polynomial spread of index 3, then rounded half
    to even. For x = 4 of an op (ub 8) the mutated value stays 4 with probability P(|Δ| < 0.5 / 9) and moves to
    3 or 5 mostly: the old uniform resampling of one decision would move it anywhere with probability 1/8."""
    strategy = _started(space)
    mutation, problem = strategy.algorithm.mating.mutation, strategy._problem
    from pymoo.core.population import Population

    x = np.array([strategy._to_x(space.random_sample(np.random.RandomState(1)))] * 8000, dtype=float)
    x[:, 0] = 4.0  # normal/op_2_0
    pop = Population.new(X=x)
    out = mutation.do(problem, pop, random_state=np.random.default_rng(0)).get("X")
    out = strategy.algorithm.repair(problem, Population.new(X=out)).get("X")
    changed = out != x
    # Reference formula for x=4, bounds [-0.5, 8.5): delta1 = delta2 = 0.5, eta = 3.
    u = np.random.default_rng(1).random(400000)
    left = (2 * u + (1 - 2 * u) * 0.5 ** 4) ** 0.25 - 1
    right = 1 - (2 * (1 - u) + 2 * (u - 0.5) * 0.5 ** 4) ** 0.25
    expected = np.rint(np.clip(4 + np.where(u <= 0.5, left, right) * 9, 0, 8))
    # Each variable is mutated with probability 1/n (= 1/40); a mutation may round back to the same value.
    assert changed[:, 0].mean() == pytest.approx(np.mean(expected != 4) / 40, rel=0.2)
    mutated = out[changed[:, 0], 0]
    exp_moved = expected[expected != 4]
    for value in (2, 3, 5, 6):
        assert np.mean(mutated == value) == pytest.approx(np.mean(exp_moved == value), abs=0.06)
    near = np.mean(np.abs(exp_moved - 4) == 1)
    assert near > 2 / 8 + 0.1  # closer than the uniform resampling of a decision (2 of the 8 other values)
    assert np.mean(np.abs(mutated - 4) == 1) == pytest.approx(near, abs=0.06)


def test_one_generation_is_two_point_crossover_and_light_mutation_of_the_population(space: Any) -> None:
    """nsganet.py:182-184: each offspring is two parents cut at two points (or one parent, 10% of matings)
    with about one variable changed by mutation, and no offspring repeats the population or another
    offspring. The old per-decision uniform crossover would leave most children far from any two-point mix."""
    strategy = _started(space)
    first = [strategy.ask() for _ in range(40)]
    assert strategy.ask() is None  # generational: the initial population is evaluated first
    for sample in first:
        strategy.tell(sample, _objectives(sample))
    children = [strategy.ask() for _ in range(20)]
    assert None not in children and strategy.ask() is None
    parents = np.array([strategy._to_x(s) for s in first])
    kids = np.array([strategy._to_x(s) for s in children])
    assert len({tuple(k) for k in kids} | {tuple(p) for p in parents}) == 60
    n = parents.shape[1]
    costs = []
    a, b = np.triu_indices(n + 1)
    for kid in kids:
        miss = np.concatenate([np.zeros((len(parents), 1)), np.cumsum(parents != kid, axis=1)], axis=1)
        # kid = parent p outside [a, b) and parent q inside: mismatches outside with p + inside with q
        with_p = miss[:, n, None] - miss[:, b] + miss[:, a]           # [p, cut]
        with_q = miss[:, b] - miss[:, a]                              # [q, cut]
        costs.append(int((with_p[:, None, :] + with_q[None, :, :]).min()))
    assert max(costs) <= 5 and np.mean(costs) <= 1.5


def test_the_224px_final_network_is_the_reference_imagenet_network() -> None:
    """NSGANET/validation/train.py:129-134: Sport8, MIT67 and flowers102 train NetworkImageNet, which takes
    neither SE nor a filter increment (models/micro_models.py:231-262: plain cells, width doubled at the
    reductions); CIFAR trains PyramidNetworkCIFAR with --SE --filter_increment 4 (train.py:135-142,
    README.md:45,50)."""
    from search_spaces.nsganet import SqueezeExcitationCell

    for dataset, se in [("sport8", False), ("mit67", False), ("flowers102", False), ("cifar10", True),
                        ("cifar100", True)]:
        args = yaml.safe_load((ROOT / "experiments" / dataset / "nsganet.yml").read_text())["tuner"]["classArgs"]
        final = create_space("nsganet", **args["space_args"])
        genotype = final.to_genotype(final.random_sample(np.random.RandomState(0)))
        net = final.build_network(genotype, C=8, num_classes=3, layers=5 if se else 8,
                                  stem="cifar" if se else "imagenet")
        assert any(isinstance(m, SqueezeExcitationCell) for m in net.modules()) is se, dataset
        assert final.filter_increment == (4 if se else None), dataset
