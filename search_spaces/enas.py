"""The ENAS micro cell space (Pham et al., ICML 2018), as benchmarked by Yang et al. 2020.

Two cells (normal, reduction), 5 intermediate nodes each. A node takes two inputs, each chosen on its
own among *all* earlier states (the two cell inputs and every earlier node), and applies one of five
ops to each: ``sep_conv_3x3``, ``sep_conv_5x5``, ``avg_pool_3x3``, ``max_pool_3x3``, ``identity``.

Decisions made here, with the facts behind them:

- The two inputs may be the same state. ENAS's controller samples each input index from its own
  softmax over the earlier states, with nothing that excludes the index already drawn (NNI's ENAS micro
  example likewise gives each of a node's two branches its own one-of-all-earlier-states input
  choice); the space that was searched therefore contains such nodes, and a uniform sampler must
  produce them.
- The cell output concatenates every state that no node of the cell reads, the two cell inputs included
  (ENAS counts the uses of all ``num_cells + 2`` states: melodyguan/enas ``src/cifar10/micro_child.py``
  ``_enas_layer`` and ``_fixed_layer``/``_fixed_combine``; the last node is never read, so the output is
  never empty). In a reduction cell an unused cell input is halved by a factorised reduction first
  (``_fixed_combine``).
- ``identity`` is ENAS's name for the skip connection (a factorised reduction on stride-2 edges).

Labels: ``normal/input_2_0``, ``normal/input_2_1``, ``normal/op_2_0``, ``normal/op_2_1``, … (nodes
numbered from 2 as in DARTS genotypes). The original benchmark's ENAS sampler drew the wrong number of
ops and restricted inputs to the cell inputs (SPEC "Known defects"); this one samples every decision
uniformly, and ``tests/test_oneshot_spaces.py`` checks the frequencies.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from nni_nas_bench.errors import ConfigError
from search_spaces.cell_space import CellSpaceBase
from search_spaces.cells import CellNetwork
from search_spaces.genotype import Genotype


class EnasCellSpace(CellSpaceBase):
    """ENAS micro: independent inputs from any earlier state, output = unused states, ENAS's five ops.

    ``dropout``: dropout before the final network's classifier (ENAS's ``child_keep_prob``: 0.8 in the
    benchmark's CIFAR final-training command, i.e. ``dropout: 0.2``); 0 adds none.
    """

    name = "enas"
    input_pairs = False
    concat_unused = True
    concat_unused_inputs = True

    def __init__(self, op_set: str = "enas", n_nodes: int = 5, dropout: float = 0.0):
        super().__init__(op_set, n_nodes)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ConfigError(f"{self.name} space: dropout must be a number in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)

    @property
    def settings(self) -> dict[str, Any]:
        # Only when set: spaces built on this one without dropout (NSGA-Net) keep their settings.
        return {**super().settings, **({"dropout": self.dropout} if self.dropout else {})}

    def build_network(self, genotype: Genotype, C: int = 36, num_classes: int = 10, layers: int = 20,
                      stem: str = "cifar", auxiliary: bool = False) -> CellNetwork:
        """The child network, with dropout (``self.dropout``) in front of the classifier."""
        net = super().build_network(genotype, C, num_classes, layers, stem, auxiliary)
        if self.dropout > 0:
            net.classifier = nn.Sequential(nn.Dropout(self.dropout), net.classifier)
        return net
