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

from typing import Any

from torch import nn

from nni_nas_bench.errors import GenotypeError
from search_spaces.cell_space import CELL_TYPES, CellSpaceBase, build_cell_network
from search_spaces.cells import CellNetwork
from search_spaces.genotype import Genotype, LayerwiseGenotype
from search_spaces.ops import build_op

__all__ = ["CELL_TYPES", "DartsCellSpace", "build_darts_network"]


def build_darts_network(genotype: Genotype | LayerwiseGenotype, C: int = 36, num_classes: int = 10, layers: int = 20,
                        stem: str = "cifar", auxiliary: bool = False, pool_bn: bool = False) -> CellNetwork:
    """The child network of a genotype: the one network class every final training uses."""
    return build_cell_network(genotype, C, num_classes, layers, stem, auxiliary,
                              op_builder=pool_bn_op if pool_bn else build_op)


def pool_bn_op(name: str, C: int, stride: int) -> nn.Module:
    """The registry's op, with an affine BN behind pooling ops (the final networks of pt.darts and StacNAS).

    The benchmark's DARTS code (antoyang/NAS-Benchmark DARTS/models/ops.py, ``PoolBN``), its training-tricks
    code (Augmentation/models/ops.py) and StacNAS's (susan0199/stacnas operators.py) build every pooling op
    as pool → BN in the final network too; quark0's DARTS, PDARTS and CNAS use the bare pool.
    """
    op = build_op(name, C, stride)
    return nn.Sequential(op, nn.BatchNorm2d(C)) if "pool" in name else op


class DartsCellSpace(CellSpaceBase):
    """The discrete DARTS cell space: decisions, uniform sampler, genotype mapping, child networks.

    ``op_set`` names an entry of :data:`search_spaces.op_sets.OP_SETS` (``darts`` or SPEC experiment 3's
    ``poor``); ``n_nodes`` is 4 in DARTS, 5 and 6 for the larger cells of other methods. ``pool_bn`` puts an
    affine BN behind every pooling op of the child (final) networks, as the final networks of the
    benchmark's DARTS, StacNAS and MANAS did (:func:`pool_bn_op`); supernets are unaffected (their mixed
    edges always have a non-affine BN behind pools). Everything but this configuration is
    :class:`~search_spaces.cell_space.CellSpaceBase`'s.
    """

    name = "darts"
    input_pairs = True      # a node reads a pair of distinct inputs, decided as one categorical
    concat_unused = False   # the cell output concatenates every intermediate node
    distinct_inputs = True  # (the older name of input_pairs)

    def __init__(self, op_set: str = "darts", n_nodes: int = 4, pool_bn: bool = False):
        if not isinstance(pool_bn, bool):
            raise GenotypeError(f"pool_bn must be true or false (a BN behind pooling ops), got {pool_bn!r}")
        super().__init__(op_set, n_nodes)
        self.pool_bn = pool_bn

    @property
    def settings(self) -> dict[str, Any]:
        """The constructor arguments (``pool_bn`` included: it changes the trained network)."""
        return {**super().settings, "pool_bn": self.pool_bn}

    def build_network(self, genotype: Genotype | LayerwiseGenotype, C: int = 36, num_classes: int = 10,
                      layers: int = 20, stem: str = "cifar", auxiliary: bool = False) -> CellNetwork:
        """The child network of a validated genotype (with BN behind pools when ``pool_bn``)."""
        return build_darts_network(self.validate(genotype), C, num_classes, layers, stem, auxiliary, self.pool_bn)
