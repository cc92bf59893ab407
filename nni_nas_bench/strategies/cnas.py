"""CNAS (Weng et al. 2019), as benchmarked by Yang et al. 2020: first-order DARTS with its own cell.

What differs from DARTS is the space (the ``cnas`` op set: SE-style channel weighting and a ShuffleNet
unit instead of the 5×5 convolutions, and 6 nodes per cell: ``space_args: {op_set: cnas, n_nodes: 6}``)
and the search protocol of SPEC: first order, 60 epochs (the code's README says 50), 6 cells, batch 64,
cutout during the search. The search itself is DARTS's, so it is inherited, not rewritten.
"""

from __future__ import annotations

from typing import Any

from nni_nas_bench.strategies import register_strategy
from nni_nas_bench.strategies.darts import DartsStrategy


@register_strategy("cnas")
class CnasStrategy(DartsStrategy):
    """DARTS with CNAS's search defaults; every DARTS setting can still be given."""

    def __init__(self, *, order: int = 1, epochs: int = 60, layers: int = 6, batch_size: int = 64,
                 cutout: int = 16, **settings: Any):
        super().__init__(order=order, epochs=epochs, layers=layers, batch_size=batch_size, cutout=cutout,
                         **settings)
