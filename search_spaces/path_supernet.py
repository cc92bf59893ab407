"""A weight-sharing supernet that runs ONE sampled architecture per forward (ENAS, NAO-WS, MANAS).

Where the DARTS supernet mixes every op on every edge, methods that sample discrete architectures
share weights differently (Pham et al. 2018): every candidate op of every (node, input) edge has its
own weights, and a forward executes only the edges and ops of the sampled genotype. The supernet is
built from the same :class:`~search_spaces.cells.Cell`, :class:`~search_spaces.cells.CellNetwork` and op
registry as every child network; only the edge factory (all ops of the space on every edge) and the
cell's forward (the sampled path) differ.

NB201 (:mod:`search_spaces.nb201`) is built the same way from its own cell and macro network: every
edge holds all five NB201 ops and runs the sampled one (``none`` adds zeros), so ENAS and MANAS search
NB201 with the same supernet class and the found cell can be looked up in the NB201 table.

The output of a sampled cell depends on the architecture (ENAS-style spaces concatenate the unused
nodes, one to five of them), while the next cell needs a fixed width. As in ENAS, the concatenation goes
through a 1×1 convolution whose input columns are gathered for the nodes that are concatenated, so a
cell always emits ``C`` channels and each node keeps its own columns across architectures. Spaces whose
output may hold an unused cell input (ENAS, NAO: ``concat_unused_inputs``) get columns for the two cell
inputs too, and their reduction cells halve such an input with a factorised reduction (NAO-WS's
``model_search.py`` ``Cell``: ``fac_1``/``fac_2`` and a ``nodes + 2``-input combine).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from search_spaces.cells import Cell, CellNetwork
from search_spaces.genotype import Genotype, LayerwiseGenotype
from search_spaces.nb201 import NB201Cell, NB201Network, NB201Space
from search_spaces.nb201_arch import EDGES, NB201_OPS, NB201Arch
from search_spaces.ops import FactorizedReduce, build_op


class CandidateOps(nn.ModuleDict):
    """Every op of the space on one edge (BN without affine, as in weight-sharing supernets)."""

    droppable = False  # no DropPath inside a supernet (see Cell)

    def __init__(self, op_names: tuple[str, ...], C: int, stride: int):
        super().__init__({name: build_op(name, C, stride, affine=False) for name in op_names})


class _Path:
    """The genotype the supernet runs now; written by :meth:`PathSupernet.forward`, read by the cells."""

    __slots__ = ("genotype",)

    def __init__(self) -> None:
        self.genotype: Genotype | LayerwiseGenotype | NB201Arch | None = None


class SampledCell(Cell):
    """A cell whose forward executes the current genotype's edges and concatenation (then a 1×1 conv)."""

    def __init__(self, C_pp: int, C_p: int, C: int, reduction: bool, reduction_prev: bool, n_nodes: int,
                 ops: tuple[str, ...], path: _Path, concat_inputs: bool = False, index: int = 0, layers: int = 1):
        node_inputs = [list(range(node + 2)) for node in range(n_nodes)]
        super().__init__(C_pp, C_p, C, reduction, reduction_prev, node_inputs, [n_nodes + 1],
                         lambda node, src, stride: CandidateOps(ops, C, stride), affine=False)
        self.out_channels = C
        self.n_nodes = n_nodes
        self.index, self.layers = index, layers  # where the cell sits: a per-layer genotype has one per layer
        self._path = path
        self.first_column = 0 if concat_inputs else 2  # the state whose columns come first in combine
        self.combine = nn.Parameter(torch.empty(C, (n_nodes + 2 - self.first_column) * C, 1, 1))
        nn.init.kaiming_normal_(self.combine, mode="fan_in", nonlinearity="relu")
        self.combine_bn = nn.BatchNorm2d(C, affine=False)
        if concat_inputs and reduction:
            self.calibrate = nn.ModuleDict({str(i): FactorizedReduce(C, C, affine=False) for i in (0, 1)})

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: torch.Tensor | None = None) -> torch.Tensor:
        genotype = self._path.genotype
        if genotype is None:
            raise RuntimeError("SampledCell called outside PathSupernet.forward (no genotype set)")
        edges, concat = genotype.cell_at(self.index, self.reduction, self.layers)
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(self.n_nodes):
            (op_a, a), (op_b, b) = edges[2 * node], edges[2 * node + 1]
            states.append(self.edges[node][a][op_a](states[a]) + self.edges[node][b][op_b](states[b]))
        for i in concat:
            if str(i) in self.calibrate:
                states[i] = self.calibrate[str(i)](states[i])
        out = torch.relu(torch.cat([states[i] for i in concat], dim=1))
        C, first = self.out_channels, self.first_column
        columns = [i - first for i in concat]
        weight = self.combine.view(C, self.n_nodes + 2 - first, C, 1, 1)[:, columns].reshape(C, -1, 1, 1)
        return self.combine_bn(nn.functional.conv2d(out, weight))


class SampledNB201Edge(CandidateOps):
    """Every NB201 op on one edge of an NB201 cell; the forward runs the op the current architecture puts here."""

    def __init__(self, op_names: tuple[str, ...], C: int, path: _Path, row: int):
        super().__init__(op_names, C, 1)
        self._path = path
        self.row = row

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        arch = self._path.genotype
        if arch is None:
            raise RuntimeError("SampledNB201Edge called outside PathSupernet.forward (no architecture set)")
        return self[arch.ops[self.row]](x)


class PathSupernet(nn.Module):
    """All ops of ``space`` on all edges; ``forward(x, genotype)`` runs that architecture's path.

    ``space`` is any cell space of :mod:`search_spaces` (``ops``, ``n_nodes``, ``validate``) or NB201
    (``layers`` = cells per stage there, as in its child networks; ``stem`` is NB201's own either way).
    """

    def __init__(self, space: Any, C: int = 16, num_classes: int = 10, layers: int = 8, stem: str = "cifar"):
        super().__init__()
        self.space = space
        self._path = _Path()
        if isinstance(space, NB201Space):
            self.network = self._nb201_network(C, num_classes, layers)
            return
        ops, n_nodes = tuple(space.ops), int(space.n_nodes)

        def make_cell(index: int, reduction: bool, reduction_prev: bool, C_pp: int, C_p: int, C_cur: int) -> Cell:
            return SampledCell(C_pp, C_p, C_cur, reduction, reduction_prev, n_nodes, ops, self._path,
                               concat_inputs=bool(getattr(space, "concat_unused_inputs", False)), index=index,
                               layers=layers)

        self.network = CellNetwork(make_cell, C, num_classes, layers, stem=stem, auxiliary=False)

    def _nb201_network(self, C: int, num_classes: int, layers: int) -> NB201Network:
        """NB201's macro network (non-affine BN, as every supernet here) with sampled edges in its cells."""

        def make_cell(width: int) -> NB201Cell:
            return NB201Cell(lambda node, src: SampledNB201Edge(NB201_OPS, width, self._path, EDGES.index((node, src))))

        return NB201Network(make_cell, C, num_classes, layers, affine=False)

    def forward(self, x: torch.Tensor, genotype: Genotype | LayerwiseGenotype | NB201Arch) -> torch.Tensor:
        self._path.genotype = genotype
        try:
            return self.network(x)  # type: ignore[return-value]  # no auxiliary head: logits only
        finally:
            self._path.genotype = None
