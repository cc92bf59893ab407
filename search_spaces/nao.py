"""The NAO cell space (Luo et al., NeurIPS 2018, weight-sharing variant), as benchmarked by Yang et al.

SPEC: 5 nodes, the five ops of ENAS (``sep_conv_3x3``, ``sep_conv_5x5``, ``avg_pool_3x3``,
``max_pool_3x3``, ``identity``). NAO's encoding is a node's ``(input, op, input, op)``, each input any
earlier state, drawn independently (NAO's weight-sharing search space is ENAS's), and its cell output is
the concatenation of unused states (cell inputs included), so the decisions are exactly those of
:class:`~search_spaces.enas.EnasCellSpace`. What differs is the final network: NAO trains it with
dropout 0.4 before the classifier (SPEC "Per-method differences"), a setting of this space
(``dropout``) because the trial builds networks through the space.
"""

from __future__ import annotations

from typing import Any

from search_spaces.enas import EnasCellSpace


class NaoCellSpace(EnasCellSpace):
    """ENAS's decisions under NAO's name, with NAO's classifier dropout (0.4) in the final network."""

    name = "nao"

    def __init__(self, op_set: str = "enas", n_nodes: int = 5, dropout: float = 0.4):
        super().__init__(op_set, n_nodes, dropout)

    @property
    def settings(self) -> dict[str, Any]:
        return {**super().settings, "dropout": self.dropout}  # always: its default is not 0
