"""The NSGA-Net micro space (Lu et al., GECCO 2019), as benchmarked by Yang et al. 2020.

Two cells, 5 blocks (intermediate nodes) each. A block has two units; each unit picks one of nine ops
(``max_pool_3x3``, ``avg_pool_3x3``, ``skip_connect``, ``sep_conv_3x3``, ``sep_conv_5x5``,
``dil_conv_3x3``, ``dil_conv_5x5``, ``sep_conv_7x7``, ``conv_7x1_1x7``) and one input among all earlier
states, independently (NSGA-Net's bit string draws ``(op, input)`` per unit, so both units may read the
same state). The cell output is the concatenation of the blocks no block reads. The decisions are thus
ENAS-style with NSGA-Net's op set (:class:`~search_spaces.enas.EnasCellSpace`).

The final network differs (SPEC: 34 channels, filter increment 4, squeeze-excitation; NSGA-Net's
``PyramidNetworkCIFAR``): a squeeze-and-excitation gate on every cell's output, and a width that grows
by ``filter_increment`` channels after each cell instead of doubling at reductions. Both are settings
of the space, defaulting to SPEC's final network. NSGA-Net trained its *search* candidates without
either (a plain DARTS-style network): ``build_network(..., squeeze_excitation=False,
filter_increment=None)`` gives that network, and so does ``space_args: {squeeze_excitation: false,
filter_increment: null}``.
"""

from __future__ import annotations

from typing import Any

import torch

from nni_nas_bench.errors import ConfigError
from search_spaces.cell_space import build_cell_network
from search_spaces.cells import Cell, CellNetwork
from search_spaces.enas import EnasCellSpace
from search_spaces.genotype import Genotype
from search_spaces.ops import ChannelWeighting

_UNSET: Any = object()


class SqueezeExcitationCell(Cell):
    """A cell whose concatenated output is rescaled per channel by an SE gate (reduction 16)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # The op registry's channel weighting is an SE gate (pool → FC → ReLU → FC → sigmoid): reused.
        self.squeeze_excitation = ChannelWeighting(self.out_channels, stride=1)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: torch.Tensor | None = None) -> torch.Tensor:
        return self.squeeze_excitation(super().forward(s0, s1, drop_prob))


class NsgaNetCellSpace(EnasCellSpace):
    """NSGA-Net micro: ENAS-style decisions over NSGA-Net's nine ops; SE and pyramid widths in the network."""

    name = "nsganet"
    concat_unused_inputs = False  # NSGA-Net concatenates the unused blocks only, never the cell inputs

    def __init__(self, op_set: str = "nsganet", n_nodes: int = 5, squeeze_excitation: bool = True,
                 filter_increment: int | None = 4):
        super().__init__(op_set, n_nodes)
        self.squeeze_excitation = _check_se(squeeze_excitation)
        self.filter_increment = _check_increment(filter_increment)

    @property
    def settings(self) -> dict[str, Any]:
        return {**super().settings, "squeeze_excitation": self.squeeze_excitation,
                "filter_increment": self.filter_increment}

    def build_network(self, genotype: Genotype, C: int = 34, num_classes: int = 10, layers: int = 20,
                      stem: str = "cifar", auxiliary: bool = False, squeeze_excitation: bool | None = None,
                      filter_increment: int | None = _UNSET) -> CellNetwork:
        """The child network; the two keywords override the space's settings (search candidates: off)."""
        se = self.squeeze_excitation if squeeze_excitation is None else _check_se(squeeze_excitation)
        increment = self.filter_increment if filter_increment is _UNSET else _check_increment(filter_increment)
        return build_cell_network(self.validate(genotype), C, num_classes, layers, stem, auxiliary,
                                  cell_class=SqueezeExcitationCell if se else Cell, channel_increment=increment)


def _check_se(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"nsganet space: squeeze_excitation must be true or false, got {value!r}")
    return value


def _check_increment(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ConfigError(f"nsganet space: filter_increment must be an integer >= 0 or null (= double the "
                          f"width at reductions), got {value!r}")
    return value
