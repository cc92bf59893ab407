"""The NAO cell space (Luo et al., NeurIPS 2018, weight-sharing variant), as benchmarked by Yang et al.

SPEC: 5 nodes, the five ops of ENAS (``sep_conv_3x3``, ``sep_conv_5x5``, ``avg_pool_3x3``,
``max_pool_3x3``, ``identity``). NAO's encoding is a node's ``(input, op, input, op)``, each input any
earlier state, drawn independently (NAO's weight-sharing search space is ENAS's), and its cell output is
the concatenation of unused nodes, so the decisions are exactly those of
:class:`~search_spaces.enas.EnasCellSpace`. What differs is the final network: NAO trains it with
dropout 0.4 before the classifier (SPEC "Per-method differences"), a setting of this space
(``dropout``) because the trial builds networks through the space.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from nni_nas_bench.errors import ConfigError
from search_spaces.cells import CellNetwork
from search_spaces.enas import EnasCellSpace
from search_spaces.genotype import Genotype


class NaoCellSpace(EnasCellSpace):
    """ENAS's decisions under NAO's name, with NAO's classifier dropout in the final network."""

    name = "nao"

    def __init__(self, op_set: str = "enas", n_nodes: int = 5, dropout: float = 0.4):
        super().__init__(op_set, n_nodes)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ConfigError(f"nao space: dropout must be a number in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)

    @property
    def settings(self) -> dict[str, Any]:
        return {**super().settings, "dropout": self.dropout}

    def build_network(self, genotype: Genotype, C: int = 36, num_classes: int = 10, layers: int = 20,
                      stem: str = "cifar", auxiliary: bool = False) -> CellNetwork:
        """The child network, with dropout (``self.dropout``) in front of the classifier."""
        net = super().build_network(genotype, C, num_classes, layers, stem, auxiliary)
        if self.dropout > 0:
            net.classifier = nn.Sequential(nn.Dropout(self.dropout), net.classifier)
        return net
