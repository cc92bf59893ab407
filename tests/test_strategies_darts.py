"""DARTS: registry, supernet and genotype derivation, the second-order hypergradient, tiny searches,
the search trial, and the strategy under NNI's own execution engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies import create_strategy, list_strategies
from nni_nas_bench.strategies.darts import RESULT_FILE, finite_difference_hvp, unrolled_alpha_gradient
from search_spaces import create_space
from search_spaces.cells import Cell
from search_spaces.genotype import Genotype
from search_spaces.ops import SepConv
from search_spaces.supernet import DartsSupernet, MixedOp, derive_genotype, edge_offsets, num_edges

TINY = {"epochs": 1, "channels": 4, "layers": 3, "batch_size": 20, "subset": 4, "eval_batch_size": 100}


# ------------------------------------------------------------------------------------ registry
def test_registry_and_settings_errors() -> None:
    assert "darts" in list_strategies()
    with pytest.raises(ConfigError, match="unknown strategy 'dartz'; choose one of: cnas, darts"):
        create_strategy("dartz")
    with pytest.raises(ConfigError, match="bad settings"):
        create_strategy("darts", epoch=3)
    with pytest.raises(ConfigError, match="order must be 1"):
        create_strategy("darts", order=3)
    with pytest.raises(ConfigError, match="layers must be >= 3"):
        create_strategy("darts", layers=2)
    strategy = create_strategy("darts", seed=4)
    assert strategy.settings["epochs"] == 50 and strategy.settings["order"] == 2 and strategy.settings["seed"] == 4
    assert repr(strategy).startswith("DartsStrategy(order=2, epochs=50")


# ------------------------------------------------------------------------------------ supernet
def test_supernet_is_built_from_the_shared_cells_and_ops() -> None:
    space = create_space("darts")
    net = DartsSupernet(space, C=4, layers=3)
    cells = list(net.network.cells)
    assert all(isinstance(c, Cell) for c in cells) and len(cells) == 3
    edges = [e for node in cells[0].edges for e in node]
    assert len(edges) == num_edges(4) == 14 and all(isinstance(e, MixedOp) for e in edges)
    assert [e.row for e in edges] == list(range(14))
    assert isinstance(edges[0].ops[space.candidate_ops.index("sep_conv_3x3")], SepConv)
    # no learnable BN scale anywhere in a mixed edge, and α is not among the weights
    assert not any(isinstance(m, nn.BatchNorm2d) and m.affine for e in edges for m in e.modules())
    assert all(p is not net.alpha_normal and p is not net.alpha_reduce for p in net.weight_parameters())
    assert net.alpha_normal.shape == (14, 8)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def _hand_set(space, wanted: dict[int, list[tuple[str, int]]], none_rows: tuple[int, ...] = ()) -> torch.Tensor:
    """Weights where node n's wanted edges carry their op at 0.5 and all else 0.01; ``none`` rows at 0.9."""
    ops = space.candidate_ops
    w = torch.full((num_edges(space.n_nodes), len(ops)), 0.01)
    offsets = edge_offsets(space.n_nodes)
    for node, edges in wanted.items():
        for strength, (op, src) in zip((0.5, 0.4), edges):
            w[offsets[node] + src, ops.index(op)] = strength
    for row in none_rows:
        w[row, ops.index("none")] = 0.9  # 'none' never wins, however strong
    return w


def test_genotype_derivation_on_hand_set_alpha() -> None:
    space = create_space("darts")
    normal = {0: [("sep_conv_3x3", 1), ("skip_connect", 0)], 1: [("dil_conv_5x5", 2), ("max_pool_3x3", 0)],
              2: [("sep_conv_5x5", 3), ("avg_pool_3x3", 1)], 3: [("dil_conv_3x3", 4), ("sep_conv_3x3", 0)]}
    reduce = {n: [("max_pool_3x3", 0), ("avg_pool_3x3", 1)] for n in range(4)}
    # rows of node 3's input 1 and node 2's input 0: 'none' dominates but must be ignored
    offsets = edge_offsets(4)
    w_normal = _hand_set(space, normal, none_rows=(offsets[3] + 1, offsets[2] + 0))
    w_reduce = _hand_set(space, reduce)
    expected = Genotype(
        normal=[e for n in range(4) for e in sorted(normal[n], key=lambda e: e[1])], normal_concat=range(2, 6),
        reduce=[e for n in range(4) for e in sorted(reduce[n], key=lambda e: e[1])], reduce_concat=range(2, 6),
    )
    assert derive_genotype(space, w_normal, w_reduce) == expected

    # the supernet derives the same from α whose softmax has the same order
    net = DartsSupernet(space, C=4, layers=3)
    with torch.no_grad():
        net.alpha_normal.copy_(torch.log(w_normal))
        net.alpha_reduce.copy_(torch.log(w_reduce))
    assert net.genotype() == expected
    assert space.build_network(net.genotype(), C=4, layers=3)(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_genotype_derivation_is_stable_on_ties_and_checks_shape() -> None:
    space = create_space("darts", n_nodes=2)
    flat = torch.full((num_edges(2), 8), 1 / 8)
    g = derive_genotype(space, flat, flat)
    # all equal: lowest inputs, first non-'none' op
    assert g.normal == (("max_pool_3x3", 0), ("max_pool_3x3", 1), ("max_pool_3x3", 0), ("max_pool_3x3", 1))
    with pytest.raises(ValueError, match="weights must be 5×8"):
        derive_genotype(space, flat[:4], flat)


# ---------------------------------------------------------------------------- second order
class _Tiny(nn.Module):
    """A smooth model with weights and α, small enough for exact second derivatives in float64."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w1 = nn.Parameter(torch.randn(5, 6, generator=g, dtype=torch.float64))
        self.w2 = nn.Parameter(torch.randn(6, 3, generator=g, dtype=torch.float64))
        self.alpha = nn.Parameter(torch.randn(2, generator=g, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.softmax(self.alpha, 0)
        h = x @ self.w1
        return (a[0] * torch.tanh(h) + a[1] * torch.sin(h)) @ self.w2


def _batches(seed: int) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    x, xv = torch.randn(8, 5, generator=g, dtype=torch.float64), torch.randn(8, 5, generator=g, dtype=torch.float64)
    return (x, torch.randint(0, 3, (8,), generator=g)), (xv, torch.randint(0, 3, (8,), generator=g))


def test_finite_difference_hvp_divides_by_two_epsilon() -> None:
    model = _Tiny()
    weights = [model.w1, model.w2]
    (x, y), _ = _batches(1)
    loss = lambda: nn.functional.cross_entropy(model(x), y)  # noqa: E731
    g = torch.Generator().manual_seed(2)
    v = [torch.randn(w.shape, generator=g, dtype=torch.float64) for w in weights]

    grads = torch.autograd.grad(loss(), weights, create_graph=True)
    exact = torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(grads, v)), [model.alpha])[0]

    def alpha_grad_at(ws: list[torch.Tensor]) -> list[torch.Tensor]:
        saved = [w.detach().clone() for w in weights]
        with torch.no_grad():
            for w, new in zip(weights, ws):
                w.copy_(new)
        out = list(torch.autograd.grad(loss(), [model.alpha]))
        with torch.no_grad():
            for w, old in zip(weights, saved):
                w.copy_(old)
        return out

    approx = finite_difference_hvp(alpha_grad_at, weights, v)[0]
    torch.testing.assert_close(approx, exact, rtol=1e-3, atol=1e-8)  # central differences: O(eps²)
    # the original benchmark's "/ 2 * eps" is off by a factor eps² (eps = 0.01 / ||v||): far from exact
    eps = 0.01 / torch.sqrt(sum((vi**2).sum() for vi in v))
    assert not torch.allclose(approx * eps**2, exact, rtol=1e-2)


def test_unrolled_hypergradient_matches_autograd_through_the_virtual_step() -> None:
    model = _Tiny()
    weights = {"w1": model.w1, "w2": model.w2}
    train, valid = _batches(3)
    lr, wd, momentum = 0.1, 3e-4, 0.9
    g = torch.Generator().manual_seed(4)
    buffers = {n: torch.randn(w.shape, generator=g, dtype=torch.float64) for n, w in weights.items()}

    def loss_at(ws: dict[str, torch.Tensor], batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(torch.func.functional_call(model, ws, (x,)), y)

    approx = unrolled_alpha_gradient(loss_at, weights, [model.alpha], train, valid, lr=lr, weight_decay=wd,
                                     momentum=momentum, momentum_buffers=buffers)[0]
    # exact: differentiate L_val(w'(α), α) through the virtual SGD step
    grads = torch.autograd.grad(loss_at(weights, train), list(weights.values()), create_graph=True)
    virtual = {n: w - lr * (momentum * buffers[n] + gi + wd * w) for (n, w), gi in zip(weights.items(), grads)}
    exact = torch.autograd.grad(loss_at(virtual, valid), [model.alpha])[0]
    torch.testing.assert_close(approx, exact, rtol=1e-3, atol=1e-8)  # central differences: O(eps²)
    first_order = torch.autograd.grad(loss_at(weights, valid), [model.alpha])[0]
    assert not torch.allclose(first_order, exact, rtol=1e-3)  # the correction term is not negligible here


def test_strategy_second_order_step_on_a_supernet_matches_autograd() -> None:
    """The strategy's own α gradient (functional calls on the real supernet) against exact unrolling.

    ReLU and max-pool kinks make the supernet's finite difference at DARTS's r = 0.01 differ by a few
    percent; with r = 1e-4 the approximation must be exact to float64 noise (seen: 5e-10 relative).
    """
    space = create_space("darts", n_nodes=2)
    torch.manual_seed(0)
    net = DartsSupernet(space, C=4, layers=3).double()
    net.eval()  # fixed BN statistics: the supernet is then smooth up to ReLU / max-pool kinks
    g = torch.Generator().manual_seed(5)
    train = (torch.randn(4, 3, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 10, (4,), generator=g))
    valid = (torch.randn(4, 3, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 10, (4,), generator=g))
    strategy = create_strategy("darts", order=2, w_weight_decay=3e-4, w_momentum=0.9, unroll_r=1e-4)
    weights = dict(net.named_weight_parameters())
    w_opt = torch.optim.SGD(list(weights.values()), lr=0.5, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    approx = strategy.alpha_gradient(net, weights, train, valid, 0.5, w_opt, criterion)

    def loss_at(ws: dict[str, torch.Tensor], batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return criterion(torch.func.functional_call(net, ws, (batch[0],)), batch[1])

    grads = torch.autograd.grad(loss_at(weights, train), list(weights.values()), create_graph=True)
    virtual = {n: w - 0.5 * (gi + 3e-4 * w) for (n, w), gi in zip(weights.items(), grads)}
    exact = torch.autograd.grad(loss_at(virtual, valid), net.arch_parameters())
    first_order = torch.autograd.grad(loss_at(weights, valid), net.arch_parameters())
    for a, e, f in zip(approx, exact, first_order):
        assert (a - e).abs().max() < 1e-6 * e.abs().max()
        assert (f - e).abs().max() > 1e-2 * e.abs().max()  # the second-order term matters here


# ---------------------------------------------------------------------------------- searches
def test_tiny_second_order_search_returns_a_valid_genotype(synthetic_root: Path, cache_dir: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNB_CACHE_DIR", str(cache_dir))
    space = create_space("darts")
    rng_before = torch.get_rng_state()
    logs: list[str] = []
    epochs: list[dict] = []
    strategy = create_strategy("darts", order=2, seed=0, **TINY)
    result = strategy.search(space, data_root=synthetic_root, dataset="cifar10", device="cpu", output_dir=tmp_path,
                             log=logs.append, report_epoch=epochs.append)
    assert space.validate(result.genotype) is result.genotype
    assert 0 <= result.valid_acc <= 100 and result.search_seconds > 0
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's RNG is untouched
    assert len(result.alpha_history) == 1 and epochs[0]["default"] == result.valid_acc
    saved = json.loads((tmp_path / RESULT_FILE).read_text())
    assert saved["settings"]["order"] == 2 and saved["candidate_ops"][0] == "none"
    # the result is written on its own: the skip-connect cap may change the last epoch's genotype
    assert saved["genotype"] == result.genotype.to_text()
    space.parse(saved["epochs"][0]["genotype"])
    assert len(saved["epochs"][0]["alpha"]["normal"]) == 14
    assert strategy.state_dict()["result"]["genotype"] == result.genotype.to_text()
    assert any("darts epoch 1/1" in line for line in logs)


def test_same_seed_same_search(synthetic_root: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNB_CACHE_DIR", str(cache_dir))
    space = create_space("darts", n_nodes=3)
    kwargs = {"data_root": synthetic_root, "dataset": "cifar10", "device": "cpu", "log": lambda _: None}
    settings = {**TINY, "order": 1, "alpha_lr": 0.05}  # a large α step so that seeds visibly differ
    a = create_strategy("darts", seed=1, **settings).search(space, **kwargs)
    b = create_strategy("darts", seed=1, **settings).search(space, **kwargs)
    c = create_strategy("darts", seed=2, **settings).search(space, **kwargs)
    assert a.genotype == b.genotype
    assert a.alpha_history[0]["alpha"] == b.alpha_history[0]["alpha"]
    assert a.alpha_history[0]["alpha"] != c.alpha_history[0]["alpha"]


def test_search_trial_role(synthetic_root: Path, cache_dir: Path, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from nni_nas_bench.trial import main

    monkeypatch.setenv("NNB_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("NNI_OUTPUT_DIR", str(tmp_path))  # where a trial's files go inside NNI
    monkeypatch.setenv("NNB_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))  # not the user's cache
    params = {"role": "search", "method": "darts", "dataset": "cifar10", "space": "darts",
              "space_args": {"n_nodes": 2}, "search_seed": 7, "search": {**TINY, "order": 1}}
    assert main(["--params", json.dumps(params), "--data-root", str(synthetic_root), "--device", "cpu"]) == 0
    final = json.loads(capsys.readouterr().out.split("final: ")[-1])
    assert final["role"] == "search" and final["method"] == "darts" and final["search_seed"] == 7
    assert create_space("darts", n_nodes=2).parse(final["genotype"])
    assert json.loads(final["search"])["seed"] == 7 and final["search_seconds"] > 0 and final["code_version"]
    assert (tmp_path / RESULT_FILE).exists()
    # per-epoch search checkpoints, keyed by the parameters (a restarted trial has a new output folder)
    assert [p.name for p in (tmp_path / "checkpoints").glob("standalone-*/search-search.pt")] == ["search-search.pt"]
    # the stand-in of a failed search ends FAILED with the reason; a seed inside the settings is refused
    stand_in = {"role": "searched", "search_failed": "search seed 3 failed"}
    assert main(["--params", json.dumps(stand_in), "--data-root", str(synthetic_root)]) == 3
    assert "nothing to train: search seed 3 failed" in capsys.readouterr().err
    bad = {**params, "search": {"seed": 1}}
    assert main(["--params", json.dumps(bad), "--data-root", str(synthetic_root)]) == 2


def test_strategy_runs_under_nni_execution_engine(synthetic_root: Path, cache_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """NNI's own API: strategy(model_space, engine) searches, then the engine evaluates the found child."""
    import nni
    from nni.nas.evaluator import FunctionalEvaluator
    from nni.nas.execution import SequentialExecutionEngine
    from nni.nas.space import RawFormatModelSpace

    from search_spaces.model_space import CellModelSpace

    monkeypatch.setenv("NNB_CACHE_DIR", str(cache_dir))
    evaluated: list[Genotype] = []

    def evaluate(model: CellModelSpace) -> None:
        evaluated.append(model.genotype)
        nni.report_final_result(float(sum(p.numel() for p in model.parameters())))

    model_space = RawFormatModelSpace.from_model(CellModelSpace("darts", {"n_nodes": 2}, C=4, layers=3),
                                                 FunctionalEvaluator(evaluate))
    strategy = create_strategy("darts", order=1, seed=0, dataset="cifar10", data_root=synthetic_root, device="cpu",
                               **TINY)
    strategy(model_space, SequentialExecutionEngine())
    assert evaluated == [strategy.result.genotype]
    best = next(strategy.list_models())
    assert best.sample == create_space("darts", n_nodes=2).to_sample(strategy.result.genotype)
