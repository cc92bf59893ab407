"""Cell machinery shared by every cell-based space: one cell class, one network skeleton.

A :class:`Cell` takes the two previous cells' outputs, preprocesses them to ``C`` channels, computes
each intermediate node as the sum of its incoming edges, and concatenates the chosen nodes. What an
edge *is* comes from a factory: a child network passes one op per edge from its genotype, a supernet
passes mixed ops over all inputs. :class:`CellNetwork` stacks cells with the reductions at n/3 and
2n/3, a CIFAR (32 px) or ImageNet-style (224 px → 28 → 14 → 7) stem, and the auxiliary head at 2n/3.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable

import torch
from torch import nn

from search_spaces.ops import FactorizedReduce, Identity, ReLUConvBN

# (node index, input index, stride) -> the module on that edge
EdgeFactory = Callable[[int, int, int], nn.Module]


def drop_path(x: torch.Tensor, drop_prob: torch.Tensor) -> torch.Tensor:
    """Zero whole samples with probability ``drop_prob`` and rescale the rest (DARTS's DropPath).

    ``drop_prob`` is a 0-d tensor, not a float, so its per-epoch ramp does not change the graph
    (CUDA-graph capture stays valid across epochs).
    """
    keep = 1.0 - drop_prob
    # Scale the small per-sample mask, not the activation: one full-size pass instead of two.
    mask = torch.bernoulli(keep.expand(x.shape[0], 1, 1, 1).to(x.dtype)).div_(keep)
    return x * mask


class Cell(nn.Module):
    """One normal or reduction cell; ``node_inputs[i]`` lists the inputs of intermediate node ``i``."""

    def __init__(self, C_pp: int, C_p: int, C: int, reduction: bool, reduction_prev: bool,
                 node_inputs: Sequence[Sequence[int]], concat: Sequence[int], make_edge: EdgeFactory,
                 affine: bool = True):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(C_pp, C, affine) if reduction_prev else ReLUConvBN(C_pp, C, 1, 1, 0, affine)
        self.preprocess1 = ReLUConvBN(C_p, C, 1, 1, 0, affine)
        self.node_inputs = [list(inputs) for inputs in node_inputs]
        self.concat = list(concat)
        self.out_channels = C * len(self.concat)
        # ENAS and NAO may concatenate an unused cell input (0 or 1); in a reduction cell it is still at
        # the input resolution, so it is halved by a factorised reduction first (ENAS's _fixed_combine).
        self.calibrate = nn.ModuleDict({str(i): FactorizedReduce(C, C, affine) for i in self.concat
                                        if i < 2 and reduction})
        self.edges = nn.ModuleList(
            nn.ModuleList(
                make_edge(node, src, 2 if reduction and src < 2 else 1) for src in inputs
            )
            for node, inputs in enumerate(self.node_inputs)
        )
        # DropPath never touches identities: dropping a skip would make the cell depend on batch luck.
        # An edge may also opt out with ``droppable = False`` (a supernet's mixed edges: DARTS-family
        # searches do not use DropPath, and skipping it saves one masked copy per edge and step).
        self._droppable = [[getattr(e, "droppable", not isinstance(e, Identity)) for e in node] for node in self.edges]

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: torch.Tensor | None = None) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for inputs, edges, droppable in zip(self.node_inputs, self.edges, self._droppable):
            total = None
            for src, edge, can_drop in zip(inputs, edges, droppable):
                h = edge(states[src])
                if drop_prob is not None and can_drop and self.training:
                    h = drop_path(h, drop_prob)
                total = h if total is None else total + h
            states.append(total)
        for key, reduce in self.calibrate.items():
            states[int(key)] = reduce(states[int(key)])
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """Auxiliary classifier after the cell at 2n/3 (8×8 maps on CIFAR, 14×14 on 224-px inputs)."""

    def __init__(self, C: int, num_classes: int, imagenet: bool):
        super().__init__()
        # CIFAR: DARTS's 5×5 stride-3 pooling of the 8×8 map gives 2×2. The 224-px head pools to 2×2
        # adaptively (DARTS's ImageNet head assumed a size its own network does not produce).
        pool = nn.AdaptiveAvgPool2d(2) if imagenet else nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False)
        self.features = nn.Sequential(
            nn.ReLU(inplace=True), pool,
            nn.Conv2d(C, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


# (cell index, reduction, reduction_prev, C_pp, C_p, C) -> Cell
CellFactory = Callable[[int, bool, bool, int, int, int], Cell]


class CellNetwork(nn.Module):
    """Stem → ``layers`` cells (reductions at n/3 and 2n/3) → global pool → linear.

    In training mode with ``auxiliary=True`` the forward returns ``(logits, aux_logits)``; otherwise
    the logits. ``drop_path_prob`` is a buffer the trainer sets every epoch (DropPath ramp);
    ``drop_path_enabled`` is set once per run.

    ``channel_increment``: ``None`` is the DARTS schedule (cell width doubles at each reduction); an
    integer is NSGA-Net's "pyramid" schedule (its ``PyramidNetworkCIFAR``): the width grows by that many
    channels after every cell and does not double at reductions.
    """

    def __init__(self, make_cell: CellFactory, C: int, num_classes: int, layers: int, stem: str = "cifar",
                 auxiliary: bool = False, stem_multiplier: int = 3, channel_increment: int | None = None):
        super().__init__()
        if stem not in ("cifar", "imagenet"):
            raise ValueError(f"stem must be 'cifar' or 'imagenet', got {stem!r}")
        if layers < 3:
            raise ValueError(f"a cell network needs at least 3 cells (two reductions), got {layers}")
        self.register_buffer("drop_path_prob", torch.zeros(()), persistent=False)
        # Off for protocols without DropPath: a zero probability would still cost a mask per edge.
        self.drop_path_enabled = True
        self.reduction_layers = (layers // 3, 2 * layers // 3)
        self.aux_layer = 2 * layers // 3
        if stem == "cifar":
            C_stem = stem_multiplier * C
            self.stem0 = nn.Sequential(nn.Conv2d(3, C_stem, 3, padding=1, bias=False), nn.BatchNorm2d(C_stem))
            self.stem1 = None
            C_pp, C_p, reduction_prev = C_stem, C_stem, False
        else:
            self.stem0 = nn.Sequential(
                nn.Conv2d(3, C // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C // 2), nn.ReLU(inplace=True),
                nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C),
            )
            self.stem1 = nn.Sequential(
                nn.ReLU(inplace=True), nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C)
            )
            C_pp, C_p, reduction_prev = C, C, True
        C_cur = C
        self.cells = nn.ModuleList()
        self.auxiliary_head: AuxiliaryHead | None = None
        for i in range(layers):
            reduction = i in self.reduction_layers
            if reduction and channel_increment is None:
                C_cur *= 2
            cell = make_cell(i, reduction, reduction_prev, C_pp, C_p, C_cur)
            if channel_increment is not None:
                C_cur += channel_increment
            self.cells.append(cell)
            reduction_prev = reduction
            C_pp, C_p = C_p, cell.out_channels
            if i == self.aux_layer and auxiliary:
                self.auxiliary_head = AuxiliaryHead(C_p, num_classes, imagenet=stem == "imagenet")
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        s0 = self.stem0(x)
        s1 = s0 if self.stem1 is None else self.stem1(s0)
        drop = self.drop_path_prob if self.training and self.drop_path_enabled else None
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, drop)
            if i == self.aux_layer and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return (logits, aux) if aux is not None else logits
