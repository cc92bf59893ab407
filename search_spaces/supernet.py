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

Progressive and staged methods search *part* of the op set: PDARTS prunes ops edge by edge between its
stages, StacNAS's second stage searches each edge within one op group, DARTS-PT decides edges one at a
time. The supernet serves all of them with two small mechanisms instead of cell copies:

- ``edge_ops``: the ops each edge mixes (a subset of ``candidate_ops``, per cell type and edge). Only
  those ops are built; the other columns of α are masked out of the softmax, so α keeps one shape
  (edges × candidate ops) and one meaning in every stage and history file.
- :meth:`DartsSupernet.set_edge_weights`: fix an edge's mixing weights (a one-hot row for a decided
  edge, a row with one op or the whole edge zeroed to measure what its removal costs).

Sampling methods (GDAS) run ONE op per edge instead of the mixture: a supernet's ``sampler`` turns each
forward's mixing weights into (weights, the op of every edge) and the mixed edges then compute only
that op (:class:`EdgeWeights`). The NB201 supernet shares both mechanisms (:class:`FixedRows`, ``sampler``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Callable, Protocol

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


# (mixing weights edges × ops, training?) -> (weights the edges multiply by, the one column each edge computes)
Sampler = Callable[[torch.Tensor, bool], tuple[torch.Tensor, Sequence[int]]]


class EdgeWeights:
    """The current softmax weights of one cell type, shared by all mixed edges of that type.

    A plain object, not a module: the supernet writes ``value`` at the start of each forward and the
    edges read their row. This keeps :class:`Cell` unaware of α (its forward stays the child network's),
    and the weights are computed once per forward instead of once per edge and cell. ``choice`` (set by
    a sampler, else None) is the column each edge computes alone: one sample per forward, shared by
    every cell, as GDAS samples.
    """

    __slots__ = ("choice", "value")

    def __init__(self) -> None:
        self.value: torch.Tensor | None = None
        self.choice: Sequence[int] | None = None

    def set(self, weights: torch.Tensor, sampler: Sampler | None, training: bool) -> None:
        """This forward's weights: the mixture, or what ``sampler`` makes of it (weights and one op per edge)."""
        if sampler is None:
            self.value, self.choice = weights, None
        else:
            self.value, self.choice = sampler(weights, training)

    def clear(self) -> None:
        """Drop the references, so the graph of a finished forward is not kept alive by the edges."""
        self.value = self.choice = None


class MixedOp(nn.Module):
    """Softmax-weighted sum of every candidate op on one edge (DARTS's continuous relaxation).

    Ops are built by the registry with ``affine=False`` as in DARTS: learnable BN scales would let an op
    grow its output instead of its α. Pooling ops get a non-affine BN behind them (DARTS does the same in
    its search network) so that their unnormalised outputs compete on equal terms with the convolutions.
    ``none`` contributes exactly zero, so it is not computed; its α still takes part in the softmax.

    ``columns[i]`` is the column of ``op_names[i]`` in the weight row (default: the i-th), so an edge
    can mix a subset of the candidate ops. ``skip_dropout`` puts a dropout behind an identity ``skip_connect``
    (stride 1; PDARTS regularises the parameter-free skip this way; its rate is set with :meth:`set_skip_dropout`).
    """

    droppable = False  # see Cell: no DropPath inside the supernet

    def __init__(self, op_names: Sequence[str], C: int, stride: int, weights: EdgeWeights, row: int,
                 columns: Sequence[int] | None = None, skip_dropout: bool = False):
        super().__init__()
        ops = []
        for name in op_names:
            op = build_op(name, C, stride, affine=False)
            if "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
            elif name == "skip_connect" and skip_dropout and stride == 1:
                # only behind the identity: a strided skip is a FactorizedReduce (PDARTS's MixedOp checks
                # isinstance(op, Identity)), and dropping it would regularise a parametric op
                op = nn.Sequential(op, nn.Dropout(0.0))
            ops.append(op)
        self.ops = nn.ModuleList(ops)
        self.columns = list(range(len(ops))) if columns is None else [int(c) for c in columns]
        if len(self.columns) != len(ops):
            raise ValueError(f"columns {self.columns} do not match ops {list(op_names)}")
        # An edge of only 'none' is a cut edge (StacNAS's second stage keeps just its chosen edges): its
        # Zero op is then computed once, to give the node a zero tensor of the right shape.
        self._active = [i for i, op in enumerate(ops) if not isinstance(op, Zero)] or [0]
        if not ops:
            raise ValueError("a mixed edge needs at least one op")
        self._weights = weights
        self.row = row
        self._position = {column: i for i, column in enumerate(self.columns)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._weights.value is None:
            raise RuntimeError("MixedOp called outside DartsSupernet.forward (no architecture weights set)")
        w = self._weights.value[self.row]
        if self._weights.choice is not None:  # a sampled edge: only the chosen op runs
            column = self._weights.choice[self.row]
            if column not in self._position:
                raise RuntimeError(f"edge {self.row} was sampled op column {column}, which it does not hold "
                                   f"(columns {self.columns})")
            return w[column] * self.ops[self._position[column]](x)
        first = self._active[0]
        out = w[self.columns[first]] * self.ops[first](x)
        for i in self._active[1:]:
            out = out + w[self.columns[i]] * self.ops[i](x)
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


class FixedRows:
    """Mixing weights of a supernet's edges that can be fixed one row at a time (DARTS-PT's decisions and masks).

    For a module with ``alpha_<cell>`` for each of its ``cell_types``; :meth:`init_fixed_rows` registers the
    persistent buffers (``fixed_<cell>``: NaN = the row follows α; ``mask_<cell>``: the ops each edge
    holds), so a checkpoint restores which ops each edge mixes and which edges were fixed. Shared by the
    DARTS and the NB201 supernet, so a method built on fixed rows works on both.
    """

    cell_types: tuple[str, ...] = ("normal", "reduce")

    def init_fixed_rows(self, masks: Mapping[str, torch.Tensor], restricted: bool) -> None:
        """Register ``mask_<cell>`` (edges × ops, bool) and an all-NaN ``fixed_<cell>`` per cell type."""
        for cell in self.cell_types:
            self.register_buffer(f"mask_{cell}", masks[cell])  # type: ignore[attr-defined]
            self.register_buffer(f"fixed_{cell}", torch.full(masks[cell].shape, float("nan")))  # type: ignore[attr-defined]
        self._restricted = restricted  # masks that exclude ops (else the masking is skipped)
        self._fixed_count = 0  # fixed rows; 0 skips the per-forward merge

    def edge_weights(self, cell: str) -> torch.Tensor:
        """The mixing weights of one cell type: softmax of α over each edge's ops, then fixed rows."""
        alpha = getattr(self, f"alpha_{cell}")
        if self._restricted:
            alpha = alpha.masked_fill(~getattr(self, f"mask_{cell}"), float("-inf"))
        w = torch.softmax(alpha, dim=-1)
        fixed = getattr(self, f"fixed_{cell}")
        if self._fixed_count:
            w = torch.where(torch.isnan(fixed), w, fixed)
        return w

    def set_edge_weights(self, cell: str, row: int, weights: torch.Tensor | Sequence[float] | None) -> None:
        """Fix the mixing weights of edge ``row`` of ``cell`` (one value per candidate op), or free it (None).

        A fixed row replaces the softmax of α in every forward: DARTS-PT decides an edge by fixing a
        one-hot row and measures an op's (or an edge's) importance by zeroing it.
        """
        fixed = getattr(self, f"fixed_{cell}")
        with torch.no_grad():
            if weights is None:
                fixed[row] = float("nan")
            else:
                value = torch.as_tensor(weights, dtype=fixed.dtype, device=fixed.device)
                if value.shape != fixed[row].shape or torch.isnan(value).any():
                    raise ValueError(f"edge weights must be {fixed.shape[1]} numbers, got {value.tolist()}")
                fixed[row] = value
        self._count_fixed()

    def _count_fixed(self) -> None:
        self._fixed_count = sum(int((~torch.isnan(getattr(self, f"fixed_{c}"))).any(1).sum()) for c in
                                self.cell_types)

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super()._load_from_state_dict(*args, **kwargs)  # type: ignore[misc]
        self._count_fixed()  # a checkpoint may hold fixed rows


EdgeOps = Mapping[str, Sequence[Sequence[str]]]  # cell type ('normal' / 'reduce') -> ops of each edge


class DartsSupernet(FixedRows, nn.Module):
    """All candidate ops (or each edge's ``edge_ops``) on all edges of ``space``'s cells, mixed by α.

    ``space`` is a cell space with ``candidate_ops`` (including ``none``), ``n_nodes`` and ``validate``
    (:class:`~search_spaces.darts.DartsCellSpace`). α is initialised as ``1e-3 · N(0, 1)`` (DARTS) from
    ``generator`` so that the caller's seed alone decides it. ``edge_ops`` restricts edges to subsets
    of the candidate ops (see the module docstring); ``skip_dropout`` adds PDARTS's dropout behind every
    skip-connect (rate 0 until :meth:`set_skip_dropout`).
    """

    def __init__(self, space: CellSpace, C: int = 16, num_classes: int = 10, layers: int = 8, stem: str = "cifar",
                 generator: torch.Generator | None = None, edge_ops: EdgeOps | None = None,
                 skip_dropout: bool = False):
        super().__init__()
        self.space = space
        self.candidate_ops = tuple(space.candidate_ops)
        self.n_nodes = int(space.n_nodes)
        shape = (num_edges(self.n_nodes), len(self.candidate_ops))
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(shape, generator=generator))
        self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(shape, generator=generator))
        self.edge_ops = self._check_edge_ops(edge_ops, shape[0])
        self.init_fixed_rows({cell: torch.tensor([[op in ops for op in self.candidate_ops] for ops in rows])
                              for cell, rows in self.edge_ops.items()}, restricted=edge_ops is not None)
        self.sampler: Sampler | None = None  # None: every edge mixes its ops (DARTS); see EdgeWeights
        self._edge_weights = {False: EdgeWeights(), True: EdgeWeights()}
        offsets = edge_offsets(self.n_nodes)
        node_inputs = [list(range(node + 2)) for node in range(self.n_nodes)]
        concat = list(range(2, self.n_nodes + 2))
        column = {op: i for i, op in enumerate(self.candidate_ops)}

        def make_cell(index: int, reduction: bool, reduction_prev: bool, C_pp: int, C_p: int, C_cur: int) -> Cell:
            weights = self._edge_weights[reduction]
            cell_ops = self.edge_ops["reduce" if reduction else "normal"]

            def make_edge(node: int, src: int, stride: int) -> nn.Module:
                ops = cell_ops[offsets[node] + src]
                return MixedOp(ops, C_cur, stride, weights, offsets[node] + src, columns=[column[o] for o in ops],
                               skip_dropout=skip_dropout)

            return Cell(C_pp, C_p, C_cur, reduction, reduction_prev, node_inputs, concat, make_edge, affine=False)

        self.network = CellNetwork(make_cell, C, num_classes, layers, stem=stem, auxiliary=False)

    def _check_edge_ops(self, edge_ops: EdgeOps | None, n_edges: int) -> dict[str, list[list[str]]]:
        """Every edge's op list, in candidate order; unknown ops or a wrong number of edges raise."""
        if edge_ops is None:
            return {cell: [list(self.candidate_ops) for _ in range(n_edges)] for cell in ("normal", "reduce")}
        if set(edge_ops) != {"normal", "reduce"}:
            raise ValueError(f"edge_ops needs exactly the keys 'normal' and 'reduce', got {sorted(edge_ops)}")
        out = {}
        for cell, rows in edge_ops.items():
            if len(rows) != n_edges:
                raise ValueError(f"edge_ops[{cell!r}] has {len(rows)} edges, the cell has {n_edges}")
            for ops in rows:
                unknown = set(ops) - set(self.candidate_ops)
                if unknown or not ops:
                    raise ValueError(f"edge ops {list(ops)} must be a non-empty subset of {list(self.candidate_ops)}")
            out[cell] = [[op for op in self.candidate_ops if op in ops] for ops in rows]
        return out

    def set_skip_dropout(self, p: float) -> None:
        """Set the rate of the dropout behind every skip-connect (built with ``skip_dropout=True``)."""
        for module in self.network.modules():
            if isinstance(module, nn.Dropout):
                module.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._edge_weights[False].set(self.edge_weights("normal"), self.sampler, self.training)
        self._edge_weights[True].set(self.edge_weights("reduce"), self.sampler, self.training)
        try:
            return self.network(x)  # type: ignore[return-value]  # no auxiliary head: logits only
        finally:
            self._edge_weights[False].clear()
            self._edge_weights[True].clear()

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
        """The mixing weights per cell type (detached, on the CPU): rows = edges, columns = candidate ops.

        The softmax of α over each edge's ops, with fixed rows in place: what the forward uses.
        """
        with torch.no_grad():
            return {"normal": self.edge_weights("normal").cpu(), "reduce": self.edge_weights("reduce").cpu()}

    def genotype(self) -> Genotype:
        """The discrete architecture of the current α (see :func:`derive_genotype`)."""
        w = self.alpha_weights()
        return derive_genotype(self.space, w["normal"], w["reduce"])
