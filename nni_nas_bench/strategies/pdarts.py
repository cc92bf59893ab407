"""PDARTS: progressive DARTS (Chen, Xie, Wu, Tian, ICCV 2019), as benchmarked by Yang et al. 2020.

Reference: the benchmark's fork, antoyang/NAS-Benchmark ``PDARTS/train_search.py`` and its README's
search commands (docs/fidelity.md lists every setting against it). The search runs in stages whose
supernets grow deeper while each edge mixes fewer ops: 5, 11, then 17 cells on the CIFARs, 8, 8, 8 on
the 224-px datasets (the README's ``--layers 8 --add_layers 0 --add_layers 0``; their experiment YAMLs
set ``stage_layers``); 8 ops per edge in stage 1, the 5 strongest of them in stage 2, the 3 strongest of
those in stage 3, and one in the end. Each stage trains a fresh supernet (new weights, new α) over the
ops that survived, first order, 25 epochs of which the first 10 update the weights only, with cutout 16
(the fork's ``--cutout`` is always on) and the α gradient clipped to norm 5 like the weights'. A dropout
behind every identity skip-connect (not the strided FactorizedReduce of a reduction edge, as the fork's
``isinstance(op, Identity)``) keeps the parameter-free skip from winning early (0, 0.4, 0.7 by stage;
0.1, 0.2, 0.3 on CIFAR100); it decays within a stage (:func:`skip_dropout_rate`). The final normal cell
keeps at most 2 skip-connects: the weakest skip is replaced by its edge's next-best op, and the node's
inputs are re-derived, until the limit holds (:func:`limit_skip_connects`).

Pruning between stages ranks an edge's ops by their softmax weight; ``none`` competes like any op until
the end, where the genotype (DARTS's derivation) never picks it. Everything else is DARTS's search
(:class:`~nni_nas_bench.strategies.darts.DartsStrategy`): the supernet is the shared one, built with
per-edge op subsets, and the epoch loop, history, reporting and checkpoints are inherited.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies.checks import check_number
from nni_nas_bench.strategies.darts import Batch, DartsStrategy, SearchRun
from search_spaces.genotype import Genotype
from search_spaces.supernet import EdgeOps, derive_genotype, edge_offsets


def skip_dropout_rate(p: float, epoch: int, epochs: int, weights_only_epochs: int, decay: float = 0.2) -> float:
    """The skip-connect dropout of ``epoch`` (0-based) in a stage with base rate ``p``.

    From the first α step on it is p·exp(−decay·(epoch − weights_only_epochs)) (SPEC; decay 0.2). Before
    that the formula would exceed p (and 1), so the weights-only epochs use PDARTS's code's linear
    p·(epochs − epoch − 1)/epochs.
    """
    if epoch < weights_only_epochs:
        return p * (epochs - epoch - 1) / epochs
    return p * math.exp(-decay * (epoch - weights_only_epochs))


def prune_edge_ops(edge_ops: EdgeOps, candidate_ops: Sequence[str], weights: dict[str, torch.Tensor],
                   keep: int) -> dict[str, list[list[str]]]:
    """Each edge keeps its ``keep`` ops with the largest mixing weight (ties: the earlier candidate)."""
    pruned = {}
    for cell, rows in edge_ops.items():
        w = weights[cell].detach().cpu().double().numpy()
        cell_rows = []
        for row, ops in enumerate(rows):
            columns = [candidate_ops.index(op) for op in ops]
            order = sorted(columns, key=lambda c: (-w[row, c], c))[:keep]
            cell_rows.append([candidate_ops[c] for c in sorted(order)])
        pruned[cell] = cell_rows
    return pruned


def clip_total_norm(grads: Sequence[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """``grads`` scaled as ``torch.nn.utils.clip_grad_norm_`` scales them: by max_norm / (‖g‖ + 1e-6) if below 1.

    PDARTS clips the α gradient (both cells' α together) before each α step; ``max_norm`` <= 0 leaves it.
    """
    if max_norm <= 0:
        return list(grads)
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.detach()) for g in grads]))
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    return [g * scale for g in grads]


def limit_skip_connects(space: Any, normal: torch.Tensor, reduce: torch.Tensor, max_skip: int) -> Genotype:
    """DARTS's genotype of the final weights with at most ``max_skip`` skip-connects in the normal cell.

    While there are too many, the skip-connect with the smallest weight among the chosen edges gets
    weight 0, and the genotype is derived again: that edge then carries its next-best op, or loses its
    place to a stronger input of the same node (PDARTS's rule).
    """
    skip = list(space.candidate_ops).index("skip_connect")
    normal = normal.detach().clone().double()
    offsets = edge_offsets(space.n_nodes)
    while True:
        genotype = derive_genotype(space, normal, reduce)
        rows = [offsets[i // 2] + src for i, (op, src) in enumerate(genotype.normal) if op == "skip_connect"]
        if len(rows) <= max_skip:
            return genotype
        weakest = min(rows, key=lambda r: (normal[r, skip].item(), r))
        normal[weakest, skip] = 0.0


class PdartsStrategy(DartsStrategy):
    """PDARTS with SPEC's search protocol; every DARTS setting can still be given.

    ``stage_layers``: cells per stage; ``keep_ops``: ops each edge keeps after every stage but the last
    (the last keeps one: the genotype); ``skip_dropout``: base skip-connect dropout per stage;
    ``stage_epochs`` per stage, of which the first ``weights_only_epochs`` skip the α step;
    ``max_skip``: skip-connects allowed in the final normal cell; ``alpha_grad_clip``: the α gradient's
    norm limit (0 = none). ``w_lr_min`` defaults to 0 (PDARTS's code anneals the weights' learning rate
    to 0) and ``cutout`` to 16 (the benchmark's fork always searches with cutout 16).
    """

    # A stage's epochs and layers replace DARTS's epochs and layers (self.epochs holds the epochs per stage).
    setting_names = (*(n for n in DartsStrategy.setting_names if n not in ("epochs", "layers")), "stage_epochs",
                     "weights_only_epochs", "stage_layers", "keep_ops", "skip_dropout", "skip_dropout_decay",
                     "max_skip", "alpha_grad_clip")
    setting_attributes: ClassVar[dict[str, str]] = {"stage_epochs": "epochs"}
    repr_names = ("stage_layers", "keep_ops", "skip_dropout", "stage_epochs", "channels", "batch_size", "seed")

    name = "pdarts"

    def __init__(self, *, stage_epochs: int = 25, weights_only_epochs: int = 10,
                 stage_layers: Sequence[int] = (5, 11, 17), keep_ops: Sequence[int] = (5, 3),
                 skip_dropout: Sequence[float] = (0.0, 0.4, 0.7), skip_dropout_decay: float = 0.2, max_skip: int = 2,
                 order: int = 1, batch_size: int = 96, alpha_lr: float = 6e-4, w_lr_min: float = 0.0,
                 cutout: int = 16, alpha_grad_clip: float = 5.0, **settings: Any):
        layers = list(stage_layers)
        if not layers or any(isinstance(n, bool) or not isinstance(n, int) or n < 3 for n in layers):
            raise ConfigError(f"pdarts.stage_layers must be cell counts >= 3, one per stage, got {stage_layers!r}")
        super().__init__(order=order, batch_size=batch_size, alpha_lr=alpha_lr, w_lr_min=w_lr_min, cutout=cutout,
                         epochs=stage_epochs, layers=max(layers), **settings)
        self.alpha_grad_clip = check_number("pdarts", "alpha_grad_clip", alpha_grad_clip)
        self.stage_layers = layers
        self.keep_ops = list(keep_ops)
        if len(self.keep_ops) != len(layers) - 1 or any(not isinstance(k, int) or k < 1 for k in self.keep_ops):
            raise ConfigError(f"pdarts.keep_ops needs one positive op count per stage but the last "
                              f"({len(layers) - 1}), got {keep_ops!r}")
        if any(b > a for a, b in zip(self.keep_ops, self.keep_ops[1:])):
            raise ConfigError(f"pdarts.keep_ops must not grow from stage to stage, got {keep_ops!r}")
        self.skip_dropout = [float(p) for p in skip_dropout]
        if len(self.skip_dropout) != len(layers) or not all(0 <= p < 1 for p in self.skip_dropout):
            raise ConfigError(f"pdarts.skip_dropout needs one rate in [0, 1) per stage, got {skip_dropout!r}")
        if isinstance(weights_only_epochs, bool) or not isinstance(weights_only_epochs, int) \
                or not 0 <= weights_only_epochs <= stage_epochs:
            raise ConfigError(f"pdarts.weights_only_epochs must be in [0, stage_epochs], got {weights_only_epochs!r}")
        self.weights_only_epochs = weights_only_epochs
        self.skip_dropout_decay = float(skip_dropout_decay)
        if isinstance(max_skip, bool) or not isinstance(max_skip, int) or max_skip < 0:
            raise ConfigError(f"pdarts.max_skip must be an integer >= 0, got {max_skip!r}")
        self.max_skip = max_skip

    def alpha_gradient(self, net: Any, weights: dict[str, torch.Tensor], train_batch: Batch, valid_batch: Batch,
                       lr: float, w_opt: torch.optim.Optimizer, criterion: nn.Module) -> list[torch.Tensor]:
        """DARTS's α gradient, clipped to ``alpha_grad_clip`` (PDARTS clips it before ``optimizer_a.step()``)."""
        grads = super().alpha_gradient(net, weights, train_batch, valid_batch, lr, w_opt, criterion)
        return clip_total_norm(grads, self.alpha_grad_clip)

    def _search(self, run: SearchRun) -> tuple[Genotype, float]:
        if "skip_connect" not in run.space.candidate_ops:
            raise ConfigError(f"PDARTS limits skip-connects, but the space has none: {run.space}")
        edge_ops: EdgeOps | None = None
        last = len(self.stage_layers) - 1
        for stage, (layers, rate) in enumerate(zip(self.stage_layers, self.skip_dropout)):
            net = self.build_supernet(run, layers=layers, edge_ops=edge_ops, skip_dropout=True, stage=stage)

            def schedule(net: Any, epoch: int, rate: float = rate) -> None:
                net.set_skip_dropout(skip_dropout_rate(rate, epoch, self.epochs, self.weights_only_epochs,
                                                       self.skip_dropout_decay))

            rows = self.train_supernet(net, run, epochs=self.epochs, phase=f"stage{stage + 1}",
                                       alpha_from=self.weights_only_epochs, before_epoch=schedule)
            weights = net.alpha_weights()
            if stage < last:
                edge_ops = prune_edge_ops(net.edge_ops, run.space.candidate_ops, weights, self.keep_ops[stage])
                run.log(f"pdarts: stage {stage + 1} done, {self.keep_ops[stage]} ops per edge, e.g. normal edge 0: "
                        f"{edge_ops['normal'][0]}")
        genotype = limit_skip_connects(run.space, weights["normal"], weights["reduce"], self.max_skip)
        rows[-1]["genotype_skip_limited"] = genotype.to_text()
        self._save(run)
        return genotype, rows[-1]["valid_acc"]

