"""The named, ordered operation sets of the spaces (names only; the builders are :mod:`search_spaces.ops`).

Torch-free on purpose: a table lookup (NAS-Bench-201's tabular mode, its tuner and trials) needs the op
names of a set, and importing torch would cost each such process seconds.
"""

from __future__ import annotations

from nni_nas_bench.errors import unknown_name_error

OP_SETS: dict[str, tuple[str, ...]] = {
    # DARTS (Liu et al. 2019) PRIMITIVES, in the original order.
    "darts": ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
              "dil_conv_3x3", "dil_conv_5x5"),
    # SPEC experiment 3: a deliberately poor set inside the same cell (plain convs, pools, none, skip).
    "poor": ("none", "skip_connect", "conv_1x1", "conv_3x3", "conv_7x7", "conv_11x11", "max_pool_3x3",
             "max_pool_5x5"),
    # CNAS (Weng et al. 2019): SE-style channel weighting and a ShuffleNet unit replace the 5×5 convs.
    "cnas": ("none", "skip_connect", "cweight_com", "avg_pool_3x3", "max_pool_3x3", "sep_conv_3x3", "dil_conv_3x3",
             "shuffle_conv_3x3"),
    # NAS-Bench-201 (Dong & Yang 2020), in its index order (an op's position is its code in the table).
    "nb201": ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"),
    # ENAS micro (Pham et al. 2018) and NAO (Luo et al. 2018): SPEC's five ops, in ENAS's order.
    "enas": ("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "identity"),
    # NSGA-Net micro (Lu et al. 2019): its PRIMITIVES, in its order.
    "nsganet": ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
                "dil_conv_5x5", "sep_conv_7x7", "conv_7x1_1x7"),
}


def get_op_set(name: str) -> tuple[str, ...]:
    """The ordered op names of a set; unknown set names list the known ones."""
    try:
        return OP_SETS[name]
    except KeyError:
        raise unknown_name_error("op set", name, list(OP_SETS)) from None
