"""The MobileNetV2-style chain space of Single-Path NAS (Stamoulis et al. 2019), for 224-px and 32-px inputs.

A fixed macro-architecture (MobileNetV2's, with MnasNet's stage widths as in Single-Path NAS): a 3×3
stem conv to 32 channels, 22 searchable MBConv layers in 7 stages, a 1×1 conv to 1280 channels,
global pooling and a linear classifier. Stages (output channels × layers, stride of the first layer):

========  =====  =====  ======  ======  ======  =======  =======
stage       1      2      3       4       5       6        7
========  =====  =====  ======  ======  ======  =======  =======
channels   16     24     40      80      96      192      320
layers      1      4      4       4       4       4        1
224 px      1      2      2       2       1       2        1     (stem stride 2: 112 → 7)
32 px       1      1      2       2       1       2        1     (stem stride 1: 32 → 4)
========  =====  =====  ======  ======  ======  =======  =======

Each layer is an inverted-residual block (1×1 expand, k×k depthwise, 1×1 project, identity shortcut
when the shape is kept) choosing kernel 3 or 5 × expansion 3 or 6 (``k3e3``, ``k3e6``, ``k5e3``,
``k5e6``), or ``skip`` (the identity) — except the first layer of a stage, which changes the shape and so
cannot be skipped: 7 layers with 4 choices, 15 with 5. The CIFAR variant keeps the space and only
adapts the strides (stem and stage 2 at stride 1), so an architecture means the same in both.

Text form (what ``parse``/``to_text`` round-trip, and what trial parameters carry): the 22 choices in
order, stages separated by ``|``::

    k3e3 | k5e6 k3e3 skip skip | k5e3 k5e3 k3e6 skip | ... | k3e6

The decisions are one NNI ``Categorical`` per layer (``layer_00`` … ``layer_21``), so drawing each
uniformly draws the architecture uniformly (``tests/test_mobilenet_space.py`` checks the frequencies).
The predicted latency of an architecture comes from a per-layer table (:mod:`nni_nas_bench.latency`,
the Pixel-1 table unless ``latency_table`` names another): ``space.latency_ms(arch)``, which every
trial of this space adds to its final metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from nni_nas_bench.errors import ConfigError, GenotypeError
from nni_nas_bench.latency import CHOICES, PIXEL1, SKIP, LatencyTable, load_latency_table
from search_spaces.cells import drop_path

STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
# (output channels, layers, first-layer stride at 224 px, at 32 px)
STAGES: tuple[tuple[int, int, int, int], ...] = (
    (16, 1, 1, 1), (24, 4, 2, 1), (40, 4, 2, 2), (80, 4, 2, 2), (96, 4, 1, 1), (192, 4, 2, 2), (320, 1, 1, 1),
)
OPS = CHOICES  # ('k3e3', 'k3e6', 'k5e3', 'k5e6'): kernel × expansion, the latency table's column order


@dataclass(frozen=True)
class LayerSpec:
    """One searchable layer: where it is and what it may be."""

    index: int
    stage: int
    c_in: int          # at width multiplier 1
    c_out: int
    stride: int        # 224-px variant
    cifar_stride: int  # 32-px variant
    skippable: bool    # keeps its shape (not the first layer of a stage)

    @property
    def ops(self) -> tuple[str, ...]:
        return (*OPS, SKIP) if self.skippable else OPS


def layer_specs() -> tuple[LayerSpec, ...]:
    """The 22 searchable layers in order."""
    specs, c_in = [], STEM_CHANNELS
    for stage, (c_out, n, stride, cifar_stride) in enumerate(STAGES):
        for i in range(n):
            first = i == 0
            specs.append(LayerSpec(len(specs), stage, c_in, c_out, stride if first else 1,
                                   cifar_stride if first else 1, skippable=not first))
            c_in = c_out
    return tuple(specs)


LAYERS = layer_specs()


def parse_op(op: str) -> tuple[int, int]:
    """``'k5e3'`` -> (kernel 5, expansion 3)."""
    if op not in OPS:
        raise GenotypeError(f"unknown layer choice {op!r}; choose one of {', '.join(OPS)} or {SKIP!r}")
    return int(op[1]), int(op[3])


@dataclass(frozen=True)
class MobileArch:
    """An architecture of the space: one choice per searchable layer."""

    ops: tuple[str, ...]

    def to_text(self) -> str:
        """The choices in order, stages separated by ``|`` (see the module docstring)."""
        stages: dict[int, list[str]] = {}
        for spec, op in zip(LAYERS, self.ops):
            stages.setdefault(spec.stage, []).append(op)
        return " | ".join(" ".join(ops) for ops in stages.values())

    @classmethod
    def from_text(cls, text: str) -> MobileArch:
        """Read the text form; the stage structure must be the space's."""
        if not isinstance(text, str):
            raise GenotypeError(f"an architecture of the mobilenet space is text, got {type(text).__name__}")
        stages = [part.split() for part in text.split("|")]
        expected = [n for _, n, _, _ in STAGES]
        if [len(s) for s in stages] != expected:
            raise GenotypeError(f"expected {len(expected)} stages of {expected} layers separated by '|', got "
                                f"{[len(s) for s in stages]} in {text!r}")
        return cls(tuple(op for stage in stages for op in stage))

    def __str__(self) -> str:
        return self.to_text()


# ----------------------------------------------------------------------------------------- networks
def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor``, never more than 10 % down (MobileNetV2's rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, relu: bool = True) -> nn.Sequential:
    """Conv → BN (→ ReLU): MobileNetV2's unit; ReLU rather than ReLU6, as MnasNet and Single-Path NAS."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(c_out)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """Inverted residual: 1×1 expand → k×k depthwise → 1×1 project, plus the input when the shape is kept."""

    def __init__(self, c_in: int, c_out: int, kernel: int, expansion: int, stride: int):
        super().__init__()
        mid = c_in * expansion
        self.residual = stride == 1 and c_in == c_out
        self.body = nn.Sequential(conv_bn(c_in, mid, 1), conv_bn(mid, mid, kernel, stride, groups=mid),
                                  conv_bn(mid, c_out, 1, relu=False))

    def forward(self, x: torch.Tensor, drop_prob: torch.Tensor | None = None) -> torch.Tensor:
        out = self.body(x)
        if not self.residual:
            return out
        return x + (drop_path(out, drop_prob) if drop_prob is not None else out)


class Skip(nn.Module):
    """A skipped layer."""

    def forward(self, x: torch.Tensor, drop_prob: torch.Tensor | None = None) -> torch.Tensor:
        return x


# (layer spec, input channels, output channels, stride) -> the module of that layer
LayerFactory = Callable[[LayerSpec, int, int, int], nn.Module]


class MobileNetChain(nn.Module):
    """Stem → the 22 layers (built by a factory) → 1×1 conv to 1280 → global pool → linear.

    The child network and the Single-Path NAS superkernel network are both this class with different
    layer factories, so they share stem, widths, strides and head. ``width_mult`` scales every width
    (rounded to multiples of 8); the head stays 1280 wide below 1, as in MobileNetV2. DropPath acts on
    the residual branches (``drop_path_prob`` is the buffer the trainer ramps every epoch).
    """

    def __init__(self, make_layer: LayerFactory, width_mult: float = 1.0, num_classes: int = 10,
                 stem: str = "imagenet"):
        super().__init__()
        if stem not in ("cifar", "imagenet"):
            raise ConfigError(f"stem must be 'cifar' (32 px) or 'imagenet' (224 px), got {stem!r}")
        if not width_mult > 0:
            raise ConfigError(f"width multiplier must be > 0, got {width_mult}")
        self.register_buffer("drop_path_prob", torch.zeros(()), persistent=False)
        self.drop_path_enabled = True
        cifar = stem == "cifar"
        width = [make_divisible(STEM_CHANNELS * width_mult)] + [make_divisible(c * width_mult) for c, *_ in STAGES]
        self.stem = conv_bn(3, width[0], 3, 1 if cifar else 2)
        self.layers = nn.ModuleList()
        c_in = width[0]
        for spec in LAYERS:
            c_out = width[spec.stage + 1]
            self.layers.append(make_layer(spec, c_in, c_out, spec.cifar_stride if cifar else spec.stride))
            c_in = c_out
        head = make_divisible(HEAD_CHANNELS * max(1.0, width_mult))
        self.head = conv_bn(c_in, head, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(head, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        drop = self.drop_path_prob if self.training and self.drop_path_enabled else None
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x, drop)
        return self.pool(self.head(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def width_multiplier(C: int) -> float:
    """The width multiplier of a protocol's ``channels``: C / 32 (32 = MobileNetV2's stem width)."""
    return C / STEM_CHANNELS


# ------------------------------------------------------------------------------------------- space
class MobileNetSpace:
    """The Single-Path NAS space: decisions, uniform sampler, text form, child networks, predicted latency.

    ``latency_table``: ``'pixel1'`` (Single-Path NAS's Pixel-1 table, the default) or the path of a table
    in the same JSON layout (e.g. measured on your own device with ``benchmarks/measure_latency.py``).
    It is read on first use, so building the space (tuners, config checks) never needs the file.
    """

    name = "mobilenet_sp"

    def __init__(self, latency_table: str = PIXEL1):
        from nni.mutable import Categorical, MutableDict

        if not isinstance(latency_table, str) or not latency_table:
            raise ConfigError(f"latency_table must be 'pixel1' or a JSON path, got {latency_table!r}")
        self.latency_table = latency_table
        self.layer_specs = LAYERS
        self.mutables = MutableDict({self.label(s.index): Categorical(list(s.ops), label=self.label(s.index))
                                     for s in LAYERS})

    @staticmethod
    def label(index: int) -> str:
        return f"layer_{index:02d}"

    def __repr__(self) -> str:
        return f"MobileNetSpace(latency_table={self.latency_table!r})"

    @property
    def settings(self) -> dict[str, Any]:
        """The constructor arguments: recorded with every result so the space can be rebuilt."""
        return {"latency_table": self.latency_table}

    def num_architectures(self) -> int:
        return int(np.prod([len(s.ops) for s in LAYERS], dtype=object))

    # ------------------------------------------------------------------------------------ sampling
    def random_sample(self, random_state: np.random.RandomState) -> dict[str, Any]:
        """A uniform sample ``{label: choice}`` drawn from the caller's generator."""
        return self.mutables.random(random_state=random_state)

    def sample(self, seed: int | np.random.RandomState) -> MobileArch:
        """A uniformly random architecture; the same integer seed always gives the same one."""
        rng = seed if isinstance(seed, np.random.RandomState) else np.random.RandomState(seed)
        return self.to_genotype(self.random_sample(rng))

    # ------------------------------------------------------------------------------------- mapping
    def to_genotype(self, sample: Mapping[str, Any]) -> MobileArch:
        self.mutables.check_contains(dict(sample))
        return MobileArch(tuple(sample[self.label(s.index)] for s in LAYERS))

    def to_sample(self, arch: MobileArch) -> dict[str, Any]:
        self.validate(arch)
        return {self.label(s.index): op for s, op in zip(LAYERS, arch.ops)}

    def validate(self, arch: MobileArch) -> MobileArch:
        """Raise :class:`GenotypeError` unless ``arch`` belongs to this space."""
        if not isinstance(arch, MobileArch):
            raise GenotypeError(f"expected a MobileArch, got {type(arch).__name__}")
        if len(arch.ops) != len(LAYERS):
            raise GenotypeError(f"expected {len(LAYERS)} layer choices, got {len(arch.ops)}")
        for spec, op in zip(LAYERS, arch.ops):
            if op not in spec.ops:
                why = " (the first layer of a stage changes the shape: it cannot skip)" if op == SKIP else ""
                raise GenotypeError(f"layer {spec.index}: {op!r} is not one of {', '.join(spec.ops)}{why}")
        return arch

    def parse(self, text: str) -> MobileArch:
        """Read and validate the text form."""
        return self.validate(MobileArch.from_text(text))

    # ------------------------------------------------------------------------------------- latency
    @property
    def latency(self) -> LatencyTable:
        """The latency table (read once per process), checked against the space's number of layers."""
        table = load_latency_table(self.latency_table)
        if table.num_layers != len(LAYERS):
            raise ConfigError(f"latency table {table.source} has {table.num_layers} layers; this space has "
                              f"{len(LAYERS)}")
        return table

    def latency_ms(self, arch: MobileArch) -> float:
        """Predicted latency of ``arch`` in ms: fixed part + each layer's table entry (or the skip cost)."""
        return self.latency.latency_ms(self.validate(arch).ops)

    # ------------------------------------------------------------------------------------- networks
    def build_network(self, arch: MobileArch, C: int = STEM_CHANNELS, num_classes: int = 10,
                      layers: int | None = None, stem: str = "imagenet", auxiliary: bool = False) -> MobileNetChain:
        """The child network of ``arch``.

        The trial's cell-network arguments map as follows: ``C`` is the stem width (width multiplier
        C/32: 32 is MobileNetV2 1.0); ``stem`` picks the 32-px ('cifar') or 224-px ('imagenet') strides.
        The depth is the space's (22 layers): ``layers`` must be None or 22, and there is no auxiliary
        head, so ``auxiliary`` must be False; both raise rather than being ignored, because a protocol
        that asks for them would be recorded as something that did not happen (the ``single_path``
        training preset sets layers 22 and no auxiliary head).
        """
        self.validate(arch)
        if layers is not None and layers != len(LAYERS):
            raise ConfigError(f"the mobilenet space has a fixed depth of {len(LAYERS)} layers, the protocol asks "
                              f"for layers={layers}: use protocol preset 'single_path' or set layers: {len(LAYERS)}")
        if auxiliary:
            raise ConfigError("the mobilenet space has no auxiliary head: set the protocol's auxiliary_weight to 0 "
                              "(preset 'single_path' does)")

        def make_layer(spec: LayerSpec, c_in: int, c_out: int, stride: int) -> nn.Module:
            op = arch.ops[spec.index]
            if op == SKIP:
                return Skip()
            kernel, expansion = parse_op(op)
            return MBConv(c_in, c_out, kernel, expansion, stride)

        return MobileNetChain(make_layer, width_multiplier(C), num_classes, stem)

