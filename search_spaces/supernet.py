"""The DARTS supernet (Liu et al., ICLR 2019): every edge of a cell space mixes all candidate ops.

The supernet is built from the same :class:`~search_spaces.cells.Cell` and
:class:`~search_spaces.cells.CellNetwork` as every child network and from the same op registry, so a
searched architecture is evaluated with exactly the operations it was searched with. Only the edge
factory differs: where a child network puts one op on each of a node's two edges, the supernet connects
every node to *all* earlier states and puts a :class:`MixedOp` on each of those edges.

The architecture weights α (one row per edge, one column per candidate op, ``none`` included) belong
to the supernet, one matrix for normal cells and one for reduction cells. Each forward turns them into
softmax weights once and the mixed edges read their row; :meth:`DartsSupernet.genotype` turns them
back into a discrete genotype of the space (:func:`derive_genotype`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np
import torch
from torch import nn

from search_spaces.cells import Cell, CellNetwork
from search_spaces.genotype import Genotype
from search_spaces.ops import Zero, build_op


class CellSpace(Protocol):
    """What a supernet needs from a cell space (:class:`~search_spaces.darts.DartsCellSpace` has it)."""

    candidate_ops: tuple[str, ...]  # the ops a mixed edge mixes, 'none' included
    n_nodes: int

    def validate(self, genotype: Genotype) -> Genotype: ...


class EdgeWeights:
    """The current softmax weights of one cell type, shared by all mixed edges of that type.

    A plain object, not a module: the supernet writes ``value`` at the start of each forward and the
    edges read their row. This keeps :class:`Cell` unaware of α (its forward stays the child network's),
    and the weights are computed once per forward instead of once per edge and cell.
    """

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: torch.Tensor | None = None


class MixedOp(nn.Module):
    """Softmax-weighted sum of every candidate op on one edge (DARTS's continuous relaxation).

    Ops are built by the registry with ``affine=False`` as in DARTS: learnable BN scales would let an op
    grow its output instead of its α. Pooling ops get a non-affine BN behind them (DARTS does the same in
    its search network) so that their unnormalised outputs compete on equal terms with the convolutions.
    ``none`` contributes exactly zero, so it is not computed; its α still takes part in the softmax.
    """

    droppable = False  # see Cell: no DropPath inside the supernet

    def __init__(self, op_names: Sequence[str], C: int, stride: int, weights: EdgeWeights, row: int):
        super().__init__()
        ops = []
        for name in op_names:
            op = build_op(name, C, stride, affine=False)
            if "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
            ops.append(op)
        self.ops = nn.ModuleList(ops)
        self._active = [i for i, op in enumerate(ops) if not isinstance(op, Zero)]
        if not self._active:
            raise ValueError(f"a mixed edge needs at least one op besides 'none', got {list(op_names)}")
        self._weights = weights
        self.row = row

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._weights.value is None:
            raise RuntimeError("MixedOp called outside DartsSupernet.forward (no architecture weights set)")
        w = self._weights.value[self.row]
        out = w[self._active[0]] * self.ops[self._active[0]](x)
        for i in self._active[1:]:
            out = out + w[i] * self.ops[i](x)
        return out


def edge_offsets(n_nodes: int) -> list[int]:
    """Row of node ``i``'s first edge in α: node ``i`` has ``i + 2`` incoming edges (DARTS order)."""
    offsets, row = [], 0
    for node in range(n_nodes):
        offsets.append(row)
        row += node + 2
    return offsets


def num_edges(n_nodes: int) -> int:
    """Edges of a fully connected cell: 2 + 3 + ... + (n_nodes + 1) (14 for DARTS's 4 nodes)."""
    return sum(node + 2 for node in range(n_nodes))


def derive_genotype(space: CellSpace, normal: np.ndarray | torch.Tensor, reduce: np.ndarray | torch.Tensor) -> Genotype:
    """The discrete genotype of softmax weights, DARTS-style, validated by ``space``.

    Per node: rank its incoming edges by their strongest op other than ``none``, keep the top two, and
    put on each its strongest op other than ``none``. Ties go to the lower index (a stable rule, so the
    same α always gives the same genotype). A node's two edges are listed by input index, the space's
    canonical order, so the same architecture always has the same text whichever edge was stronger.
    """
    candidates = tuple(space.candidate_ops)
    n_nodes = int(space.n_nodes)
    keep = [i for i, op in enumerate(candidates) if op != "none"]
    offsets = edge_offsets(n_nodes)
    cells = []
    for weights in (normal, reduce):
        w = weights.detach().cpu().double().numpy() if isinstance(weights, torch.Tensor) else np.asarray(weights, float)
        if w.shape != (num_edges(n_nodes), len(candidates)):
            raise ValueError(f"weights must be {num_edges(n_nodes)}×{len(candidates)} (edges × ops), got {w.shape}")
        edges = []
        for node in range(n_nodes):
            rows = w[offsets[node]: offsets[node] + node + 2][:, keep]
            strength = rows.max(axis=1)
            # stable sort on -strength: equal strengths keep the lower input first
            top = sorted(np.argsort(-strength, kind="stable")[:2].tolist())
            edges += [(candidates[keep[int(np.argmax(rows[src]))]], src) for src in top]
        cells.append(edges)
    concat = range(2, n_nodes + 2)
    return space.validate(Genotype(cells[0], concat, cells[1], concat))


class DartsSupernet(nn.Module):
    """All candidate ops on all edges of ``space``'s cells, mixed by α (normal and reduce).

    ``space`` is a cell space with ``candidate_ops`` (including ``none``), ``n_nodes`` and ``validate``
    (:class:`~search_spaces.darts.DartsCellSpace`). α is initialised as ``1e-3 · N(0, 1)`` (DARTS) from
    ``generator`` so that the caller's seed alone decides it.
    """

    def __init__(self, space: CellSpace, C: int = 16, num_classes: int = 10, layers: int = 8, stem: str = "cifar",
                 generator: torch.Generator | None = None):
        super().__init__()
        self.space = space
        self.candidate_ops = tuple(space.candidate_ops)
        self.n_nodes = int(space.n_nodes)
        shape = (num_edges(self.n_nodes), len(self.candidate_ops))
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(shape, generator=generator))
        self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(shape, generator=generator))
        self._edge_weights = {False: EdgeWeights(), True: EdgeWeights()}
        offsets = edge_offsets(self.n_nodes)
        node_inputs = [list(range(node + 2)) for node in range(self.n_nodes)]
        concat = list(range(2, self.n_nodes + 2))

        def make_cell(index: int, reduction: bool, reduction_prev: bool, C_pp: int, C_p: int, C_cur: int) -> Cell:
            weights = self._edge_weights[reduction]

            def make_edge(node: int, src: int, stride: int) -> nn.Module:
                return MixedOp(self.candidate_ops, C_cur, stride, weights, offsets[node] + src)

            return Cell(C_pp, C_p, C_cur, reduction, reduction_prev, node_inputs, concat, make_edge, affine=False)

        self.network = CellNetwork(make_cell, C, num_classes, layers, stem=stem, auxiliary=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._edge_weights[False].value = torch.softmax(self.alpha_normal, dim=-1)
        self._edge_weights[True].value = torch.softmax(self.alpha_reduce, dim=-1)
        try:
            return self.network(x)  # type: ignore[return-value]  # no auxiliary head: logits only
        finally:
            # Drop the references so the graph of this forward is not kept alive by the edges.
            self._edge_weights[False].value = self._edge_weights[True].value = None

    # ------------------------------------------------------------------------------ parameter groups
    def arch_parameters(self) -> list[nn.Parameter]:
        """α of the normal and of the reduction cells (what the architecture optimizer updates)."""
        return [self.alpha_normal, self.alpha_reduce]

    def named_weight_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """Network weights w with their names in this module (everything except α)."""
        for name, p in self.network.named_parameters():
            yield f"network.{name}", p

    def weight_parameters(self) -> list[nn.Parameter]:
        """Network weights w (what the weight optimizer updates)."""
        return [p for _, p in self.named_weight_parameters()]

    # ---------------------------------------------------------------------------------- the result
    def alpha_weights(self) -> dict[str, torch.Tensor]:
        """Softmax of α per cell type (detached, on the CPU): rows = edges, columns = candidate ops."""
        with torch.no_grad():
            return {"normal": torch.softmax(self.alpha_normal, -1).cpu(),
                    "reduce": torch.softmax(self.alpha_reduce, -1).cpu()}

    def genotype(self) -> Genotype:
        """The discrete architecture of the current α (see :func:`derive_genotype`)."""
        w = self.alpha_weights()
        return derive_genotype(self.space, w["normal"], w["reduce"])
