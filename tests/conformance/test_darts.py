"""DARTS against the code the benchmark ran: antoyang/NAS-Benchmark (commit c2758da), folder DARTS/ (a fork of
khanrc/pt.darts), its README command, and the final-training ops of DARTS/, Augmentation/ and StacNAS.

Each expected value below is derived by hand from the reference lines named in the test's docstring.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from nni_nas_bench.data import get_dataset_info
from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies import create_strategy
from nni_nas_bench.strategies.darts import SearchRun, cap_skip_connects
from nni_nas_bench.yaml_file import read_yaml
from search_spaces import create_space
from search_spaces.genotype import Genotype
from search_spaces.supernet import DartsSupernet, edge_offsets, num_edges

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
DATASETS = ("cifar10", "cifar100", "sport8", "mit67", "flowers102")
OPS = create_space("darts").candidate_ops  # none, max_pool, avg_pool, skip, sep3, sep5, dil3, dil5


def _alpha(rows: dict[int, dict[str, float]], fill: float = 0.0) -> torch.Tensor:
    """A 14×8 α of the DARTS cell with ``fill`` everywhere except the given (row, op) values."""
    alpha = torch.full((num_edges(4), len(OPS)), fill)
    for row, values in rows.items():
        for op, value in values.items():
            alpha[row, OPS.index(op)] = value
    return alpha


def _clear_nodes(skip_nodes: tuple[int, ...] = ()) -> dict[int, dict[str, float]]:
    """Rows giving every node except ``skip_nodes`` a clear pair: sep_conv_3x3 from inputs 0 and 1 at 2.0."""
    offsets = edge_offsets(4)
    return {offsets[n] + src: {"sep_conv_3x3": 2.0} for n in range(4) if n not in skip_nodes for src in (0, 1)}


def _net_with(normal: torch.Tensor, reduce: torch.Tensor) -> DartsSupernet:
    net = DartsSupernet(create_space("darts"), C=4, layers=3)
    with torch.no_grad():
        net.alpha_normal.copy_(normal)
        net.alpha_reduce.copy_(reduce)
    return net


def test_edges_are_ranked_by_raw_alpha_by_default() -> None:
    """DARTS/genotypes.py lines 91-99 (``parse``): per node, ``edge_max`` = the largest RAW α of each edge
    without 'none' (``edges[:, :-1]``), the node keeps the top-2 edges by ``edge_max``; the softmax of α is
    never taken (search_cnn.py line 179 passes the raw ``alpha_normal``). quark0's DARTS ranks by softmax.

    Node 3 (inputs 0, 1, 2; α rows 2-4): input 0 has a flat row, sep_conv_3x3 1.0 over 0.9 elsewhere (raw
    max 1.0, softmax max e/(e + 7e^0.9) ≈ 0.14); input 1 sep_conv_5x5 0.5 over −3 (raw 0.5, softmax ≈ 0.83);
    input 2 dil_conv_3x3 0.8 over −3 (raw 0.8, softmax ≈ 0.86). Raw ranking keeps inputs 0 and 2, softmax
    ranking inputs 1 and 2.
    """
    rows = _clear_nodes(skip_nodes=(1,))
    rows[2] = {op: 0.9 for op in OPS} | {"sep_conv_3x3": 1.0}
    rows[3] = {op: -3.0 for op in OPS} | {"sep_conv_5x5": 0.5}
    rows[4] = {op: -3.0 for op in OPS} | {"dil_conv_3x3": 0.8}
    normal = _alpha(rows, fill=-1.0)
    net = _net_with(normal, _alpha(_clear_nodes(), fill=-1.0))
    sep = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)]
    raw_node = [("sep_conv_3x3", 0), ("dil_conv_3x3", 2)]
    softmax_node = [("sep_conv_5x5", 1), ("dil_conv_3x3", 2)]
    concat = range(2, 6)
    expected_raw = Genotype(sep + raw_node + sep + sep, concat, sep * 4, concat)
    expected_softmax = Genotype(sep + softmax_node + sep + sep, concat, sep * 4, concat)
    darts = create_strategy("darts")
    assert darts.edge_ranking == "raw"
    assert darts.genotype_of(net) == expected_raw
    assert create_strategy("darts", edge_ranking="softmax").genotype_of(net) == expected_softmax
    assert net.genotype() == expected_softmax  # the supernet's own rule stays quark0's (the variants use it)


def test_skip_connect_cap_zeroes_the_weakest_skip_alpha() -> None:
    """DARTS/search.py lines 112-133: after the last epoch, count the normal edges whose top-1 raw α over ALL
    ops (``alpha_normal[i][:, :]``, 'none' included) is skip_connect (index 2 of its PRIMITIVES); while more
    than 2, set the smallest such skip α to 0 (first minimum on ties, strict ``<``); then write
    ``model.genotype()``.

    Normal α: rows 0, 2, 5 are skip-dominated (skip 0.9, 0.5, 0.7; sep_conv_3x3 0.3 second on row 2);
    row 9 has 'none' 2.0 over skip 0.2, so it is not counted although its skip α is the smallest. The cap
    zeroes row 2 only (node 3's input 0), which then reads sep_conv_3x3.
    """
    rows = {0: {"skip_connect": 0.9, "sep_conv_3x3": 0.2}, 1: {"sep_conv_3x3": 0.8},
            2: {"skip_connect": 0.5, "sep_conv_3x3": 0.3}, 3: {"dil_conv_3x3": 0.1},
            5: {"skip_connect": 0.7, "sep_conv_5x5": 0.2}, 6: {"sep_conv_3x3": 0.6},
            9: {"none": 2.0, "skip_connect": 0.2}, 10: {"sep_conv_3x3": 0.8}, 11: {"sep_conv_5x5": 0.8}}
    normal = _alpha(rows, fill=-1.0)
    capped, zeroed = cap_skip_connects(normal, OPS, 2)
    assert zeroed == [2]
    assert capped[2, OPS.index("skip_connect")] == 0 and torch.equal(capped[[0, 5, 9]], normal[[0, 5, 9]])

    space = create_space("darts")
    net = _net_with(normal, _alpha(_clear_nodes(), fill=-1.0))
    run = SearchRun(space, None, torch.device("cpu"), None, None, None, None, None, lambda _: None, None)
    before = create_strategy("darts").genotype_of(net)
    after = create_strategy("darts").final_genotype(net, run, before.to_text())
    skips = [edge for edge in after.normal if edge[0] == "skip_connect"]
    assert sum(op == "skip_connect" for op, _ in before.normal) == 3
    assert skips == [("skip_connect", 0)] * 2  # nodes 2 (row 0) and 4 (row 5) keep theirs
    assert after.normal[2] == ("sep_conv_3x3", 0)  # node 3's input 0 (row 2) lost its skip
    assert create_strategy("darts", max_skip_connect=None).final_genotype(net, run, before.to_text()) == before


def test_skip_cap_zeroes_rather_than_removes() -> None:
    """DARTS/search.py line 128 writes 0 into the skip α, not −∞: an edge whose other ops are all below 0 keeps
    its skip after the cap (it is only dropped from the count). Three skip rows with every other α at −1:
    the weakest (row 2) is zeroed, and skip (0) is still its largest α."""
    normal = _alpha({0: {"skip_connect": 0.9}, 2: {"skip_connect": 0.5}, 5: {"skip_connect": 0.7}}, fill=-1.0)
    capped, zeroed = cap_skip_connects(normal, OPS, 2)
    assert zeroed == [2] and int(capped[2].argmax()) == OPS.index("skip_connect")


def test_the_scheduler_is_stepped_before_each_epoch() -> None:
    """DARTS/search.py lines 72-80: ``CosineAnnealingLR(w_optim, epochs, eta_min=w_lr_min)`` and, at the START of
    every epoch, ``lr_scheduler.step(); lr = lr_scheduler.get_lr()[0]``: epoch e trains at η(e + 1), the
    last at w_lr_min (PyTorch ≤ 1.0's closed-form ``get_lr``; today's ``get_last_lr`` after the same step)."""
    weight = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([weight], lr=0.025)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 50, eta_min=0.001)
    expected = []
    for _ in range(50):
        opt.step()  # (keeps torch from warning about the order; the reference steps the scheduler first)
        scheduler.step()
        expected.append(scheduler.get_last_lr()[0])
    darts = create_strategy("darts")
    ours = [darts.epoch_lr(e, 50) for e in range(50)]
    assert ours == pytest.approx(expected, abs=1e-12) and ours[-1] == pytest.approx(0.001)
    assert create_strategy("darts", lr_epoch_offset=0).epoch_lr(0, 50) == pytest.approx(0.025)


def test_search_defaults_are_the_benchmark_config() -> None:
    """DARTS/config.py lines 46-64 (batch 64, w_lr 0.025 → 0.001, momentum 0.9, wd 3e-4, clip 5, 50 epochs,
    16 channels, 8 layers, alpha_lr 3e-4, alpha wd 1e-3), search.py lines 49-53 (SGD; Adam betas (0.5, 0.999))
    and line 158 (always ``unrolled_backward``: second order); no cutout in the search (search.py line 41)."""
    darts = create_strategy("darts")
    assert (darts.order, darts.epochs, darts.batch_size, darts.layers, darts.channels, darts.cutout) == (
        2, 50, 64, 8, 16, 0)
    assert (darts.w_lr, darts.w_lr_min, darts.w_momentum, darts.w_weight_decay, darts.grad_clip) == (
        0.025, 0.001, 0.9, 3e-4, 5.0)
    net = DartsSupernet(create_space("darts"), C=4, layers=3)
    w_opt, a_opt = darts.make_optimizers(net)
    assert isinstance(a_opt, torch.optim.Adam) and isinstance(w_opt, torch.optim.SGD)
    group = a_opt.param_groups[0]
    assert (group["lr"], group["betas"], group["weight_decay"]) == (3e-4, (0.5, 0.999), 1e-3)


def test_final_network_puts_bn_after_pooling_with_pool_bn() -> None:
    """DARTS/models/ops.py lines 9-10 and 50-72: ``avg_pool_3x3``/``max_pool_3x3`` are ``PoolBN`` (pool, then
    ``BatchNorm2d(C, affine)``), and the final network builds them with affine=True (genotypes.py line 34,
    ``to_dag``); Augmentation/models/ops.py lines 9-10 and susan0199/stacnas operators.py lines 20-23 the same.
    quark0's DARTS, PDARTS (PDARTS/operations.py lines 6-7) and CNAS use the bare pool: ``pool_bn`` false."""
    genotype = Genotype([("max_pool_3x3", 0), ("avg_pool_3x3", 1)] * 4, range(2, 6),
                        [("max_pool_3x3", 0), ("skip_connect", 1)] * 4, range(2, 6))
    with_bn = create_space("darts", pool_bn=True).build_network(genotype, C=8, layers=3)
    edge = with_bn.cells[0].edges[0][0]
    assert isinstance(edge, nn.Sequential) and isinstance(edge[0], nn.MaxPool2d)
    assert isinstance(edge[1], nn.BatchNorm2d) and edge[1].affine and edge[1].num_features == 8
    assert isinstance(with_bn.cells[1].edges[0][0][1], nn.BatchNorm2d)  # reduction cell too (16 channels)
    assert with_bn(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    plain = create_space("darts").build_network(genotype, C=8, layers=3)
    assert isinstance(plain.cells[0].edges[0][0], nn.MaxPool2d)


@pytest.mark.parametrize("dataset", DATASETS)
def test_yamls_use_the_benchmark_settings(dataset: str) -> None:
    """The DARTS YAMLs run the benchmark's rules (raw ranking, skip cap 2, the scheduler stepped first) and
    train with BN behind pools (DARTS/models/ops.py lines 9-10); CNAS's final network has none
    (CNAS/darts/operations.py lines 33-34), nor PDARTS's (PDARTS/operations.py lines 6-7)."""
    args = read_yaml(EXPERIMENTS / dataset / "darts.yml", "experiment file")["tuner"]["classArgs"]
    search = args["search"]
    assert (search["edge_ranking"], search["max_skip_connect"], search["lr_epoch_offset"]) == ("raw", 2, 1)
    assert args["space_args"]["pool_bn"] is True
    settings = create_strategy("darts", **search).settings
    assert {key: settings[key] for key in search} == search and settings == create_strategy("darts").settings
    for method in ("cnas", "pdarts"):
        other = read_yaml(EXPERIMENTS / dataset / f"{method}.yml", "experiment file")["tuner"]["classArgs"]
        assert not other["space_args"].get("pool_bn", False)


def test_imagenet_search_stem_is_unchanged() -> None:
    """DARTS/models/search_cnn.py lines 38-51: the 224-px search stem is two stride-2 convs to C/2 and C, then
    ReLU, a stride-2 conv and BN, all with affine BN; our supernet's ImageNet stem is the same."""
    info = get_dataset_info("sport8")
    net = DartsSupernet(create_space("darts"), C=8, num_classes=info.num_classes, layers=3, stem="imagenet")
    stem = [*net.network.stem0, *net.network.stem1]
    convs = [m for m in stem if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.stride) for c in convs] == [(4, (2, 2)), (8, (2, 2)), (8, (2, 2))]
    assert all(m.affine for m in stem if isinstance(m, nn.BatchNorm2d))


def test_bad_reference_settings_name_the_fix() -> None:
    """The settings that switch between the benchmark's and quark0's rules reject other values clearly."""
    with pytest.raises(ConfigError, match="edge_ranking must be 'raw'"):
        create_strategy("darts", edge_ranking="max")
    with pytest.raises(ConfigError, match="max_skip_connect must be"):
        create_strategy("darts", max_skip_connect=-1)
    with pytest.raises(ConfigError, match="lr_epoch_offset must be 0"):
        create_strategy("darts", lr_epoch_offset=2)
    with pytest.raises(ConfigError, match="genotype_at must be one of"):
        create_strategy("cnas", genotype_at="best")
