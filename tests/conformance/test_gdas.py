"""GDAS conforms to its release, D-X-Y/AutoDL-Projects at f46486e21b71ae6459a700be720d7648b5429569
(exps/NAS-Bench-201-algos/GDAS.py, which scripts-search/NASNet-space-search-by-GDAS.sh also runs for the
DARTS space, and xautodl/models/cell_searchs/search_model_gdas_nasnet.py). Tiny supernets, tensors only."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nni_nas_bench.strategies.gdas import GdasStrategy, GumbelSampler, gumbel_hard
from search_spaces import create_space
from search_spaces.supernet import DartsSupernet


def test_one_iteration_steps_the_weights_first_then_alpha_at_the_updated_weights() -> None:
    """GDAS.py:49-55 (w step on the base batch: zero_grad, forward, backward, clip 5, step) precedes
    GDAS.py:64-69 (α step on the arch batch): the α forward sees the weights after their update."""
    torch.manual_seed(0)
    net = DartsSupernet(create_space("darts", n_nodes=2), C=4, layers=3)
    net.sampler = GumbelSampler(tau=10.0)
    strategy = GdasStrategy(channels=4, layers=3)
    weights = dict(net.named_weight_parameters())
    w_opt, a_opt = strategy.make_optimizers(net)
    train = (torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3]))
    valid = (torch.randn(4, 3, 8, 8), torch.tensor([4, 5, 6, 7]))
    probe = net.network.classifier.weight
    before = probe.detach().clone()
    seen: list[tuple[str, torch.Tensor]] = []
    net.register_forward_pre_hook(
        lambda _m, args: seen.append(("w" if args[0] is train[0] else "alpha", probe.detach().clone())))
    alpha_before = [a.detach().clone() for a in net.arch_parameters()]
    strategy.step(net, weights, train, valid, 0.025, w_opt, a_opt, nn.CrossEntropyLoss())
    assert [name for name, _ in seen] == ["w", "alpha"]
    assert torch.equal(seen[0][1], before) and torch.equal(seen[1][1], probe.detach())
    assert not torch.equal(probe.detach(), before)  # the weights did move before α's forward
    assert all(not torch.equal(a, b) for a, b in zip(net.arch_parameters(), alpha_before))


def test_the_temperature_falls_linearly_from_tau_max_to_tau_min_over_the_epochs() -> None:
    """GDAS.py:237-239: ``tau_max - (tau_max - tau_min) * epoch / (total_epoch - 1)``; the scripts pass
    ``--tau_max 10 --tau_min 0.1`` (scripts-search/NASNet-space-search-by-GDAS.sh)."""
    gdas = GdasStrategy(epochs=250)
    assert (gdas.tau_max, gdas.tau_min) == (10.0, 0.1)
    assert [gdas.tau_at(e) for e in (0, 1, 249)] == pytest.approx([10.0, 10.0 - 9.9 / 249, 0.1])


def test_the_sample_is_autodls_hardwts_of_log_softmax_plus_gumbel_over_tau() -> None:
    """search_model_gdas_nasnet.py:164-171: ``probs = softmax((log_softmax(α) + g) / τ)``, ``index = argmax``,
    ``hardwts = one_hot - probs.detach() + probs`` (value one-hot, gradient of probs); g ~ Gumbel(0, 1)
    (``-log(Exp(1))``; ours ``-log(-log U)``, the same law, from the same uniform draws here)."""
    alpha = torch.randn(5, 4, generator=torch.Generator().manual_seed(3), requires_grad=True)
    tau = 0.7
    torch.manual_seed(11)
    hard, index = gumbel_hard(torch.softmax(alpha, -1), tau)
    torch.manual_seed(11)
    g = -torch.log(-torch.log(torch.rand(alpha.shape).clamp_(1e-20, 1.0 - 1e-7)))
    probs = torch.softmax((alpha.log_softmax(-1) + g) / tau, -1)
    one_h = torch.zeros_like(probs).scatter_(-1, probs.argmax(-1, keepdim=True), 1.0)
    reference = one_h - probs.detach() + probs
    assert index == probs.argmax(-1).tolist() and torch.equal(hard.detach(), one_h)
    probe = torch.randn(5, 4)
    ours = torch.autograd.grad((hard * probe).sum(), alpha)[0]
    theirs = torch.autograd.grad((reference * probe).sum(), alpha)[0]
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_every_forward_draws_one_sample_shared_by_all_cells_of_a_type() -> None:
    """search_model_gdas_nasnet.py:182-191: one (hardwts, index) per cell type per forward, used by every
    cell of that type; the w step's and the α step's forwards each draw their own."""
    torch.manual_seed(0)
    net = DartsSupernet(create_space("darts", n_nodes=2), C=4, layers=3)
    draws: list[list[int]] = []
    sampler = GumbelSampler(tau=10.0)

    def recording(weights: torch.Tensor, training: bool) -> tuple[torch.Tensor, list[int]]:
        out, index = sampler(weights, training)
        draws.append(list(index))
        return out, index

    net.sampler = recording
    net(torch.randn(2, 3, 8, 8))
    net(torch.randn(2, 3, 8, 8))
    assert len(draws) == 4  # (normal, reduce) per forward, however many cells of each type there are
