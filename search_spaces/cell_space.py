"""What every two-cell (normal + reduction) space shares: decisions, sampler, genotype mapping, networks.

A cell space is a product of independent NNI ``Categorical`` decisions, made per cell type and per
intermediate node. The spaces differ only in

- how a node's two inputs are decided (:attr:`CellSpaceBase.input_pairs`): DARTS decides an unordered
  *pair of distinct* inputs as one categorical (``normal/inputs_2``); ENAS, NAO and NSGA-Net decide each
  input on its own among all earlier states (``normal/input_2_0``, ``normal/input_2_1``), so both edges
  may read the same state, as their controllers / encodings allow;
- which nodes form the cell output (:attr:`CellSpaceBase.concat_unused`): all intermediate nodes
  (DARTS) or only those no other node reads (NSGA-Net), plus the unread cell inputs
  (:attr:`CellSpaceBase.concat_unused_inputs`: ENAS's and NAO's rule);
- the op set and node count, and what the final network adds (NSGA-Net's squeeze-excitation).

Everything else (the uniform sampler, genotype ↔ sample, validation, parsing, the child network built
from :class:`~search_spaces.cells.Cell` and the op registry) is here once. Sampling every categorical
uniformly samples the space uniformly *as the space is encoded*: for ENAS-style spaces a node's two
edges are ordered, so a genotype and the one with the node's edges swapped are two encodings of one
network (as in the methods' own encodings); :meth:`CellSpaceBase.num_architectures` counts encodings.

Genotypes are :class:`~search_spaces.genotype.Genotype` (DARTS notation) for every space: its concat
lists are per cell, so an ENAS-style genotype simply carries each cell's own unused nodes
(``normal_concat=[3, 5, 6]``), and its validation already allows a node to read one state twice.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping
from typing import Any, Callable, ClassVar

import numpy as np
from torch import nn

from nni_nas_bench.errors import GenotypeError
from search_spaces.cells import Cell, CellNetwork
from search_spaces.genotype import Edge, Genotype, LayerwiseGenotype, parse_genotype
from search_spaces.op_sets import get_op_set
from search_spaces.ops import build_op

CELL_TYPES = ("normal", "reduce")


def unused_nodes(edges: tuple[Edge, ...] | list[Edge]) -> tuple[int, ...]:
    """Intermediate nodes (numbered from 2) that no node of the cell reads: ENAS's cell output."""
    n_nodes = len(edges) // 2
    read = {src for _, src in edges}
    return tuple(node for node in range(2, n_nodes + 2) if node not in read)


def unused_states(edges: tuple[Edge, ...] | list[Edge]) -> tuple[int, ...]:
    """Every state (cell inputs 0 and 1 included) that no node of the cell reads: ENAS's and NAO's output.

    ENAS counts the uses of all ``num_cells + 2`` states, the two cell inputs among them, and concatenates
    those used zero times (melodyguan/enas ``micro_child.py`` ``_enas_layer`` and ``_fixed_layer``); NAO's
    weight-sharing cells do the same.
    """
    read = {src for _, src in edges}
    return tuple(state for state in (0, 1) if state not in read) + unused_nodes(edges)


def build_cell_network(genotype: Genotype | LayerwiseGenotype, C: int = 36, num_classes: int = 10, layers: int = 20,
                       stem: str = "cifar", auxiliary: bool = False, cell_class: type[Cell] = Cell,
                       channel_increment: int | None = None,
                       op_builder: Callable[[str, int, int], nn.Module] = build_op) -> CellNetwork:
    """The child network of a genotype: one registry op per edge, the genotype's concat as cell output.

    A node may read the same state twice (ENAS-style spaces): its two edges then get the genotype's two
    ops in order (the sum is symmetric, so which edge gets which op does not change the network).
    A :class:`~search_spaces.genotype.LayerwiseGenotype` gives every layer its own cell
    (:meth:`~search_spaces.genotype.LayerwiseGenotype.cell_at`). ``cell_class`` lets a space extend the cell
    (NSGA-Net's squeeze-excitation); ``channel_increment`` is
    :class:`~search_spaces.cells.CellNetwork`'s width schedule; ``op_builder(name, C, stride)`` builds each
    edge's op (default: the registry's op; the DARTS space's ``pool_bn`` adds a BN behind pooling ops).
    """

    def make_cell(index: int, reduction: bool, reduction_prev: bool, C_pp: int, C_p: int, C_cur: int) -> Cell:
        edges, concat = genotype.cell_at(index, reduction, layers)
        node_inputs = [[edges[2 * n][1], edges[2 * n + 1][1]] for n in range(len(edges) // 2)]
        taken: Counter[tuple[int, int]] = Counter()

        def make_edge(node: int, src: int, stride: int) -> nn.Module:
            k = [i for i in (0, 1) if node_inputs[node][i] == src][taken[node, src]]
            taken[node, src] += 1
            return op_builder(edges[2 * node + k][0], C_cur, stride)

        return cell_class(C_pp, C_p, C_cur, reduction, reduction_prev, node_inputs, concat, make_edge)

    return CellNetwork(make_cell, C, num_classes, layers, stem=stem, auxiliary=auxiliary,
                       channel_increment=channel_increment)


MAX_NODES = 8
"""Intermediate nodes per cell: published cells have 4 (DARTS) to 6 (CNAS); beyond 8 a value is a typo
(the supernet's edges grow quadratically and nothing published compares with it)."""


class CellSpaceBase:
    """A discrete two-cell space; subclasses set the class attributes below and may extend the network.

    ``op_set`` names an entry of :data:`search_spaces.op_sets.OP_SETS`; ``n_nodes`` is the number of
    intermediate nodes per cell. ``none`` is never a choice of a discrete space (it only exists inside
    supernets: :attr:`candidate_ops` keeps it for them).
    """

    name: ClassVar[str]
    input_pairs: ClassVar[bool]     # True: one categorical over pairs of distinct inputs (DARTS)
    concat_unused: ClassVar[bool]   # True: cell output = nodes no node reads (ENAS); False: all nodes
    # With concat_unused: True adds the unused cell inputs 0 and 1 to the output (ENAS, NAO), False keeps
    # the intermediate nodes only (NSGA-Net).
    concat_unused_inputs: ClassVar[bool] = False

    def __init__(self, op_set: str, n_nodes: int):
        # nni.mutable is imported here, not at module level, so that the child network (and the GPU
        # benchmark that builds it) imports on machines without nni.
        from nni.mutable import MutableDict, label_scope

        if isinstance(n_nodes, bool) or not isinstance(n_nodes, int) or not 1 <= n_nodes <= MAX_NODES:
            raise GenotypeError(f"n_nodes must be an integer from 1 to {MAX_NODES}, got {n_nodes!r}")
        self.op_set = op_set
        self.candidate_ops = get_op_set(op_set)  # with 'none' where the set has it: what a supernet mixes
        self.ops = tuple(op for op in self.candidate_ops if op != "none")
        self.n_nodes = n_nodes
        decisions = {}
        for cell in CELL_TYPES:
            with label_scope(cell):  # labels read 'normal/op_2_0', like NNI's own DARTS hub space
                for node in range(2, n_nodes + 2):
                    for mutable in self._node_decisions(node):
                        decisions[mutable.label] = mutable
        self.mutables = MutableDict(decisions)

    # ------------------------------------------------------------------------ per-node decisions
    def _node_decisions(self, node: int) -> list[Any]:
        """The categoricals of one node (created inside the cell's label scope)."""
        from nni.mutable import Categorical

        ops = [Categorical(list(self.ops), label=f"op_{node}_{k}") for k in (0, 1)]
        if self.input_pairs:
            return [Categorical(list(itertools.combinations(range(node), 2)), label=f"inputs_{node}"), *ops]
        return [Categorical(list(range(node)), label=f"input_{node}_{k}") for k in (0, 1)] + ops

    def layer_decisions(self, layers: int) -> dict[str, list[Any]]:
        """``{label: values}`` of a cell PER LAYER (``layer3/op_2_0`` …): the decisions of a search with unique
        cells per layer (MANAS); :meth:`to_layerwise_genotype` maps a sample of them to a genotype."""
        from nni.mutable import label_scope

        decisions: dict[str, list[Any]] = {}
        for layer in range(layers):
            with label_scope(f"layer{layer}"):
                for node in range(2, self.n_nodes + 2):
                    decisions.update({m.label: list(m.values) for m in self._node_decisions(node)})
        return decisions

    def to_layerwise_genotype(self, sample: Mapping[str, Any], layers: int) -> LayerwiseGenotype:
        """The per-layer genotype of a sample of :meth:`layer_decisions`."""
        cells = [[e for node in range(2, self.n_nodes + 2) for e in self._node_edges(sample, f"layer{layer}", node)]
                 for layer in range(layers)]
        return LayerwiseGenotype(cells, [self.concat_of(edges) for edges in cells])

    def _node_edges(self, sample: Mapping[str, Any], cell: str, node: int) -> list[Edge]:
        if self.input_pairs:
            inputs = sample[f"{cell}/inputs_{node}"]
        else:
            inputs = [sample[f"{cell}/input_{node}_{k}"] for k in (0, 1)]
        return [(sample[f"{cell}/op_{node}_{k}"], int(inputs[k])) for k in (0, 1)]

    def _node_sample(self, edges: list[Edge], cell: str, node: int) -> dict[str, Any]:
        if self.input_pairs:  # canonical order: by input index
            edges = sorted(edges, key=lambda e: e[1])
            sample: dict[str, Any] = {f"{cell}/inputs_{node}": (edges[0][1], edges[1][1])}
        else:  # ordered encoding: edge k is decision k
            sample = {f"{cell}/input_{node}_{k}": edges[k][1] for k in (0, 1)}
        sample.update({f"{cell}/op_{node}_{k}": edges[k][0] for k in (0, 1)})
        return sample

    def concat_of(self, edges: tuple[Edge, ...] | list[Edge]) -> tuple[int, ...]:
        """The cell output this space prescribes for a cell's edges."""
        if self.concat_unused:
            return unused_states(edges) if self.concat_unused_inputs else unused_nodes(edges)
        return tuple(range(2, len(edges) // 2 + 2))

    # ------------------------------------------------------------------------------ description
    @property
    def settings(self) -> dict[str, Any]:
        """The constructor arguments: recorded with every result so the space can be rebuilt."""
        return {"op_set": self.op_set, "n_nodes": self.n_nodes}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings.items())
        return f"{type(self).__name__}({args})"

    def num_architectures(self) -> int:
        """Size of the space: the product of the decisions' sizes (both cells)."""
        return math.prod(len(m.values) for m in self.mutables.values())

    # ------------------------------------------------------------------------------- sampling
    def random_sample(self, random_state: np.random.RandomState) -> dict[str, Any]:
        """A uniform sample ``{label: value}`` drawn from the caller's generator."""
        return self.mutables.random(random_state=random_state)

    def sample(self, seed: int | np.random.RandomState) -> Genotype:
        """A uniformly random genotype; the same integer seed always gives the same genotype."""
        rng = seed if isinstance(seed, np.random.RandomState) else np.random.RandomState(seed)
        return self.to_genotype(self.random_sample(rng))

    # -------------------------------------------------------------------------------- mapping
    def to_genotype(self, sample: Mapping[str, Any]) -> Genotype:
        """The genotype of an NNI sample dict."""
        self.mutables.check_contains(dict(sample))
        cells = {}
        for cell in CELL_TYPES:
            cells[cell] = [e for node in range(2, self.n_nodes + 2) for e in self._node_edges(sample, cell, node)]
        return Genotype(cells["normal"], self.concat_of(cells["normal"]), cells["reduce"],
                        self.concat_of(cells["reduce"]))

    def to_sample(self, genotype: Genotype) -> dict[str, Any]:
        """The NNI sample of a (two-cell) genotype."""
        if not isinstance(genotype, Genotype):
            raise GenotypeError("a per-layer genotype is not a sample of this space's two-cell decisions "
                                "(its decisions are layer_decisions(layers))")
        self.validate(genotype)
        sample: dict[str, Any] = {}
        for cell in CELL_TYPES:
            edges, _ = genotype.cell(cell == "reduce")
            for node in range(2, self.n_nodes + 2):
                sample.update(self._node_sample(list(edges[2 * (node - 2): 2 * (node - 1)]), cell, node))
        return sample

    def validate(self, genotype: Genotype | LayerwiseGenotype) -> Genotype | LayerwiseGenotype:
        """Raise :class:`GenotypeError` unless the genotype (two cells, or one per layer) belongs to this space."""
        if not isinstance(genotype, (Genotype, LayerwiseGenotype)):
            raise GenotypeError(f"expected a cell genotype of the {self.name} space, got {type(genotype).__name__}")
        genotype.validate(self.ops, self.n_nodes, distinct_inputs=self.input_pairs,
                          concat_inputs=self.concat_unused_inputs)
        rule = "the nodes no node reads" if self.concat_unused else f"range(2, {self.n_nodes + 2})"
        if self.concat_unused_inputs:
            rule = "the states (cell inputs included) no node reads"
        for cell, edges, concat in genotype.named_cells():
            expected = self.concat_of(edges)
            if tuple(sorted(concat)) != expected:
                raise GenotypeError(
                    f"{cell}_concat must be {rule} ({list(expected)}) in the {self.name} space, got {list(concat)}"
                )
        return genotype

    def parse(self, text: str) -> Genotype | LayerwiseGenotype:
        """Read and validate a genotype in DARTS notation (or its per-layer form)."""
        return self.validate(parse_genotype(text))

    def build_network(self, genotype: Genotype | LayerwiseGenotype, C: int = 36, num_classes: int = 10,
                      layers: int = 20, stem: str = "cifar", auxiliary: bool = False) -> CellNetwork:
        """The child network of a validated genotype."""
        return build_cell_network(self.validate(genotype), C, num_classes, layers, stem, auxiliary)
