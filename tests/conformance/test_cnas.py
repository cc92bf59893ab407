"""CNAS against the code the benchmark ran: antoyang/NAS-Benchmark (commit c2758da), folder CNAS/ (a copy of
tianbaochou/CNAS) and its README command (``--batch-size 64 --epochs 50 --num-meta-node 6 --cutout``).

Each expected value below is derived by hand from the reference lines named in the test's docstring.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from torch import nn

from nni_nas_bench.data import get_dataset_info
from nni_nas_bench.strategies import create_strategy
from nni_nas_bench.strategies.cnas import CnasStrategy
from nni_nas_bench.strategies.darts import SearchRun
from nni_nas_bench.yaml_file import read_yaml
from search_spaces import create_space
from search_spaces.genotype import Genotype
from search_spaces.supernet import DartsSupernet, edge_offsets, num_edges

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
DATASETS = ("cifar10", "cifar100", "sport8", "mit67", "flowers102")
SPACE = create_space("darts", op_set="cnas", n_nodes=6)
OPS = SPACE.candidate_ops  # none, skip, cweight_com, avg_pool, max_pool, sep3, dil3, shuffle3


def _run(dataset: str) -> SearchRun:
    return SearchRun(SPACE, get_dataset_info(dataset), torch.device("cpu"), None, None, None, None, None,
                     lambda _: None, None)


def test_lr_anneals_to_0_003_stepped_before_each_epoch() -> None:
    """CNAS/run/train_search.py line 32 (``--learning-rate-min`` 0.003), lines 280-282
    (``CosineAnnealingLR(optimizer, float(epochs), eta_min=0.003)``) and lines 290-292 (``scheduler.step()``
    then ``get_lr()[0]`` at the START of each epoch): epoch e trains at η(e + 1); the last one at 0.003."""
    weight = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([weight], lr=0.025)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 50, eta_min=0.003)
    expected = []
    for _ in range(50):
        opt.step()
        scheduler.step()
        expected.append(scheduler.get_last_lr()[0])
    cnas = create_strategy("cnas")
    ours = [cnas.epoch_lr(e, cnas.epochs) for e in range(cnas.epochs)]
    assert cnas.epochs == 50 and ours == pytest.approx(expected, abs=1e-12)
    assert ours[-1] == pytest.approx(0.003)


def test_cifar_search_stem_bn_has_no_affine_parameters() -> None:
    """CNAS/darts/model_search.py lines 121-125: the CIFAR stem (``reduce_level`` 0, train_search.py line 267) is
    conv 3×3 → ``BatchNorm2d(c_curr, affine=False)``; the 224-px stems (lines 139-151) keep affine BN."""
    cnas = create_strategy("cnas", channels=4, layers=3)
    net = cnas.build_supernet(_run("cifar10"), layers=3)
    bn = net.network.stem0[1]
    assert isinstance(bn, nn.BatchNorm2d) and not bn.affine and bn.num_features == 12
    assert not any(p is bn.weight for p in net.weight_parameters())
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    big = cnas.build_supernet(_run("sport8"), layers=3)
    assert all(m.affine for m in big.network.stem0 if isinstance(m, nn.BatchNorm2d))
    assert create_strategy("cnas", channels=4, stem_affine=True).build_supernet(
        _run("cifar10"), layers=3).network.stem0[1].affine


def test_edges_are_ranked_by_softmax_without_skip_cap() -> None:
    """CNAS/darts/model_search.py lines 214-247: ``_parse(F.softmax(alphas, dim=-1))`` ranks a node's edges by
    their largest softmax weight other than 'none' and keeps the top two; nothing caps skip-connects
    (train_search.py lines 325-326 write the genotype as derived).

    Node 3 (α rows 2-4): input 0 a flat row (cweight_com 1.0 over 0.9: raw max 1.0, softmax ≈ 0.14),
    input 1 sep_conv_3x3 0.5 over −3 (softmax ≈ 0.83), input 2 dil_conv_3x3 0.8 over −3 (≈ 0.86):
    softmax keeps inputs 1 and 2 (raw α would keep 0 and 2). Every other node: skip_connect from 0 and 1,
    so the normal cell has 10 skip-connects and keeps them.
    """
    offsets = edge_offsets(6)
    normal = torch.full((num_edges(6), len(OPS)), -1.0)
    for node in (0, 2, 3, 4, 5):
        for src in (0, 1):
            normal[offsets[node] + src, OPS.index("skip_connect")] = 2.0
    normal[2] = 0.9
    normal[2, OPS.index("cweight_com")] = 1.0
    normal[3] = -3.0
    normal[3, OPS.index("sep_conv_3x3")] = 0.5
    normal[4] = -3.0
    normal[4, OPS.index("dil_conv_3x3")] = 0.8
    reduce = torch.full_like(normal, -1.0)
    for node in range(6):
        for src in (0, 1):
            reduce[offsets[node] + src, OPS.index("max_pool_3x3")] = 2.0
    net = DartsSupernet(SPACE, C=4, layers=3)
    with torch.no_grad():
        net.alpha_normal.copy_(normal)
        net.alpha_reduce.copy_(reduce)
    cnas = create_strategy("cnas")
    skip = [("skip_connect", 0), ("skip_connect", 1)]
    expected = Genotype(skip + [("sep_conv_3x3", 1), ("dil_conv_3x3", 2)] + skip * 4, range(2, 8),
                        [("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 6, range(2, 8))
    assert (cnas.edge_ranking, cnas.max_skip_connect) == ("softmax", None)
    assert cnas.genotype_of(net) == expected
    assert cnas.final_genotype(net, _run("cifar10"), expected.to_text()) == expected  # no cap


class _RecordedRows(CnasStrategy):
    """CNAS whose supernet training returns fixed per-epoch rows: only the genotype choice is under test."""

    rows: ClassVar[list[dict[str, Any]]] = []
    trained: ClassVar[list[Any]] = []  # the supernets handed to training (their α stays the initial one)

    def train_supernet(self, net: Any, run: SearchRun, *, epochs: int, **kwargs: Any) -> list[dict[str, Any]]:
        self.trained.append(net)
        return self.rows[:epochs]


def test_written_genotype_is_the_one_derived_before_the_last_epoch() -> None:
    """CNAS/run/train_search.py lines 290-326: each epoch first derives ``genotype = self.model.genotype()``
    (line 296), then trains (line 304); after the loop the LAST derived genotype is written (lines 325-326),
    i.e. the genotype of α after epochs − 1 epochs (for one epoch: the initial α's)."""
    genotypes = [SPACE.sample(seed) for seed in range(3)]
    _RecordedRows.rows = [{"genotype": g.to_text(), "valid_acc": 10.0 * i} for i, g in enumerate(genotypes)]
    run = _run("cifar10")
    cnas = _RecordedRows(epochs=3, channels=4, layers=3)
    assert cnas._search(run) == (genotypes[1], 20.0)
    assert _RecordedRows(epochs=3, channels=4, layers=3, genotype_at="end")._search(run) == (genotypes[2], 20.0)
    one = _RecordedRows(epochs=1, channels=4, layers=3)
    assert one._search(run)[0] == one.genotype_of(_RecordedRows.trained[-1])  # the initial α's genotype


def test_search_defaults_are_the_benchmark_command() -> None:
    """CNAS README lines 14-22 (``--batch-size 64 --epochs 50 --num-meta-node 6 --cutout``) and train_search.py
    lines 31-52 (lr 0.025, momentum 0.9, wd 3e-4, 16 channels, 6 layers, cutout 16, clip 5, first order:
    ``--sec-approx`` off; α Adam 3e-4, wd 1e-3) with architecture.py lines 23-25 (betas (0.5, 0.999))."""
    cnas = create_strategy("cnas")
    assert (cnas.order, cnas.epochs, cnas.batch_size, cnas.layers, cnas.channels, cnas.cutout) == (1, 50, 64, 6, 16, 16)
    assert (cnas.w_lr, cnas.w_lr_min, cnas.w_momentum, cnas.w_weight_decay, cnas.grad_clip) == (
        0.025, 0.003, 0.9, 3e-4, 5.0)
    assert (cnas.alpha_lr, cnas.alpha_betas, cnas.alpha_weight_decay) == (3e-4, (0.5, 0.999), 1e-3)


@pytest.mark.parametrize("dataset", DATASETS)
def test_yamls_run_the_benchmark_protocol(dataset: str) -> None:
    """The CNAS YAMLs: the README command everywhere, and on CIFAR-100 what train_search.py lines 83-86 force
    (``epochs = 50``, ``init_channels = 24``); CNAS's final networks have no BN behind pools
    (CNAS/darts/operations.py lines 33-34)."""
    args = read_yaml(EXPERIMENTS / dataset / "cnas.yml", "experiment file")["tuner"]["classArgs"]
    search = args["search"]
    assert (search["epochs"], search["channels"]) == ((50, 24) if dataset == "cifar100" else (50, 16))
    settings = create_strategy("cnas", **search).settings
    defaults = create_strategy("cnas").settings
    assert {key: settings[key] for key in search} == search
    assert {k: v for k, v in settings.items() if k != "channels"} == {k: v for k, v in defaults.items()
                                                                      if k != "channels"}
    assert args["space_args"] == {"op_set": "cnas", "n_nodes": 6}
