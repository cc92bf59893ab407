"""GDAS: gradient-based search using a differentiable architecture sampler (Dong & Yang, CVPR 2019,
"Searching for a Robust Neural Architecture in Four GPU Hours").

DARTS computes every op of every edge in every step; GDAS samples ONE op per edge and computes only
that one, which is its speed point. The sample is a Gumbel-softmax draw over the edge's α:

    soft = softmax((log softmax(α) + g) / τ),  g ~ Gumbel(0, 1) per op,   k = argmax(soft),
    weight = one_hot(k) + (soft − stop_gradient(soft))

so the forward pass sees exactly ``1 · op_k(x)`` (the weight is 1.0 to the bit) while the backward pass
has the soft weight's gradient: ∂L/∂α = ⟨∂L/∂out, op_k(x)⟩ · ∂soft_k/∂α (straight-through). One sample
per forward is shared by every cell, as in GDAS. The temperature τ falls linearly from ``tau_max`` = 10 in
the first epoch to ``tau_min`` = 0.1 in the last (the paper's values): early samples are near uniform,
late ones follow α.

Everything else is this project's DARTS, inherited (the supernet, data, optimizers, epoch loop, history,
checkpoints), except the order within one iteration: as in AutoDL's ``search_func``
(exps/NAS-Bench-201-algos/GDAS.py:49-69) the weights step first on a batch of the training half, then α
steps on a batch of the validation half at the updated weights (:meth:`GdasStrategy.step`), first order only
(GDAS has no unrolled step). Evaluation after each epoch runs every edge's strongest op
(no noise), so the reported validation accuracy is that of the current argmax path on the shared
weights. As for ENAS's sampled paths, the BN running statistics of weights trained on random paths
describe none of them, so they are first re-estimated for that path on ``bn_calibration_batches``
shuffled validation batches (:func:`~nni_nas_bench.strategies.weight_sharing.recalibrate_bn`; without it
the reported accuracy sat at chance on real CIFAR-10). The found cell is DARTS's derivation of α
(NB201: the strongest op of every edge, ``none`` included). The Gumbel noise comes from the search's
torch RNG, which the per-epoch checkpoints save, so a resumed search draws the same samples as an
uninterrupted one.

AutoDL's DARTS-space run (scripts-search/NASNet-space-search-by-GDAS.sh) trains 250 epochs, batch 256,
w: SGD Nesterov, wd 5e-4 (configs/search-opts/GDAS-NASNet-CIFAR.config). SPEC has no GDAS protocol, and
the benchmark compares methods under one search protocol, so the defaults are DARTS's search protocol
(50 epochs, batch 64, 16 channels, 8 cells; w: SGD 0.025 cosine → 0.001, momentum 0.9, wd 3e-4, clip 5;
α: Adam 3e-4, betas (0.5, 0.999), wd 1e-3) with GDAS's τ schedule (10 → 0.1) and 10 BN calibration
batches; all but Nesterov are settings (``experiments/*/gdas.yml`` state theirs; docs/fidelity.md lists
the differences). It searches what DARTS searches: the DARTS cell spaces and NB201.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies.checks import check_int, check_number
from nni_nas_bench.strategies.darts import Batch, DartsStrategy, SearchRun
from search_spaces.genotype import Genotype


def gumbel_hard(weights: torch.Tensor, tau: float) -> tuple[torch.Tensor, list[int]]:
    """One straight-through Gumbel-softmax sample per row of ``weights`` (mixing probabilities, edges × ops).

    Returns (one-hot rows carrying the soft sample's gradient, the sampled column of every row). The
    noise is drawn on the CPU from torch's global RNG (a few dozen numbers; the same on every device).
    Columns with probability 0 (ops an edge does not hold) are never sampled.
    """
    uniform = torch.rand(weights.shape, dtype=weights.dtype).clamp_(1e-20, 1.0 - 1e-7).to(weights.device)
    gumbel = -torch.log(-torch.log(uniform))
    logits = torch.log(weights.clamp_min(1e-30))  # = log softmax(α): the same sample as from α itself
    soft = torch.softmax((logits + gumbel) / tau, dim=-1)
    index = soft.argmax(dim=-1)
    hard = torch.nn.functional.one_hot(index, weights.shape[-1]).to(soft.dtype)
    return hard + (soft - soft.detach()), index.tolist()


class GumbelSampler:
    """A supernet ``sampler`` (see :class:`~search_spaces.supernet.EdgeWeights`): GDAS's sample in training,
    the strongest op of every edge (weight 1, no noise) in evaluation or while ``greedy`` is set."""

    def __init__(self, tau: float):
        self.tau = float(tau)
        self.greedy = False

    def __call__(self, weights: torch.Tensor, training: bool) -> tuple[torch.Tensor, Sequence[int]]:
        if training and not self.greedy:
            return gumbel_hard(weights, self.tau)
        index = weights.argmax(dim=-1)
        return torch.nn.functional.one_hot(index, weights.shape[-1]).to(weights.dtype), index.tolist()


class GdasStrategy(DartsStrategy):
    """GDAS (see the module docstring): DARTS's settings (first order only) plus the τ schedule."""

    setting_names = (*DartsStrategy.setting_names, "tau_max", "tau_min", "bn_calibration_batches")
    repr_names = (*DartsStrategy.repr_names, "tau_max", "tau_min")

    name = "gdas"

    def __init__(self, *, tau_max: float = 10.0, tau_min: float = 0.1, bn_calibration_batches: int = 10,
                 order: int = 1, **settings: Any):
        if order != 1:
            raise ConfigError(f"gdas.order must be 1: GDAS updates α with first-order gradients, got {order!r}")
        super().__init__(order=1, **settings)
        self.bn_calibration_batches = check_int("gdas", "bn_calibration_batches", bn_calibration_batches)
        self.tau_max = check_number("gdas", "tau_max", tau_max, 1e-6)
        self.tau_min = check_number("gdas", "tau_min", tau_min, 1e-6)
        if self.tau_min > self.tau_max:
            raise ConfigError(f"gdas.tau_min ({tau_min}) must not exceed gdas.tau_max ({tau_max})")

    def tau_at(self, epoch: int) -> float:
        """τ of epoch ``epoch`` (0-based): ``tau_max`` in the first epoch, linearly to ``tau_min`` in the last."""
        return self.tau_max - (self.tau_max - self.tau_min) * epoch / max(self.epochs - 1, 1)

    def evaluate_supernet(self, net: Any, run: SearchRun) -> float:
        """The argmax path's validation accuracy, its BN statistics re-estimated first (module docstring)."""
        from nni_nas_bench.strategies.weight_sharing import endless, recalibrate_bn

        net.sampler.greedy = True
        try:
            recalibrate_bn(net, net, endless(run.a_loader), self.bn_calibration_batches)
        finally:
            net.sampler.greedy = False
        return super().evaluate_supernet(net, run)

    def step(self, net: Any, weights: dict[str, torch.Tensor], train_batch: Batch, valid_batch: Batch | None,
             lr: float, w_opt: torch.optim.Optimizer, a_opt: torch.optim.Optimizer,
             criterion: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """One GDAS iteration: the w step on ``train_batch``, THEN the α step on ``valid_batch`` (skipped when
        None), each forward with its own Gumbel sample (AutoDL's ``search_func``: the weights are updated
        first, the α gradient is taken at the updated weights; DARTS's step is the other way round)."""
        alphas = net.arch_parameters()
        logits, loss = self.w_step(net, weights, alphas, train_batch, w_opt, criterion)  # α's own step follows
        if valid_batch is not None:
            grads = self.alpha_gradient(net, weights, train_batch, valid_batch, lr, w_opt, criterion)
            for a, g in zip(alphas, grads):
                a.grad = g
            a_opt.step()
        return logits, loss

    def _search(self, run: SearchRun) -> tuple[Genotype, float]:
        net = self.build_supernet(run, layers=self.layers)
        sampler = GumbelSampler(self.tau_max)
        net.sampler = sampler

        def anneal(_net: Any, epoch: int) -> None:
            sampler.tau = self.tau_at(epoch)

        rows = self.train_supernet(net, run, epochs=self.epochs, before_epoch=anneal)
        for row in rows:
            row["tau"] = self.tau_at(row["phase_epoch"] - 1)
        return run.space.parse(rows[-1]["genotype"]), rows[-1]["valid_acc"]
