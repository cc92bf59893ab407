"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020): 15,625 cells, all of them trained and tabulated.

A cell is a DAG of 4 nodes: node 0 is the cell input, node ``j`` (1..3) is the sum of one operation
applied to every earlier node, and the cell output is node 3. Each of the 6 edges picks one of 5 ops
(``none``, ``skip_connect``, ``nor_conv_1x1``, ``nor_conv_3x3``, ``avg_pool_3x3``; ``none`` is a real
choice here: it removes the edge), so every combination is a valid cell and the space has 5^6 cells.

Published form (NB201's ``arch str``), node ``j``'s inputs ``op~i`` from nodes ``i < j``::

    |nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|

The decisions are one NNI categorical per edge, labelled ``edge_<node>_<input>`` (``edge_1_0`` ...).
An architecture's *code* is its ops' positions in :data:`NB201_OPS` read as a base-5 number (edge
``edge_1_0`` least significant); NB201's own *index* (the table row) is a different, published order, so
the mapping code ↔ index comes from the tables (:mod:`nni_nas_bench.tabular.table`), never from here.

The macro network is NB201's: a 3×3 conv stem with BN, three stages of ``layers`` cells (16/32/64
channels at the default ``C=16``) joined by residual reduction blocks (ResNet basic blocks with stride
2), then BN-ReLU, global pooling and a linear classifier. Operations are the shared registry's
(:mod:`search_spaces.ops`), ReLU → conv → BN as in NB201.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from nni_nas_bench.errors import ConfigError, GenotypeError
from search_spaces.nb201_arch import (
    EDGES,
    LABELS,
    N_NODES,
    NB201_OPS,
    NUM_ARCHS,
    OP_CODE,
    NB201Arch,
    nb201_mflops,
    ops_by_code,
)
from search_spaces.ops import ReLUConvBN, Zero, build_op
from search_spaces.supernet import EdgeWeights, FixedRows, MixedOp, Sampler

# ------------------------------------------------------------------------------------------- network
EdgeFactory = Callable[[int, int], nn.Module]  # (node, input) -> the module on that edge


class NB201Cell(nn.Module):
    """One NB201 cell; what an edge *is* comes from a factory (one op in a child, a mixed op in a supernet)."""

    def __init__(self, make_edge: EdgeFactory):
        super().__init__()
        self.edges = nn.ModuleList(make_edge(node, src) for node, src in EDGES)
        # `none` edges add exactly zero: a child network skips them instead of computing zeros.
        self._live = [not isinstance(e, Zero) for e in self.edges]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        k = 0
        for node in range(1, N_NODES):
            total = None
            for src in range(node):
                if self._live[k]:
                    h = self.edges[k](nodes[src])
                    total = h if total is None else total + h
                k += 1
            nodes.append(torch.zeros_like(x) if total is None else total)
        return nodes[-1]


class ResidualReduction(nn.Module):
    """NB201's reduction block: a ResNet basic block with stride 2 (ReLU-conv-BN ×2 + pooled 1×1 shortcut)."""

    def __init__(self, C_in: int, C_out: int, affine: bool = True):
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, 2, 1, affine)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1, affine)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(C_in, C_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """Stem → 3 stages of ``layers`` cells (C, 2C, 4C channels) with residual reductions → BN-ReLU → pool → linear.

    ``make_cell(C)`` builds a cell of ``C`` channels. The same skeleton serves child networks and the
    supernet, so a searched cell is evaluated in the network it was searched in.
    """

    def __init__(self, make_cell: Callable[[int], nn.Module], C: int = 16, num_classes: int = 10, layers: int = 5,
                 affine: bool = True):
        super().__init__()
        if layers < 1:
            raise ConfigError(f"an NB201 network needs at least 1 cell per stage, got layers={layers}")
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        blocks: list[nn.Module] = []
        for stage, width in enumerate((C, 2 * C, 4 * C)):
            if stage:
                blocks.append(ResidualReduction(width // 2, width, affine))
            blocks.extend(make_cell(width) for _ in range(layers))
        self.cells = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.BatchNorm2d(4 * C), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(4 * C, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(self.cells(self.stem(x))))


def build_nb201_network(arch: NB201Arch, C: int = 16, num_classes: int = 10, layers: int = 5) -> NB201Network:
    """The child network of a cell (NB201's tabulated networks: ``C=16``, ``layers=5``)."""

    def make_cell(width: int) -> NB201Cell:
        return NB201Cell(lambda node, src: build_op(arch.op(node, src), width, 1))

    return NB201Network(make_cell, C, num_classes, layers)


# ------------------------------------------------------------------------------------------- the space
class NB201Space:
    """The NB201 space: one categorical per edge, uniform sampler, text form, child networks and a supernet.

    Offers what every space offers (:class:`search_spaces.darts.DartsCellSpace` is the reference); the
    architecture objects are :class:`NB201Arch` (``.to_text()`` is NB201's string). It has no settings:
    the space is fixed by the benchmark.
    """

    name = "nb201"
    n_nodes = N_NODES
    candidate_ops = NB201_OPS  # what a supernet edge mixes ('none' included)
    ops = NB201_OPS            # what a child edge may hold ('none' included: it is a real NB201 choice)

    def __init__(self) -> None:
        from nni.mutable import Categorical, MutableDict

        self.mutables = MutableDict({label: Categorical(list(NB201_OPS), label=label) for label in LABELS})

    def __repr__(self) -> str:
        return "NB201Space()"

    @property
    def settings(self) -> dict[str, Any]:
        """No settings: the space is NB201's own."""
        return {}

    def num_architectures(self) -> int:
        """5^6 = 15,625 cells."""
        return NUM_ARCHS

    # ------------------------------------------------------------------------------------ sampling
    def random_sample(self, random_state: np.random.RandomState) -> dict[str, str]:
        """A uniform sample ``{label: op}``: each edge's op drawn independently and uniformly.

        Drawn from one integer code rather than six categoricals: the same distribution, and fast
        enough for the 1.8 million draws of the tabular table (the ops of every code are tabulated once).
        """
        return dict(zip(LABELS, ops_by_code()[random_state.randint(NUM_ARCHS)]))

    def sample(self, seed: int | np.random.RandomState) -> NB201Arch:
        """A uniformly random cell; the same integer seed always gives the same cell."""
        rng = seed if isinstance(seed, np.random.RandomState) else np.random.RandomState(seed)
        return self.to_genotype(self.random_sample(rng))

    # ------------------------------------------------------------------------------------- mapping
    def to_genotype(self, sample: Mapping[str, Any]) -> NB201Arch:
        """The cell of a sample dict (unknown or missing labels are an error naming them)."""
        missing = [label for label in LABELS if label not in sample]
        if missing:
            raise GenotypeError(f"NB201 sample misses edges {missing}; got labels {sorted(sample)}")
        return NB201Arch(tuple(sample[label] for label in LABELS))

    def to_sample(self, arch: NB201Arch) -> dict[str, str]:
        """The sample dict of a cell."""
        return self.validate(arch).to_sample()

    def code(self, sample: Mapping[str, Any]) -> int:
        """The base-5 code of a sample (what the tabular evaluator indexes its lookup array with)."""
        try:
            return sum(OP_CODE[sample[label]] * 5**k for k, label in enumerate(LABELS))
        except KeyError as exc:
            raise GenotypeError(f"not an NB201 sample ({exc} unknown or missing): {dict(sample)}") from None

    def validate(self, arch: NB201Arch) -> NB201Arch:
        """Raise :class:`GenotypeError` unless ``arch`` is an NB201 cell (every 6-op cell is)."""
        if not isinstance(arch, NB201Arch):
            raise GenotypeError(f"expected an NB201 cell (NB201Arch), got {type(arch).__name__}: {arch!r}")
        return arch

    def parse(self, text: str) -> NB201Arch:
        """Read NB201's ``arch str``."""
        return NB201Arch.from_text(text)

    def flops(self, sample: Mapping[str, Any]) -> float:
        """Multiply-adds (millions) of the tabulated network (C=16, 5 cells per stage, 32 px, 10 classes)."""
        return nb201_mflops(self.to_genotype(sample))

    # ------------------------------------------------------------------------------------ networks
    def build_network(self, arch: NB201Arch, C: int = 16, num_classes: int = 10, layers: int = 5,
                      stem: str = "cifar", auxiliary: bool = False) -> NB201Network:
        """The child network (``layers`` = cells per stage). NB201 networks have no auxiliary head.

        ``stem`` is accepted for the common interface; NB201 uses its 3×3 stem for all of its 32- and
        16-pixel datasets, so 'cifar' and 'imagenet' (ImageNet16-120) build the same network.
        """
        _check_stem_aux(stem, auxiliary)
        return build_nb201_network(self.validate(arch), C, num_classes, layers)

    def build_supernet(self, C: int = 16, num_classes: int = 10, layers: int = 5, stem: str = "cifar",
                       generator: torch.Generator | None = None) -> NB201Supernet:
        """The one-shot supernet DARTS searches this space with (see :class:`NB201Supernet`)."""
        _check_stem_aux(stem, False)
        return NB201Supernet(self, C, num_classes, layers, generator)


def _check_stem_aux(stem: str, auxiliary: bool) -> None:
    if stem not in ("cifar", "imagenet"):
        raise ConfigError(f"stem must be 'cifar' or 'imagenet', got {stem!r}")
    if auxiliary:
        raise ConfigError("NB201 networks have no auxiliary head: use a training protocol with auxiliary_weight 0")


# ------------------------------------------------------------------------------------------- supernet
class NB201Supernet(FixedRows, nn.Module):
    """Every NB201 op on every edge, mixed by softmax(α); one α (6 edges × 5 ops) shared by all cells.

    As in NB201's own DARTS baseline the reduction blocks are fixed, so there is no reduction α:
    ``alpha_reduce`` is an empty tensor, kept so that code recording ``alpha_normal``/``alpha_reduce``
    per epoch (the DARTS strategy's history) works unchanged. The mixed edges are the DARTS supernet's
    :class:`~search_spaces.supernet.MixedOp` (non-affine ops, BN behind pools), built from the registry;
    fixed rows (DARTS-PT) and a ``sampler`` (GDAS: one op per edge) work as in the DARTS supernet.
    """

    cell_types = ("normal",)

    def __init__(self, space: NB201Space, C: int = 16, num_classes: int = 10, layers: int = 5,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.space = space
        self.candidate_ops = tuple(space.candidate_ops)
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(len(EDGES), len(self.candidate_ops), generator=generator))
        self.register_buffer("alpha_reduce", torch.zeros(0, len(self.candidate_ops)), persistent=False)
        self.edge_ops = {"normal": [list(self.candidate_ops) for _ in EDGES]}
        self.init_fixed_rows({"normal": torch.ones(len(EDGES), len(self.candidate_ops), dtype=torch.bool)},
                             restricted=False)
        self.sampler: Sampler | None = None
        self._weights = EdgeWeights()

        def make_cell(width: int) -> NB201Cell:
            return NB201Cell(lambda node, src: MixedOp(self.candidate_ops, width, 1, self._weights,
                                                       EDGES.index((node, src))))

        self.network = NB201Network(make_cell, C, num_classes, layers, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._weights.set(self.edge_weights("normal"), self.sampler, self.training)
        try:
            return self.network(x)
        finally:
            self._weights.clear()  # do not keep this forward's graph alive

    def arch_parameters(self) -> list[nn.Parameter]:
        """α (what the architecture optimizer updates)."""
        return [self.alpha_normal]

    def named_weight_parameters(self) -> Sequence[tuple[str, nn.Parameter]]:
        """Network weights w with their names in this module (everything except α)."""
        return [(f"network.{name}", p) for name, p in self.network.named_parameters()]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Network weights w (what the weight optimizer updates)."""
        return [p for _, p in self.named_weight_parameters()]

    def alpha_weights(self) -> dict[str, torch.Tensor]:
        """softmax(α) with fixed rows in place (detached, CPU): rows = edges in :data:`EDGES` order, columns = ops."""
        with torch.no_grad():
            return {"normal": self.edge_weights("normal").cpu()}

    def genotype(self) -> NB201Arch:
        """The cell of the current α: the strongest op of every edge, ``none`` included (ties: lower op)."""
        w = self.alpha_weights()["normal"].numpy()
        return NB201Arch(tuple(self.candidate_ops[int(np.argmax(row))] for row in w))
