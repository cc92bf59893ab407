"""One-shot methods search the NB201 space; the found cell is looked up in the table.

DARTS: first order on the synthetic CIFAR-shaped folder (fast), second order on real CIFAR-10 (slow: the
first real-data test of a session decodes the JPEG archive into the cache). GDAS, DARTS-PT, ENAS (and
MANAS): a tiny synthetic search each, its cell looked up as a benchmark experiment's searched trial does; GDAS's
sampler (one op per edge, straight-through gradient, Gumbel-max distribution, τ schedule) and ENAS's
NB201 path supernet on tensors.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import CIFAR10_JPEG, SHARED_DATA

TABLES = SHARED_DATA / "nas-bench-201"
pytestmark = pytest.mark.skipif(not TABLES.is_dir(), reason=f"NB201 tables not found at {TABLES}")
TINY = {"epochs": 1, "channels": 4, "layers": 3, "batch_size": 16, "subset": 4, "eval_batch_size": 100}


REAL = pytest.mark.skipif(not CIFAR10_JPEG.exists(), reason=f"real CIFAR-10 not found at {CIFAR10_JPEG}")


@pytest.mark.parametrize("order, real", [(1, False), pytest.param(2, True, marks=[pytest.mark.slow, REAL])])
def test_tiny_darts_search_of_nb201_returns_a_tabulated_cell(order: int, real: bool, synthetic_root: Path,
                                                            cache_dir: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from nni_nas_bench.strategies import create_strategy
    from nni_nas_bench.tabular import load_table
    from search_spaces import create_space
    from search_spaces.nb201_arch import EDGES, NB201_OPS, NB201Arch

    monkeypatch.setenv("NNB_CACHE_DIR", str(cache_dir))
    space = create_space("nb201")
    strategy = create_strategy("darts", order=order, seed=0, **TINY)
    result = strategy.search(space, data_root=SHARED_DATA if real else synthetic_root, dataset="cifar10",
                             device="cpu", output_dir=tmp_path, log=lambda _: None)
    cell = result.genotype
    assert isinstance(cell, NB201Arch) and space.parse(cell.to_text()) == cell
    # the cell is the argmax of the learned α, edge by edge
    alpha = torch.tensor(result.alpha_history[-1]["alpha"]["normal"])
    assert alpha.shape == (len(EDGES), len(NB201_OPS))
    assert cell.ops == tuple(NB201_OPS[int(i)] for i in alpha.argmax(dim=1))
    assert result.alpha_history[-1]["alpha"]["reduce"] == []  # NB201's reductions are fixed blocks
    table = load_table("cifar10", SHARED_DATA)
    accuracy = float(table.test[table.index_of(cell)])
    assert 10.0 <= accuracy <= 94.5  # every NB201 cell has a tabulated CIFAR-10 accuracy in this range
    saved = json.loads((tmp_path / "darts_search.json").read_text())
    assert saved["candidate_ops"] == list(NB201_OPS) and saved["epochs"][-1]["genotype"] == cell.to_text()


# --------------------------------------------------------------------- GDAS, DARTS-PT, ENAS on NB201
# Per method: tiny settings (DARTS-PT without fine-tuning: its decisions are what is new on NB201). MANAS
# shares ENAS's NB201 path supernet, so it searches NB201 too and is checked with it.
METHODS = {
    "gdas": {"epochs": 2, "layers": 3},
    "darts_pt": {"epochs": 1, "layers": 3, "finetune_epochs": 0},
    "enas": {"epochs": 1, "layers": 3, "controller_steps": 2, "controller_aggregate": 1, "final_samples": 2,
             "bn_calibration_batches": 2},
    # the same path supernet as ENAS; NB201 has one cell for all layers: cells shared
    "manas": {"epochs": 1, "layers": 3, "bn_calibration_batches": 2, "cells": "shared"},
}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_tiny_one_shot_search_of_nb201_returns_a_cell_and_its_table_accuracy(name: str, synthetic_root: Path,
                                                                            cache_dir: Path, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from nni_nas_bench.strategies import create_strategy
    from nni_nas_bench.tabular import load_table
    from nni_nas_bench.tabular.trial import run_tabular_trial
    from search_spaces import create_space
    from search_spaces.nb201_arch import NB201_OPS, NB201Arch

    monkeypatch.setenv("NNB_CACHE_DIR", str(cache_dir))
    space = create_space("nb201")
    settings = {**TINY, **METHODS[name]}
    result = create_strategy(name, seed=0, **settings).search(space, data_root=synthetic_root, dataset="cifar10",
                                                              device="cpu", output_dir=tmp_path, log=lambda _: None)
    cell = result.genotype
    assert isinstance(cell, NB201Arch) and space.parse(cell.to_text()) == cell
    last = result.alpha_history[-1]
    if name == "gdas":  # the cell is the argmax of the learned α; τ went from 10 (first epoch) to 0.1 (last)
        alpha = torch.tensor(last["alpha"]["normal"])
        assert cell.ops == tuple(NB201_OPS[int(i)] for i in alpha.argmax(dim=1))
        assert [row["tau"] for row in result.alpha_history] == pytest.approx([10.0, 0.1])
    elif name == "darts_pt":  # one op decision per edge ('none' a candidate, as in the reference's NB201 search),
        decided = {d["edge"]: d["op"] for d in last["decisions"]}  # no input decisions: the cell is the decisions
        assert sorted(decided) == list(range(6)) and all("inputs" not in d for d in last["decisions"])
        assert cell.ops == tuple(decided[e] for e in range(6))
        assert all("none" in d["masked_acc"] for d in last["decisions"])
    # The lookup a benchmark experiment's searched trial does (BenchmarkTuner's `tabular` setting).
    metrics = run_tabular_trial({"role": "searched", "method": name, "space": "nb201", "genotype": cell.to_text(),
                                 "tabular": {"dataset": "cifar10", "final_metric": "test"}}, data_root=SHARED_DATA)
    table = load_table("cifar10", SHARED_DATA)
    assert metrics["nb201_index"] == table.index_of(cell) and metrics["genotype"] == cell.to_text()
    assert metrics["default"] == float(table.test[table.index_of(cell)]) and 10.0 <= metrics["default"] <= 94.5


def _count_op_calls(net: torch.nn.Module) -> dict[int, list[int]]:
    """Per mixed edge (by module id), a counter per op that forward hooks increment."""
    from search_spaces.supernet import MixedOp

    calls: dict[int, list[int]] = {}
    for module in net.modules():
        if isinstance(module, MixedOp):
            calls[id(module)] = counts = [0] * len(module.ops)
            for i, op in enumerate(module.ops):
                op.register_forward_hook(lambda *_, c=counts, i=i: c.__setitem__(i, c[i] + 1))
    return calls


@pytest.mark.parametrize("space_name, args", [("nb201", {"layers": 1}), ("darts", {"layers": 3})])
def test_gdas_forward_computes_one_op_per_edge_and_alpha_gets_the_straight_through_gradient(
        space_name: str, args: dict[str, int]) -> None:
    from nni_nas_bench.strategies.gdas import GumbelSampler
    from search_spaces import create_space
    from search_spaces.supernet import DartsSupernet, MixedOp

    space = create_space(space_name, **({"n_nodes": 2} if space_name == "darts" else {}))
    torch.manual_seed(0)
    net = space.build_supernet(C=4, **args) if space_name == "nb201" else DartsSupernet(space, C=4, **args)
    net.sampler = GumbelSampler(tau=1.0)
    calls = _count_op_calls(net)
    net(torch.randn(2, 3, 32, 32)).logsumexp(1).sum().backward()
    assert calls and all(sum(c) == 1 for c in calls.values())  # exactly one op ran on every edge
    for alpha in net.arch_parameters():
        if alpha.numel():
            assert alpha.grad is not None and alpha.grad.abs().sum() > 0  # through the soft weights
    for module in net.modules():  # parameters of the ops that did not run get no gradient
        if isinstance(module, MixedOp):
            for op, n in zip(module.ops, calls[id(module)]):
                grads = [p.grad for p in op.parameters()]
                assert all((g is not None) == bool(n) for g in grads)


def test_gumbel_sample_is_one_hot_forward_follows_softmax_alpha_and_evaluates_the_argmax() -> None:
    from nni_nas_bench.strategies.gdas import GdasStrategy, GumbelSampler, gumbel_hard

    torch.manual_seed(0)
    alpha = torch.tensor([[2.0, 1.0, 0.0, -1.0, -30.0]], requires_grad=True)
    probs = torch.softmax(alpha, -1).expand(20000, 5)
    for tau in (10.0, 0.1):  # Gumbel-max: the sample follows softmax(α) whatever τ is
        weights, index = gumbel_hard(probs, tau)
        assert torch.equal(weights.detach(), torch.nn.functional.one_hot(torch.tensor(index), 5).float())
        freq = torch.bincount(torch.tensor(index), minlength=5).float() / len(index)
        assert torch.allclose(freq, probs[0].detach(), atol=0.015), (tau, freq)
    weights, index = gumbel_hard(torch.softmax(alpha, -1), 1.0)
    (weights[0, index[0]] * 3.0).backward()  # a forward value of 1·op, a backward through softmax
    assert alpha.grad is not None and alpha.grad.abs().sum() > 0
    eval_weights, eval_index = GumbelSampler(10.0)(torch.softmax(alpha, -1).detach(), False)
    assert eval_index == [0] and eval_weights.tolist() == [[1.0, 0.0, 0.0, 0.0, 0.0]]
    gdas = GdasStrategy(epochs=5)
    assert [gdas.tau_at(e) for e in range(5)] == pytest.approx([10.0, 7.525, 5.05, 2.575, 0.1])


def test_enas_path_supernet_of_nb201_runs_only_the_sampled_ops() -> None:
    from search_spaces import create_space
    from search_spaces.nb201_arch import NB201Arch
    from search_spaces.path_supernet import PathSupernet, SampledNB201Edge

    space = create_space("nb201")
    net = PathSupernet(space, C=4, layers=1)
    arch = NB201Arch.from_text("|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|none~2|")
    net(torch.randn(2, 3, 32, 32), arch).sum().backward()
    edges = [m for m in net.modules() if isinstance(m, SampledNB201Edge)]
    assert len(edges) == 3 * 6
    for edge in edges:
        for op, module in edge.items():
            for p in module.parameters():
                assert (p.grad is not None) == (op == arch.ops[edge.row]), (edge.row, op)


class _Batches:
    """A loader of fixed batches with the project's loader interface (``set_epoch``; same batches every pass)."""

    def __init__(self, batches: list[tuple[torch.Tensor, torch.Tensor]]):
        self.batches = batches

    def set_epoch(self, epoch: int) -> None:
        pass

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.batches)


def test_gdas_evaluates_the_argmax_path_with_bn_statistics_of_that_path() -> None:
    from types import SimpleNamespace

    from nni_nas_bench.strategies.gdas import GdasStrategy, GumbelSampler
    from search_spaces import create_space
    from search_spaces.nb201_arch import NB201_OPS
    from search_spaces.supernet import MixedOp

    torch.manual_seed(0)
    net = create_space("nb201").build_supernet(C=4, layers=1)
    net.sampler = GumbelSampler(tau=1.0)
    with torch.no_grad():
        net.alpha_normal[:, NB201_OPS.index("nor_conv_3x3")] += 1.0  # the argmax path: nor_conv_3x3 everywhere
    net.train()
    for _ in range(3):
        net(torch.randn(4, 3, 32, 32))  # running statistics of random paths
    batches = [(torch.randn(6, 3, 32, 32), torch.randint(0, 10, (6,))) for _ in range(3)]
    run = SimpleNamespace(a_loader=_Batches(batches), eval_loader=_Batches(batches), device=torch.device("cpu"))
    accuracy = GdasStrategy(bn_calibration_batches=2).evaluate_supernet(net, run)
    assert 0.0 <= accuracy <= 100.0 and not net.sampler.greedy
    for edge in (m for m in net.modules() if isinstance(m, MixedOp)):
        for name, op in zip(NB201_OPS, edge.ops):
            for bn in (m for m in op.modules() if isinstance(m, torch.nn.BatchNorm2d)):
                # re-estimated on exactly the 2 calibration batches of the argmax path; every other op reset
                assert int(bn.num_batches_tracked) == (2 if name == "nor_conv_3x3" else 0), name
