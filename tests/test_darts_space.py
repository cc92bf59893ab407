"""The DARTS space: op registry, genotype text form and errors, child networks, and the sampler."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from nni_nas_bench.errors import ConfigError, GenotypeError
from search_spaces import create_space, list_spaces
from search_spaces.genotype import PUBLISHED, Genotype
from search_spaces.op_sets import OP_SETS
from search_spaces.ops import OPS, build_op


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("stride", [1, 2])
def test_every_op_keeps_channels_and_halves_resolution(name: str, stride: int) -> None:
    y = build_op(name, 8, stride)(torch.randn(2, 8, 8, 8))
    assert y.shape == (2, 8, 8 // stride, 8 // stride)


def test_op_sets_are_registered_ops() -> None:
    assert len(OP_SETS["darts"]) == len(OP_SETS["poor"]) == len(OP_SETS["cnas"]) == 8
    assert all(op in OPS for ops in OP_SETS.values() for op in ops)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_genotypes_round_trip_and_build(name: str) -> None:
    genotype = PUBLISHED[name]
    assert Genotype.from_text(genotype.to_text()) == genotype
    assert "range(2, 6)" in genotype.to_text()
    space = create_space("darts")
    net = space.build_network(space.validate(genotype), C=36, layers=20, auxiliary=True)
    params = sum(p.numel() for n, p in net.named_parameters() if not n.startswith("auxiliary"))
    # DARTS V2 3.3M and P-DARTS 3.4M as published; DARTS V1 (more pools) counts 3.17M here
    assert 3.1e6 < params < 3.6e6
    net.train()
    logits, aux = net(torch.randn(2, 3, 32, 32))
    assert logits.shape == aux.shape == (2, 10)


def test_darts_v2_matches_nni_hub_parameter_count() -> None:
    from nni.nas.hub.pytorch import DARTS

    hub = DARTS.load_searched_model("darts-v2")
    ours = create_space("darts").build_network(PUBLISHED["DARTS_V2"], C=36, layers=20)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ours) == count(hub)


def test_text_form_reads_the_darts_notation_with_prefix_and_lists() -> None:
    text = ("genotypes.Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1)], normal_concat=[2], "
            "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=range(2, 3))")
    g = Genotype.from_text(text)
    assert g.n_nodes == 1 and g.normal_concat == (2,)
    assert create_space("darts", n_nodes=1).validate(g) is g


@pytest.mark.parametrize("text, message", [
    ("Genotype(normal=[('conv_9x9', 0), ('skip_connect', 1)] * 4, normal_concat=range(2, 6), "
     "reduce=[('skip_connect', 0), ('skip_connect', 1)] * 4, reduce_concat=range(2, 6))", "must be a list of"),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1)", "cannot parse"),
    ("Genotype(normal=[('conv_9x9', 0), ('skip_connect', 1)], normal_concat=range(2, 3), "
     "reduce=[('skip_connect', 0), ('skip_connect', 1)], reduce_concat=range(2, 3))", "not in this space's op set"),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 2)], normal_concat=range(2, 3), "
     "reduce=[('skip_connect', 0), ('skip_connect', 1)], reduce_concat=range(2, 3))", "out of range"),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 0)], normal_concat=range(2, 3), "
     "reduce=[('skip_connect', 0), ('skip_connect', 1)], reduce_concat=range(2, 3))", "distinct inputs"),
    ("Genotype(normal=[('none', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 3), "
     "reduce=[('skip_connect', 0), ('skip_connect', 1)], reduce_concat=range(2, 3))", "not in this space's op set"),
    ("Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=range(2, 3), "
     "reduce=[('skip_connect', 0), ('skip_connect', 1)], reduce_concat=range(2, 3))", "two per node"),
    ("Genotype(normal=[], reduce=[])", "missing"),
    ("Genotyp(normal=[])", "must read Genotype("),
    ("__import__('os').system('true')", "must read Genotype("),
])
def test_invalid_genotypes_get_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(GenotypeError, match=message.replace("(", r"\(")):
        create_space("darts", n_nodes=1).parse(text)


def test_wrong_node_count_is_named() -> None:
    with pytest.raises(GenotypeError, match="4 nodes but the space has 5"):
        create_space("darts", n_nodes=5).validate(PUBLISHED["DARTS_V2"])


def test_unknown_space_and_op_set_list_the_known_ones() -> None:
    assert "darts" in list_spaces()
    with pytest.raises(ConfigError, match="unknown search space 'dartz'; choose one of: darts"):
        create_space("dartz")
    with pytest.raises(ConfigError, match=r"unknown op set 'rich'; choose one of: cnas, darts, .*poor"):
        create_space("darts", op_set="rich")


@pytest.mark.parametrize("n_nodes", [4, 5, 6])
@pytest.mark.parametrize("op_set", ["darts", "poor"])
def test_sampled_networks_build_for_every_node_count(n_nodes: int, op_set: str) -> None:
    space = create_space("darts", op_set=op_set, n_nodes=n_nodes)
    genotype = space.sample(n_nodes)
    assert genotype.n_nodes == n_nodes and "none" not in genotype.to_text()
    assert space.to_genotype(space.to_sample(genotype)) == genotype
    net = space.build_network(genotype, C=8, layers=5).eval()
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    net = space.build_network(genotype, C=8, layers=3, stem="imagenet", num_classes=8).eval()
    assert net(torch.randn(1, 3, 224, 224)).shape == (1, 8)


def test_same_seed_same_architecture() -> None:
    space = create_space("darts")
    assert space.sample(7) == space.sample(7)
    assert len({space.sample(s) for s in range(50)}) == 50


def _frequency_p_values(genotypes: list[Genotype], ops: tuple[str, ...], n_nodes: int) -> list[float]:
    """Chi-square p-values of op and input-pair frequencies against the uniform distribution."""
    p_values = []
    for reduction in (False, True):
        for node in range(n_nodes):
            pairs, op_counts = Counter(), Counter()
            for g in genotypes:
                edges = g.cell(reduction)[0][2 * node: 2 * node + 2]
                pairs[tuple(sorted(src for _, src in edges))] += 1
                op_counts.update(op for op, _ in edges)
            all_pairs = list(itertools.combinations(range(node + 2), 2))
            assert set(pairs) <= set(all_pairs)
            if len(all_pairs) > 1:  # node 2 has the single pair (0, 1)
                p_values.append(chisquare([pairs[p] for p in all_pairs]).pvalue)
            p_values.append(chisquare([op_counts[o] for o in ops]).pvalue)
    return p_values


def test_sampler_is_uniform_over_ops_and_input_pairs() -> None:
    """Every op and every pair of distinct inputs is reachable and equally likely (chi-square)."""
    space = create_space("darts", n_nodes=5)
    rng = np.random.RandomState(0)
    genotypes = [space.sample(rng) for _ in range(6000)]
    for g in genotypes[:100]:
        space.validate(g)
    ops_seen = {op for g in genotypes for op, _ in g.normal + g.reduce}
    assert ops_seen == set(space.ops) and "none" not in ops_seen
    p_values = _frequency_p_values(genotypes, space.ops, 5)
    # 18 tests at alpha = 1e-3 (Bonferroni-style): a fair sampler passes, a biased one does not (below).
    assert min(p_values) > 1e-3 / len(p_values), p_values


def test_frequency_check_catches_a_biased_sampler() -> None:
    """The original benchmark's kind of bug (inputs only from the cell inputs) must fail the check."""
    space = create_space("darts", n_nodes=5)
    rng = np.random.RandomState(0)
    biased = []
    for _ in range(6000):
        g = space.sample(rng)
        normal = tuple((op, src if src < 2 else int(rng.randint(2))) for op, src in g.normal)
        biased.append(Genotype(normal, g.normal_concat, g.reduce, g.reduce_concat))
    with pytest.raises(AssertionError):  # pairs outside the cell inputs never appear → not uniform
        p_values = _frequency_p_values(biased, space.ops, 5)
        assert min(p_values) > 1e-3 / len(p_values)


def test_space_size() -> None:
    space = create_space("darts")
    per_cell = math.prod(math.comb(i, 2) * 49 for i in range(2, 6))
    assert space.num_architectures() == per_cell**2


def test_nni_model_space_freezes_to_the_sampled_child() -> None:
    from search_spaces.model_space import CellModelSpace

    model_space = CellModelSpace("darts", C=8, layers=5)
    assert set(model_space.simplify()) == set(model_space.space.mutables.keys())
    sample = model_space.space.random_sample(np.random.RandomState(3))
    child = model_space.freeze(sample)
    assert child.genotype == model_space.space.sample(3)
    assert child(torch.randn(2, 3, 32, 32)).shape == (2, 10)
