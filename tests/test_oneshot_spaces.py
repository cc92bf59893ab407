"""The ENAS, NAO and NSGA-Net spaces: uniform samplers (chi-square), genotypes, networks, NNI mutables."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from nni_nas_bench.errors import ConfigError, GenotypeError
from search_spaces import create_space
from search_spaces.cells import Cell
from search_spaces.genotype import Genotype
from search_spaces.nsganet import SqueezeExcitationCell
from search_spaces.op_sets import OP_SETS

SPACES = ("enas", "nao", "nsganet")


def _frequency_p_values(genotypes: list[Genotype], ops: tuple[str, ...], n_nodes: int) -> list[float]:
    """Chi-square p-values, per node: each edge's op, and the ORDERED input pair (joint), vs uniform.

    The joint pair test is what catches the original benchmark's samplers: inputs restricted to the cell
    inputs, two distinct inputs forced, or two inputs drawn dependently all make some pairs too rare.
    """
    p_values = []
    for reduction in (False, True):
        for node in range(n_nodes):
            states = node + 2
            pairs, op_counts = Counter(), [Counter(), Counter()]
            for g in genotypes:
                (op0, a), (op1, b) = g.cell(reduction)[0][2 * node: 2 * node + 2]
                pairs[a, b] += 1
                op_counts[0][op0] += 1
                op_counts[1][op1] += 1
            assert set(pairs) <= {(a, b) for a in range(states) for b in range(states)}
            p_values.append(chisquare([pairs[a, b] for a in range(states) for b in range(states)]).pvalue)
            p_values += [chisquare([c[o] for o in ops]).pvalue for c in op_counts]
    return p_values


@pytest.mark.parametrize("name, ops", [("enas", "enas"), ("nsganet", "nsganet")])
def test_sampler_is_uniform_over_ops_and_inputs(name: str, ops: str) -> None:
    """Every op and every ordered input pair, same inputs included, is reachable and equally likely."""
    space = create_space(name)
    assert space.ops == OP_SETS[ops] and space.n_nodes == 5
    rng = np.random.RandomState(0)
    genotypes = [space.sample(rng) for _ in range(3000)]
    assert any(a == b for g in genotypes for (_, a), (_, b) in zip(g.normal[::2], g.normal[1::2]))
    assert {op for g in genotypes for op, _ in g.normal + g.reduce} == set(space.ops)
    p_values = _frequency_p_values(genotypes, space.ops, 5)
    assert min(p_values) > 1e-3 / len(p_values), min(p_values)  # Bonferroni over 30 tests


def test_frequency_check_catches_the_original_benchmarks_sampler() -> None:
    """Inputs drawn from the cell inputs only (the defect SPEC names) fail the same check."""
    space = create_space("enas")
    rng = np.random.RandomState(0)
    biased = []
    for _ in range(3000):
        g = space.sample(rng)
        normal = tuple((op, int(rng.randint(2))) for op, _ in g.normal)
        biased.append(Genotype(normal, space.concat_of(normal), g.reduce, g.reduce_concat))
    p_values = _frequency_p_values(biased, space.ops, 5)
    assert min(p_values) < 1e-3 / len(p_values)


def test_nao_has_enas_decisions_and_the_same_sampler() -> None:
    enas, nao = create_space("enas"), create_space("nao")
    assert list(nao.mutables) == list(enas.mutables)
    assert [nao.sample(s) for s in range(20)] == [enas.sample(s) for s in range(20)]


@pytest.mark.parametrize("name", SPACES)
def test_space_size_is_the_product_of_its_decisions(name: str) -> None:
    space = create_space(name)
    per_cell = math.prod((node * len(space.ops)) ** 2 for node in range(2, 7))
    assert space.num_architectures() == per_cell**2
    assert len(space.mutables) == 2 * 5 * 4  # per node: two inputs, two ops


@pytest.mark.parametrize("name", SPACES)
def test_genotypes_round_trip_and_concat_is_the_unused_nodes(name: str) -> None:
    space = create_space(name)
    for seed in range(30):
        g = space.sample(seed)
        assert space.to_genotype(space.to_sample(g)) == g
        assert space.parse(g.to_text()) == g
        for reduction in (False, True):
            edges, concat = g.cell(reduction)
            read = {src for _, src in edges}
            first = 2 if name == "nsganet" else 0  # ENAS and NAO also concatenate unused cell inputs
            assert concat == tuple(n for n in range(first, 7) if n not in read) and 6 in concat


def test_wrong_concat_and_foreign_ops_are_rejected() -> None:
    space = create_space("enas")
    g = space.sample(0)
    bad = Genotype(g.normal, range(2, 7), g.reduce, g.reduce_concat)
    with pytest.raises(GenotypeError, match=r"normal_concat must be the states \(cell inputs included\) no node reads"):
        space.validate(bad)
    darts = create_space("darts", n_nodes=5).sample(0)
    with pytest.raises(GenotypeError, match="not in this space's op set"):
        space.validate(darts)
    with pytest.raises(ConfigError, match="filter_increment"):
        create_space("nsganet", filter_increment=-1)
    with pytest.raises(ConfigError, match="dropout"):
        create_space("nao", dropout=1.5)


@pytest.mark.parametrize("name", SPACES)
def test_sampled_networks_build_and_run(name: str) -> None:
    space = create_space(name)
    g = space.sample(3)
    net = space.build_network(g, C=8, layers=5, auxiliary=True).train()
    logits, aux = net(torch.randn(2, 3, 32, 32))
    assert logits.shape == aux.shape == (2, 10)
    net = space.build_network(g, C=8, layers=3, stem="imagenet", num_classes=8).eval()
    assert net(torch.randn(1, 3, 224, 224)).shape == (1, 8)


def test_a_node_reading_one_state_twice_gets_both_ops() -> None:
    space = create_space("enas", n_nodes=1)
    g = Genotype([("sep_conv_3x3", 1), ("max_pool_3x3", 1)], [0, 2], [("identity", 0), ("identity", 0)], [1, 2])
    cell = space.build_network(g, C=4, layers=3).cells[0]
    assert cell.node_inputs == [[1, 1]]
    assert [type(e).__name__ for e in cell.edges[0]] == ["SepConv", "MaxPool2d"]


def test_nsganet_final_network_has_se_and_pyramid_widths() -> None:
    space = create_space("nsganet")
    g = space.sample(0)
    net = space.build_network(g, C=34, layers=8)
    assert all(isinstance(c, SqueezeExcitationCell) for c in net.cells)
    widths = [c.preprocess1[1].out_channels for c in net.cells]
    assert widths == [34 + 4 * i for i in range(8)]  # +4 after every cell, no doubling at reductions
    plain = space.build_network(g, C=16, layers=8, squeeze_excitation=False, filter_increment=None)
    assert not any(isinstance(c, SqueezeExcitationCell) for c in plain.cells)
    assert all(type(c) is Cell for c in plain.cells)
    assert [c.preprocess1[1].out_channels for c in plain.cells] == [16, 16, 32, 32, 32, 64, 64, 64]
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_nao_final_network_has_dropout_before_the_classifier() -> None:
    net = create_space("nao").build_network(create_space("nao").sample(0), C=8, layers=3)
    assert isinstance(net.classifier[0], torch.nn.Dropout) and net.classifier[0].p == 0.4
    plain = create_space("nao", dropout=0.0).build_network(create_space("nao").sample(0), C=8, layers=3)
    assert isinstance(plain.classifier, torch.nn.Linear)


@pytest.mark.parametrize("name", SPACES)
def test_nni_model_space_freezes_to_the_sampled_child(name: str) -> None:
    from search_spaces.model_space import CellModelSpace

    model_space = CellModelSpace(name, C=8, layers=3)
    assert set(model_space.simplify()) == set(model_space.space.mutables.keys())
    sample = model_space.space.random_sample(np.random.RandomState(5))
    child = model_space.freeze(sample)
    assert child.genotype == model_space.space.sample(5)
    assert child(torch.randn(2, 3, 32, 32)).shape == (2, 10)
