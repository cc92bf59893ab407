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

from search_spaces.cell_space import CELL_TYPES, CellSpaceBase, build_cell_network
from search_spaces.cells import CellNetwork
from search_spaces.genotype import Genotype

__all__ = ["CELL_TYPES", "DartsCellSpace", "build_darts_network"]


def build_darts_network(genotype: Genotype, C: int = 36, num_classes: int = 10, layers: int = 20,
                        stem: str = "cifar", auxiliary: bool = False) -> CellNetwork:
    """The child network of a genotype: the one network class every final training uses."""
    return build_cell_network(genotype, C, num_classes, layers, stem, auxiliary)


class DartsCellSpace(CellSpaceBase):
    """The discrete DARTS cell space: decisions, uniform sampler, genotype mapping, child networks.

    ``op_set`` names an entry of :data:`search_spaces.ops.OP_SETS` (``darts`` or SPEC experiment 3's
    ``poor``); ``n_nodes`` is 4 in DARTS, 5 and 6 for the larger cells of other methods. Everything but
    this configuration is :class:`~search_spaces.cell_space.CellSpaceBase`'s.
    """

    name = "darts"
    input_pairs = True      # a node reads a pair of distinct inputs, decided as one categorical
    concat_unused = False   # the cell output concatenates every intermediate node
    distinct_inputs = True  # (the older name of input_pairs)

    def __init__(self, op_set: str = "darts", n_nodes: int = 4):
        super().__init__(op_set, n_nodes)
