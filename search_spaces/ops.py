"""The operation registry shared by every cell-based space, supernet and child network.

An operation is a builder ``(C, stride, affine) -> nn.Module`` that maps ``C`` channels to ``C``
channels, halving the resolution when ``stride == 2``. An *op set* is the ordered list of names a
space chooses from; adding a set (SPEC experiment 3's "poor" set, CNAS's set) is one entry in
:data:`search_spaces.op_sets.OP_SETS`, adding an operation is one :func:`register_op` call.

Supernets build their mixed edges from the same builders (with ``affine=False``, as DARTS does), so
there is exactly one implementation of every operation.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from nni_nas_bench.errors import unknown_name_error

OpBuilder = Callable[[int, int, bool], nn.Module]
OPS: dict[str, OpBuilder] = {}


def register_op(name: str) -> Callable[[OpBuilder], OpBuilder]:
    """Decorator: store an op builder under ``name`` (one name, one implementation)."""

    def wrap(builder: OpBuilder) -> OpBuilder:
        if name in OPS:
            raise ValueError(f"operation {name!r} is registered twice")
        OPS[name] = builder
        return builder

    return wrap


def build_op(name: str, C: int, stride: int, affine: bool = True) -> nn.Module:
    """Instantiate a registered operation; unknown names get the list of known ones."""
    try:
        builder = OPS[name]
    except KeyError:
        raise unknown_name_error("operation", name, list(OPS)) from None
    return builder(C, stride, affine)


# ---------------------------------------------------------------------------------------------- blocks
class ReLUConvBN(nn.Sequential):
    """ReLU → conv → BN: the plain convolution of the DARTS family (also the cell preprocessing)."""

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU → depthwise (dilated) conv → pointwise conv → BN."""

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, dilation: int,
                 affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel, stride=stride, padding=padding, dilation=dilation, groups=C_in,
                      bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked depthwise-separable convs (the first carries the stride), as in DARTS."""

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            DilConv(C_in, C_in, kernel, stride, padding, 1, affine),
            DilConv(C_in, C_out, kernel, 1, padding, 1, affine),
        )


class Zero(nn.Module):
    """The ``none`` operation: zeros of the output shape (only meaningful inside a supernet)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing half the pixels: two offset stride-2 1×1 convs, concatenated."""

    def __init__(self, C_in: int, C_out: int, affine: bool = True):
        super().__init__()
        if C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {C_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        # Odd sizes (7×7 ImageNet features) would give the shifted branch one pixel less: pad first.
        shifted = nn.functional.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class ChannelWeighting(nn.Module):
    """CNAS's ``cweight_com``: rescale each channel by a weight computed from the whole feature map.

    A squeeze-and-excitation gate (global pool → FC → ReLU → FC → sigmoid). At stride 2 the weighted map
    is then reduced by a depthwise 3×3 stride-2 conv + BN, as in the CNAS code base.
    """

    def __init__(self, C: int, stride: int, affine: bool = True, reduction: int = 16):
        super().__init__()
        hidden = max(C // reduction, 1)  # small test networks (C < 16) still get a gate
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(C, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, C), nn.Sigmoid(),
        )
        self.reduce = None
        if stride == 2:
            self.reduce = nn.Sequential(nn.Conv2d(C, C, 3, stride=2, padding=1, groups=C, bias=False),
                                        nn.BatchNorm2d(C, affine=affine))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * self.gate(x)[:, :, None, None]
        return y if self.reduce is None else self.reduce(y)


class ShuffleConv(nn.Module):
    """CNAS's ``shuffle_conv_3x3``: a ShuffleNet unit (group 1×1 → shuffle → depthwise 3×3 → group 1×1).

    Output = ReLU(unit(x) + shortcut(x)), the shortcut being the identity, or a 3×3 stride-2 average
    pool when reducing. CNAS uses 4 groups; a width the groups do not divide (36 channels of the final
    networks) falls back to 2 or 1 group, the nearest valid unit.
    """

    def __init__(self, C: int, stride: int, affine: bool = True):
        super().__init__()
        groups = next(g for g in (4, 2, 1) if C % (g * g) == 0)
        mid = C // groups
        self.groups = groups
        self.squeeze = nn.Sequential(nn.Conv2d(C, mid, 1, groups=groups, bias=False),
                                     nn.BatchNorm2d(mid, affine=affine), nn.ReLU(inplace=True))
        self.spatial = nn.Sequential(nn.Conv2d(mid, mid, 3, stride=stride, padding=1, groups=mid, bias=False),
                                     nn.BatchNorm2d(mid, affine=affine))
        self.expand = nn.Sequential(nn.Conv2d(mid, C, 1, groups=groups, bias=False),
                                    nn.BatchNorm2d(C, affine=affine))
        self.shortcut = nn.AvgPool2d(3, stride=2, padding=1) if stride == 2 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.squeeze(x)
        n, c, h, w = y.shape
        y = y.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)  # channel shuffle
        y = self.expand(self.spatial(y))
        return torch.relu(y + self.shortcut(x))


class Identity(nn.Identity):
    """``skip_connect`` at stride 1; a named class so DropPath can tell it apart from real ops."""


class FactorizedConv(nn.Sequential):
    """``conv_7x1_1x7``: ReLU → 1×k conv → k×1 conv → BN (NASNet's factorised k×k convolution).

    The stride is split over the two convolutions (columns in the first, rows in the second) so that a
    reduction edge halves both sides.
    """

    def __init__(self, C: int, kernel: int, stride: int, affine: bool = True):
        pad = kernel // 2
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C, C, (1, kernel), stride=(1, stride), padding=(0, pad), bias=False),
            nn.Conv2d(C, C, (kernel, 1), stride=(stride, 1), padding=(pad, 0), bias=False),
            nn.BatchNorm2d(C, affine=affine),
        )


# ------------------------------------------------------------------------------------------ registry
@register_op("none")
def _none(C: int, stride: int, affine: bool) -> nn.Module:
    return Zero(stride)


@register_op("skip_connect")
def _skip(C: int, stride: int, affine: bool) -> nn.Module:
    return Identity() if stride == 1 else FactorizedReduce(C, C, affine)


# ENAS and NAO call the same operation ``identity``: one builder, registered under both names so their
# genotypes read as published.
register_op("identity")(_skip)


def _pool(kind: str, kernel: int) -> OpBuilder:
    def builder(C: int, stride: int, affine: bool) -> nn.Module:
        if kind == "max":
            return nn.MaxPool2d(kernel, stride=stride, padding=kernel // 2)
        return nn.AvgPool2d(kernel, stride=stride, padding=kernel // 2, count_include_pad=False)

    return builder


def _sep(kernel: int) -> OpBuilder:
    return lambda C, stride, affine: SepConv(C, C, kernel, stride, kernel // 2, affine)


def _dil(kernel: int) -> OpBuilder:
    return lambda C, stride, affine: DilConv(C, C, kernel, stride, kernel - 1, 2, affine)


def _conv(kernel: int) -> OpBuilder:
    return lambda C, stride, affine: ReLUConvBN(C, C, kernel, stride, kernel // 2, affine)


for _kind in ("max", "avg"):
    for _k in (3, 5):
        register_op(f"{_kind}_pool_{_k}x{_k}")(_pool(_kind, _k))
for _k in (3, 5, 7):
    register_op(f"sep_conv_{_k}x{_k}")(_sep(_k))
for _k in (3, 5):
    register_op(f"dil_conv_{_k}x{_k}")(_dil(_k))
for _k in (1, 3, 5, 7, 11):
    register_op(f"conv_{_k}x{_k}")(_conv(_k))
# NAS-Bench-201 (Dong & Yang 2020) names its ReLU → conv → BN ops "nor_conv"; same builder, its own names so
# NB201 architecture strings read as published.
for _k in (1, 3):
    register_op(f"nor_conv_{_k}x{_k}")(_conv(_k))
register_op("conv_7x1_1x7")(lambda C, stride, affine: FactorizedConv(C, 7, stride, affine))
register_op("cweight_com")(lambda C, stride, affine: ChannelWeighting(C, stride, affine))
register_op("shuffle_conv_3x3")(lambda C, stride, affine: ShuffleConv(C, stride, affine))
