"""CNAS: its op set builds in both the supernet and child networks, and a tiny search returns a cell of it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nni_nas_bench.strategies import create_strategy
from search_spaces import create_space
from search_spaces.op_sets import OP_SETS
from search_spaces.ops import build_op


@pytest.mark.parametrize("C", [4, 8, 16, 36])  # 36 (final networks) is not divisible by 4 groups of 4
def test_shuffle_unit_builds_at_every_width(C: int) -> None:
    for stride in (1, 2):
        y = build_op("shuffle_conv_3x3", C, stride, affine=False)(torch.randn(2, C, 8, 8))
        assert y.shape == (2, C, 8 // stride, 8 // stride) and (y >= 0).all()  # ends in a ReLU


def test_channel_weighting_only_rescales_channels_at_stride_1() -> None:
    op = build_op("cweight_com", 16, 1)
    x = torch.rand(2, 16, 8, 8) + 0.1
    ratio = op(x) / x
    assert torch.allclose(ratio, ratio[:, :, :1, :1].expand_as(ratio))  # one factor per (sample, channel)
    assert ((ratio > 0) & (ratio < 1)).all()  # a sigmoid gate


def test_cnas_defaults_follow_spec() -> None:
    strategy = create_strategy("cnas")
    settings = (strategy.order, strategy.epochs, strategy.layers, strategy.batch_size, strategy.cutout)
    assert settings == (1, 50, 6, 64, 16)  # the benchmark README's --epochs 50 (the script default is 60)
    assert OP_SETS["cnas"][0] == "none" and {"cweight_com", "shuffle_conv_3x3"} <= set(OP_SETS["cnas"])


def test_tiny_cnas_search_returns_a_cell_of_its_space(synthetic_root: Path, cache_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNB_CACHE_DIR", str(cache_dir))
    space = create_space("darts", op_set="cnas", n_nodes=6)
    strategy = create_strategy("cnas", epochs=1, channels=4, layers=3, batch_size=20, subset=4, eval_batch_size=100)
    result = strategy.search(space, data_root=synthetic_root, dataset="cifar10", device="cpu", output_dir=tmp_path,
                             log=lambda _: None)
    assert space.validate(result.genotype) is result.genotype and result.genotype.n_nodes == 6
    net = space.build_network(result.genotype, C=8, layers=3).eval()
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
