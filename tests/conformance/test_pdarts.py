"""PDARTS against the code the benchmark ran: antoyang/NAS-Benchmark @ c2758da73192d408aad458768f26d3537dd78c40,
PDARTS/train_search.py, PDARTS/model_search.py, PDARTS/operations.py and the search commands of PDARTS/README.md."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from nni_nas_bench.strategies import create_strategy
from nni_nas_bench.strategies.darts import DartsStrategy
from nni_nas_bench.strategies.pdarts import clip_total_norm, limit_skip_connects, prune_edge_ops, skip_dropout_rate
from search_spaces import create_space
from search_spaces.ops import FactorizedReduce
from search_spaces.supernet import DartsSupernet, MixedOp

ROOT = Path(__file__).resolve().parents[2]

# PDARTS/README.md:13-19 (--layers, --add_layers twice, --dropout_rate three times, per dataset)
README = {"cifar10": ([5, 11, 17], [0.0, 0.4, 0.7]), "cifar100": ([5, 11, 17], [0.1, 0.2, 0.3]),
          "sport8": ([8, 8, 8], [0.0, 0.4, 0.7]), "mit67": ([8, 8, 8], [0.0, 0.4, 0.7]),
          "flowers102": ([8, 8, 8], [0.0, 0.4, 0.7])}


@pytest.mark.parametrize("dataset", sorted(README))
def test_experiment_yamls_use_the_readme_cells_and_dropout(dataset: str) -> None:
    """README.md:14-19 with train_search.py:144-154 (layers + add_layers per stage): 5/11/17 cells on the CIFARs,
    8/8/8 on SPORT8, MIT67, FLOWERS102; skip dropout 0/0.4/0.7, CIFAR100 0.1/0.2/0.3."""
    search = yaml.safe_load((ROOT / "experiments" / dataset / "pdarts.yml").read_text())["tuner"]["classArgs"]["search"]
    strategy = create_strategy("pdarts", **search)
    assert (strategy.stage_layers, strategy.skip_dropout) == README[dataset]
    assert (strategy.cutout, strategy.alpha_grad_clip) == (16, 5.0)


def test_defaults_are_the_forks_search_arguments() -> None:
    """train_search.py:24-42 (batch 96, lr 0.025 -> 0, wd 3e-4, 25 epochs, 16 ch, cutout on (default True) with
    length 16, grad clip 5, α Adam 6e-4 wd 1e-3), :168 (betas 0.5, 0.999), :138-139 (keep 5, 3, 1),
    :152 (10 weights-only epochs per stage), :174 (decay 0.2)."""
    s = create_strategy("pdarts")
    assert (s.batch_size, s.w_lr, s.w_lr_min, s.w_weight_decay, s.epochs, s.channels, s.cutout, s.grad_clip) == \
        (96, 0.025, 0.0, 3e-4, 25, 16, 16, 5.0)
    assert (s.alpha_lr, s.alpha_weight_decay, s.alpha_betas, s.alpha_grad_clip, s.order) == \
        (6e-4, 1e-3, (0.5, 0.999), 5.0, 1)
    assert (s.keep_ops, s.weights_only_epochs, s.skip_dropout_decay) == ([5, 3], 10, 0.2)


def test_skip_dropout_only_behind_identity_skips() -> None:
    """model_search.py:22-23 adds the dropout only when ``isinstance(op, Identity)``; operations.py:8 makes a
    strided skip_connect a FactorizedReduce, so reduction edges from the cell inputs get no dropout while
    normal-cell skips (and stride-1 edges of a reduction cell) do."""
    net = DartsSupernet(create_space("darts", n_nodes=2), C=4, layers=3, skip_dropout=True)
    seen = {"identity": 0, "strided": 0}
    for mixed in (m for m in net.modules() if isinstance(m, MixedOp)):
        for op in mixed.ops:
            inner = op[0] if isinstance(op, nn.Sequential) else op
            if isinstance(inner, FactorizedReduce):
                seen["strided"] += 1
                assert not any(isinstance(m, nn.Dropout) for m in op.modules())
            elif isinstance(inner, nn.Identity):
                seen["identity"] += 1
                assert isinstance(op, nn.Sequential) and isinstance(op[1], nn.Dropout)
    # 3 cells (normal, then reductions at 3 // 3 and 2 · 3 // 3) × 5 edges; each reduction cell's 4 edges from
    # its two inputs are strided, its edge from node 0 is not
    assert seen == {"identity": 5 + 1 + 1, "strided": 4 + 4}
    net.set_skip_dropout(0.4)
    assert {m.p for m in net.modules() if isinstance(m, nn.Dropout)} == {0.4}


def test_alpha_gradient_norm_is_clipped_at_5() -> None:
    """train_search.py:317: ``clip_grad_norm_(model.arch_parameters(), args.grad_clip)`` (5, :39) before
    ``optimizer_a.step()``: both cells' α gradients together scaled to norm 5 when larger."""
    torch.manual_seed(0)
    space = create_space("darts", n_nodes=2)
    net = DartsSupernet(space, C=4, num_classes=3, layers=3, generator=torch.Generator().manual_seed(1))
    batch = (torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 0]))

    class Loud(nn.Module):
        def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return 1e4 * nn.functional.cross_entropy(logits, y)

    pdarts = create_strategy("pdarts", channels=4)
    weights = dict(net.named_weight_parameters())
    w_opt, _ = pdarts.make_optimizers(net)
    raw = DartsStrategy.alpha_gradient(pdarts, net, weights, batch, batch, 0.025, w_opt, Loud())
    clipped = pdarts.alpha_gradient(net, weights, batch, batch, 0.025, w_opt, Loud())
    raw_norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in raw]))
    assert raw_norm > 5
    assert torch.linalg.vector_norm(torch.stack([g.norm() for g in clipped])).item() == pytest.approx(5.0, rel=1e-5)
    for r, c in zip(raw, clipped):
        torch.testing.assert_close(c, r * 5 / (raw_norm + 1e-6))
    # the same scaling as torch's clip_grad_norm_, which the fork calls
    params = [nn.Parameter(torch.zeros_like(g)) for g in raw]
    for p, g in zip(params, raw):
        p.grad = g.clone()
    nn.utils.clip_grad_norm_(params, 5.0)
    for p, c in zip(params, clip_total_norm(raw, 5.0)):
        torch.testing.assert_close(p.grad, c)


def test_skip_dropout_schedule_per_epoch() -> None:
    """train_search.py:181-186: p·(epochs − epoch − 1)/epochs in the 10 weights-only epochs, then
    p·exp(−(epoch − 10)·0.2)."""
    for epoch in range(25):
        expected = 0.7 * (25 - epoch - 1) / 25 if epoch < 10 else 0.7 * math.exp(-(epoch - 10) * 0.2)
        assert skip_dropout_rate(0.7, epoch, 25, 10) == pytest.approx(expected)


def test_pruning_ranks_softmax_over_the_remaining_ops_none_included() -> None:
    """train_search.py:203-215 (get_min_k on the softmax over the edge's remaining ops, none included, drops
    3 then 2), :210-211 (the last stage drops none first: get_min_k_no_zero)."""
    space = create_space("darts", n_nodes=2)
    ops = space.candidate_ops
    full = [list(ops) for _ in range(5)]
    w = torch.softmax(torch.tensor([[3.0, 0.1, 0.2, 2.0, 0.3, 1.0, 0.4, 1.5]] * 5), dim=-1)
    kept = prune_edge_ops({"normal": full, "reduce": full}, ops, {"normal": w, "reduce": w}, keep=5)
    assert kept["normal"][0] == ["none", "skip_connect", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]
    # final stage: none (the strongest) is never the edge's op; the genotype takes the best other op
    g = limit_skip_connects(space, w, w, max_skip=8)
    assert {op for op, _ in g.normal} == {"skip_connect"}
