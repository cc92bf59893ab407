"""DARTS-PT conforms to its release, ruocwang/darts-pt at 4ec3149dea0d77efd8e4c118f578b454dad5e0ac.

Tiny supernets (4 channels, 3 cells, 8×8 images) and in-memory batches: each test runs in about a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies.darts import SearchRun, cosine_lr
from nni_nas_bench.strategies.darts_pt import DartsPtStrategy, tuning_schedule
from search_spaces import create_space
from search_spaces.supernet import edge_offsets

TINY = {"channels": 4, "layers": 3, "seed": 0}


class Batches:
    """A loader over fixed batches that records the epochs it is set to (the strategy's loaders' interface)."""

    def __init__(self, n: int = 1, size: int = 4):
        g = torch.Generator().manual_seed(0)
        # an offset far from BN's initial running mean 0: batch and running statistics differ
        self.batches = [(3.0 + torch.randn(size, 3, 8, 8, generator=g), torch.arange(size) % 10) for _ in range(n)]
        self.epochs: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _run(space: Any) -> SearchRun:
    loader = Batches()
    return SearchRun(space, SimpleNamespace(image_size=32, num_classes=10, name="cifar10"), torch.device("cpu"),
                     loader, loader, loader, None, None, lambda _: None, None)


def _supernet(strategy: DartsPtStrategy, space: Any) -> Any:
    run = _run(space)
    return strategy.build_supernet(run, layers=3, edge_ops=strategy.supernet_ops(space)), run


def test_the_darts_supernet_has_no_none_op_and_nb201s_keeps_it() -> None:
    """sota/cnn/spaces.py:80-92 (PRIMITIVES of ``s5`` start with ``#'none'``, commented out) and
    exp_scripts/darts-proj-sota.sh:8 (``space=s5``); NB201's search keeps it: nasbench201/cell_operations.py:22."""
    net, _ = _supernet(DartsPtStrategy(**TINY), create_space("darts", n_nodes=2))
    assert all("none" not in ops for cell in ("normal", "reduce") for ops in net.edge_ops[cell])
    assert [op for op in net.edge_ops["normal"][0]] == ["max_pool_3x3", "avg_pool_3x3", "skip_connect",
                                                         "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]
    assert float(net.alpha_weights()["normal"][:, net.candidate_ops.index("none")].abs().max()) == 0.0
    kept, _ = _supernet(DartsPtStrategy(drop_none=False, **TINY), create_space("darts", n_nodes=2))
    assert "none" in kept.edge_ops["normal"][0]  # the suite's DARTS supernet: one keyword away
    nb201, _ = _supernet(DartsPtStrategy(**TINY), create_space("nb201"))
    assert "none" in nb201.edge_ops["normal"][0]
    with pytest.raises(ConfigError, match="drop_none"):
        DartsPtStrategy(drop_none=True, **TINY).supernet_ops(create_space("nb201"))


def test_the_perturbed_accuracy_is_measured_with_bn_in_train_mode() -> None:
    """sota/cnn/projection.py:48 (``infer(..., _eval=False)``) and sota/cnn/train_search.py:404
    (``model.eval() if _eval else model.train()``): batch statistics, not running ones."""
    strategy = DartsPtStrategy(**TINY)
    net, run = _supernet(strategy, create_space("darts", n_nodes=2))
    net.eval()
    modes: list[bool] = []
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    bns[0].register_forward_pre_hook(lambda m, _: modes.append(m.training))
    accuracy = strategy.perturbation_accuracy(net, run, 123)
    assert modes == [True] and run.a_loader.epochs == [123]  # the α loader's batches, in train mode
    x, y = run.a_loader.batches[0]
    net.train()
    with torch.no_grad():
        assert accuracy == pytest.approx(100.0 * float((net(x).argmax(1) == y).float().mean()))


def test_each_op_projection_decides_one_normal_and_one_reduction_edge() -> None:
    """sota/cnn/projection.py:169-172: project_op for 'normal', then for 'reduce', each on a random remaining
    edge (projection.py:23-26), keeping the op whose masking gives the lowest accuracy (:30-52, strict <: the
    first such op); topology (:178-181) decides one node with more than two inputs per cell."""
    strategy = DartsPtStrategy(**TINY)
    net, run = _supernet(strategy, create_space("darts", n_nodes=2))
    out = strategy.project(net, run, 0)
    assert [d["cell"] for d in out] == ["normal", "reduce"]
    for cell, decision in zip(("normal", "reduce"), out):
        fixed = getattr(net, f"fixed_{cell}")
        decided = [r for r in range(5) if not torch.isnan(fixed[r]).all()]
        assert decided == [decision["edge"]] and sorted(decision["masked_acc"]) == sorted(net.edge_ops[cell][0])
        best = min(decision["masked_acc"].values())
        first = next(op for op in net.edge_ops[cell][0] if decision["masked_acc"][op] == best)
        assert decision["op"] == first and float(fixed[decision["edge"], net.candidate_ops.index(first)]) == 1.0
    for cell in ("normal", "reduce"):  # the other op decisions, without measuring (the test above did)
        for row in range(5):
            net.set_edge_weights(cell, row, torch.nn.functional.one_hot(torch.tensor(3), 8).float())
    topology = strategy.project(net, run, 5)  # node 3 (0-based 1): inputs 0, 1, 2, two kept per cell
    assert [(d["cell"], d["node"], len(d["inputs"])) for d in topology] == [("normal", 3, 2), ("reduce", 3, 2)]
    first_row = edge_offsets(2)[1]
    for cell in ("normal", "reduce"):
        cut = [s for s in range(3) if float(getattr(net, f"fixed_{cell}")[first_row + s].abs().sum()) == 0]
        assert len(cut) == 1


def test_the_tuning_schedule_is_the_references() -> None:
    """sota/cnn/projection.py:126-128 (``num_projs = num_edges + len(nid2eids) - 1``, ``tune_epochs =
    proj_intv · num_projs + 1``), :161 (decide when ``epoch % proj_intv == 0 or epoch == tune_epochs - 1``),
    model_search_darts_proj.py:22 (three nodes with input choices), exp_scripts/darts-proj-sota.sh:37
    (``--proj_intv 5``); NB201: nasbench201/projection.py:78 (``proj_intv · (num_edges - 1)``), :84."""
    net, _ = _supernet(DartsPtStrategy(**TINY), create_space("darts"))
    assert DartsPtStrategy.count_decisions(net) == 14 + 3
    assert tuning_schedule(17, 5, True) == (81, list(range(0, 81, 5)))
    nb201, _ = _supernet(DartsPtStrategy(**TINY), create_space("nb201"))
    assert DartsPtStrategy.count_decisions(nb201) == 6
    assert tuning_schedule(6, 5, False) == (25, [0, 5, 10, 15, 20, 24])
    assert DartsPtStrategy().finetune_epochs == 5
    with pytest.raises(ConfigError, match="finetune_epochs"):
        tuning_schedule(6, 1, False)  # the reference would leave an NB201 edge undecided


def test_tuning_is_one_phase_with_alpha_steps_and_a_constant_lr_of_a_tenth(monkeypatch: pytest.MonkeyPatch) -> None:
    """sota/cnn/projection.py:133-136 (one reset SGD at ``learning_rate / 10`` = 0.0025; its cosine scheduler
    is never stepped in :157-239, so the rate stays 0.0025), :197-200 (``architect.step``: α keeps its Adam
    steps while tuning, the architect built once in train_search.py:253), :161 (decisions at 0, 5, …)."""
    calls: list[dict[str, Any]] = []

    def record(self: DartsPtStrategy, net: Any, run: SearchRun, *, epochs: int, phase: str = "search",
               alpha_from: int = 0, before_epoch: Any = None, lr_range: Any = None) -> list[dict[str, Any]]:
        """Stands in for the epoch loop: the optimizers it would build, the per-epoch hook, one row per epoch."""
        _, a_opt = self.make_optimizers(net)
        if phase == "supernet":  # one α step, so that the Adam state has something to carry
            for a in net.arch_parameters():
                a.grad = torch.ones_like(a)
            a_opt.step()
        calls.append({"phase": phase, "epochs": epochs, "alpha_from": alpha_from, "lr_range": lr_range,
                      "adam_steps": [float(s["step"]) for s in a_opt.state_dict()["state"].values()]})
        rows = []
        for epoch in range(epochs):
            if before_epoch is not None:
                before_epoch(net, epoch)
            rows.append({"epoch": len(run.history) + 1, "phase": phase, "phase_epoch": epoch + 1})
            run.history.append(rows[-1])
        return rows

    monkeypatch.setattr(DartsPtStrategy, "train_supernet", record)
    scores = iter(range(10**6))  # a cheap stand-in measurement (the real one is tested above): all different
    monkeypatch.setattr(DartsPtStrategy, "perturbation_accuracy", lambda *_: float(next(scores) % 7))
    strategy = DartsPtStrategy(**TINY)
    run = _run(create_space("darts", n_nodes=2))
    genotype, _ = strategy._search(run)
    supernet, tune = calls
    assert tune["phase"] == "tune" and tune["epochs"] == 5 * 5 + 1 and tune["alpha_from"] == 0
    assert tune["adam_steps"] == supernet["adam_steps"] == [1.0, 1.0]  # α's optimizer continues
    lr = [cosine_lr(e, tune["epochs"], *tune["lr_range"]) for e in (0, tune["epochs"] - 1)]
    assert lr == pytest.approx([0.0025, 0.0025])
    decided = {row["phase_epoch"] - 1: row["projection"] for row in run.history if "projection" in row}
    assert sorted(decided) == [0, 5, 10, 15, 20, 25]
    assert all([d["cell"] for d in ds] == ["normal", "reduce"] for ds in decided.values())
    assert genotype == run.space.parse(genotype.to_text()) and sum(len(ds) for ds in decided.values()) == 12
    assert run.history[-1]["decisions"] == [d for epoch in sorted(decided) for d in decided[epoch]]
