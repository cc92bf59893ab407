"""The DARTS cell space (Liu et al., ICLR 2019), shared by DARTS, PDARTS, StacNAS, CNAS, MANAS and
DARTS-PT and by the random-sampling baseline.

Each of the two cells (normal, reduction) has ``n_nodes`` intermediate nodes; node ``i`` (numbered from
2, after the two cell inputs) takes two *distinct* inputs among the ``i`` earlier states, each through
one operation of the op set (``none`` excluded: it only exists inside supernets). The cell output is
the concatenation of all intermediate nodes.

The decisions are NNI mutables with stable labels (``normal/op_2_0``, ``normal/inputs_2`` …). The
input *pair* of a node is one categorical decision, so sampling it uniformly gives every pair of
distinct inputs the same probability: the original benchmark's samplers did not sample the spaces that
were searched, this one provably does (``tests/test_darts_space.py`` checks the frequencies).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from torch import nn

from nni_nas_bench.errors import GenotypeError
from search_spaces.cells import Cell, CellNetwork
from search_spaces.genotype import Genotype
from search_spaces.ops import build_op, get_op_set

CELL_TYPES = ("normal", "reduce")


def build_darts_network(genotype: Genotype, C: int = 36, num_classes: int = 10, layers: int = 20,
                        stem: str = "cifar", auxiliary: bool = False) -> CellNetwork:
    """The child network of a genotype: the one network class every final training uses."""

    def make_cell(index: int, reduction: bool, reduction_prev: bool, C_pp: int, C_p: int, C_cur: int) -> Cell:
        edges, concat = genotype.cell(reduction)
        node_inputs = [[edges[2 * n][1], edges[2 * n + 1][1]] for n in range(len(edges) // 2)]

        def make_edge(node: int, src: int, stride: int) -> nn.Module:
            op = edges[2 * node + node_inputs[node].index(src)][0]
            return build_op(op, C_cur, stride)

        return Cell(C_pp, C_p, C_cur, reduction, reduction_prev, node_inputs, concat, make_edge)

    return CellNetwork(make_cell, C, num_classes, layers, stem=stem, auxiliary=auxiliary)


class DartsCellSpace:
    """The discrete DARTS cell space: decisions, uniform sampler, genotype mapping, child networks.

    ``op_set`` names an entry of :data:`search_spaces.ops.OP_SETS` (``darts`` or SPEC experiment 3's
    ``poor``); ``n_nodes`` is 4 in DARTS, 5 and 6 for the larger cells of other methods.
    """

    name = "darts"
    distinct_inputs = True

    def __init__(self, op_set: str = "darts", n_nodes: int = 4):
        # nni.mutable is imported here, not at module level, so that the child network (and the GPU
        # benchmark that builds it) imports on machines without nni.
        from nni.mutable import Categorical, MutableDict, label_scope

        if not isinstance(n_nodes, int) or n_nodes < 1:
            raise GenotypeError(f"n_nodes must be a positive integer, got {n_nodes!r}")
        self.op_set = op_set
        self.candidate_ops = get_op_set(op_set)  # with 'none': what a supernet mixes
        self.ops = tuple(op for op in self.candidate_ops if op != "none")
        self.n_nodes = n_nodes
        decisions = {}
        for cell in CELL_TYPES:
            with label_scope(cell):  # labels read 'normal/op_2_0', like NNI's own DARTS hub space
                for node in range(2, n_nodes + 2):
                    inputs = Categorical(list(itertools.combinations(range(node), 2)), label=f"inputs_{node}")
                    decisions[inputs.label] = inputs
                    for k in (0, 1):
                        op = Categorical(list(self.ops), label=f"op_{node}_{k}")
                        decisions[op.label] = op
        self.mutables = MutableDict(decisions)

    def __repr__(self) -> str:
        return f"DartsCellSpace(op_set={self.op_set!r}, n_nodes={self.n_nodes})"

    @property
    def settings(self) -> dict[str, Any]:
        """The constructor arguments: recorded with every result so the space can be rebuilt."""
        return {"op_set": self.op_set, "n_nodes": self.n_nodes}

    def num_architectures(self) -> int:
        """Size of the space (pairs × ops² per node, for both cells)."""
        per_cell = math.prod(math.comb(node, 2) * len(self.ops) ** 2 for node in range(2, self.n_nodes + 2))
        return per_cell**2

    # ------------------------------------------------------------------------------------- sampling
    def random_sample(self, random_state: np.random.RandomState) -> dict[str, Any]:
        """A uniform sample ``{label: value}`` drawn from the caller's generator."""
        return self.mutables.random(random_state=random_state)

    def sample(self, seed: int | np.random.RandomState) -> Genotype:
        """A uniformly random genotype; the same integer seed always gives the same genotype."""
        rng = seed if isinstance(seed, np.random.RandomState) else np.random.RandomState(seed)
        return self.to_genotype(self.random_sample(rng))

    # ------------------------------------------------------------------------------------- mapping
    def to_genotype(self, sample: Mapping[str, Any]) -> Genotype:
        """The genotype of an NNI sample dict."""
        self.mutables.check_contains(dict(sample))
        cells = {}
        for cell in CELL_TYPES:
            edges = []
            for node in range(2, self.n_nodes + 2):
                inputs = sample[f"{cell}/inputs_{node}"]
                edges += [(sample[f"{cell}/op_{node}_{k}"], int(inputs[k])) for k in (0, 1)]
            cells[cell] = edges
        concat = range(2, self.n_nodes + 2)
        return Genotype(cells["normal"], concat, cells["reduce"], concat)

    def to_sample(self, genotype: Genotype) -> dict[str, Any]:
        """The NNI sample of a genotype (a node's edges are ordered by input index)."""
        self.validate(genotype)
        sample: dict[str, Any] = {}
        for cell in CELL_TYPES:
            edges, _ = genotype.cell(cell == "reduce")
            for node in range(2, self.n_nodes + 2):
                pair = sorted(edges[2 * (node - 2): 2 * (node - 1)], key=lambda e: e[1])
                sample[f"{cell}/inputs_{node}"] = (pair[0][1], pair[1][1])
                for k in (0, 1):
                    sample[f"{cell}/op_{node}_{k}"] = pair[k][0]
        return sample

    def validate(self, genotype: Genotype) -> Genotype:
        """Raise :class:`GenotypeError` unless the genotype belongs to this space."""
        genotype.validate(self.ops, self.n_nodes, distinct_inputs=self.distinct_inputs)
        full = tuple(range(2, self.n_nodes + 2))
        for cell in CELL_TYPES:
            concat = genotype.cell(cell == "reduce")[1]
            if tuple(sorted(concat)) != full:
                raise GenotypeError(
                    f"{cell}_concat must be range(2, {self.n_nodes + 2}) in the DARTS space, got {list(concat)}"
                )
        return genotype

    def parse(self, text: str) -> Genotype:
        """Read and validate a genotype in DARTS notation."""
        return self.validate(Genotype.from_text(text))

    def build_network(self, genotype: Genotype, C: int = 36, num_classes: int = 10, layers: int = 20,
                      stem: str = "cifar", auxiliary: bool = False) -> CellNetwork:
        """The child network of a validated genotype."""
        return build_darts_network(self.validate(genotype), C, num_classes, layers, stem, auxiliary)
