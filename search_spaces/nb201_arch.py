"""A NAS-Bench-201 cell as data (:class:`NB201Arch`): its ops, text form, base-5 code and analytic MFLOPs.

Torch-free on purpose: the tabular mode (tuner, trials, evaluator) works on cells it never builds, and
importing torch would cost every such process seconds. The space, its networks and supernets are
:mod:`search_spaces.nb201`, whose docstring describes the cell and its forms.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

from nni_nas_bench.errors import GenotypeError
from search_spaces.op_sets import get_op_set

NB201_OPS: tuple[str, ...] = get_op_set("nb201")
N_NODES = 4
# (node, input) of every edge, in the order of the text form: node 1's input, node 2's two, node 3's three.
EDGES: tuple[tuple[int, int], ...] = tuple((j, i) for j in range(1, N_NODES) for i in range(j))
LABELS: tuple[str, ...] = tuple(f"edge_{j}_{i}" for j, i in EDGES)
NUM_ARCHS = len(NB201_OPS) ** len(EDGES)
OP_CODE = {op: k for k, op in enumerate(NB201_OPS)}
_PARAMETRIC_MACS = {"nor_conv_1x1": 1, "nor_conv_3x3": 9}  # multiply-adds per C²·H·W of each op


@dataclass(frozen=True)
class NB201Arch:
    """One NB201 cell: the op of each edge, in :data:`EDGES` order. Immutable and hashable."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        ops = tuple(str(op) for op in self.ops)
        object.__setattr__(self, "ops", ops)
        if len(ops) != len(EDGES):
            raise GenotypeError(f"an NB201 cell has {len(EDGES)} edges, got {len(ops)} ops: {list(ops)}")
        for (node, src), op in zip(EDGES, ops):
            if op not in OP_CODE:
                raise GenotypeError(f"edge {src}->{node}: operation {op!r} is not an NB201 op ({', '.join(NB201_OPS)})")

    def op(self, node: int, src: int) -> str:
        """The operation on the edge from node ``src`` into node ``node``."""
        return self.ops[EDGES.index((node, src))]

    @property
    def code(self) -> int:
        """The base-5 code of the cell (see the module docstring; not NB201's table index)."""
        return sum(OP_CODE[op] * len(NB201_OPS) ** k for k, op in enumerate(self.ops))

    @classmethod
    def from_code(cls, code: int) -> NB201Arch:
        """The cell of a base-5 code in ``[0, 15625)``."""
        if not 0 <= int(code) < NUM_ARCHS:
            raise GenotypeError(f"NB201 code must be in [0, {NUM_ARCHS}), got {code}")
        code, ops = int(code), []
        for _ in EDGES:
            code, k = divmod(code, len(NB201_OPS))
            ops.append(NB201_OPS[k])
        return cls(tuple(ops))

    def to_sample(self) -> dict[str, str]:
        """The NNI sample ``{edge label: op}`` of the cell (what the space and the tabular evaluator read)."""
        return dict(zip(LABELS, self.ops))

    def to_text(self) -> str:
        """NB201's ``arch str`` (``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``)."""
        nodes = ["|" + "|".join(f"{self.op(j, i)}~{i}" for i in range(j)) + "|" for j in range(1, N_NODES)]
        return "+".join(nodes)

    __str__ = to_text

    @classmethod
    def from_text(cls, text: str) -> NB201Arch:
        """Parse NB201's ``arch str``; every malformed part gets a message naming it."""
        if not isinstance(text, str):
            raise GenotypeError(f"an NB201 architecture is a string like {_EXAMPLE!r}, got {type(text).__name__}")
        parts = text.strip().split("+")
        if len(parts) != N_NODES - 1:
            raise GenotypeError(f"an NB201 architecture has {N_NODES - 1} '+'-separated nodes, like {_EXAMPLE!r}; "
                                f"got {text[:200]!r}")
        ops: dict[tuple[int, int], str] = {}
        for node, part in enumerate(parts, start=1):
            if not (part.startswith("|") and part.endswith("|")):
                raise GenotypeError(f"node {node} of {text[:200]!r} must read |op~0|...|, got {part!r}")
            edges = part[1:-1].split("|")
            if len(edges) != node:
                raise GenotypeError(f"node {node} of {text[:200]!r} needs {node} inputs, got {len(edges)}")
            for edge in edges:
                op, _, src = edge.partition("~")
                if not (src.isascii() and src.isdigit()) or int(src) >= node or (node, int(src)) in ops:
                    raise GenotypeError(f"node {node} of {text[:200]!r}: bad input in {edge!r} "
                                        f"(each of 0..{node - 1} once)")
                ops[(node, int(src))] = op
        return cls(tuple(ops[e] for e in EDGES))


@functools.cache
def ops_by_code() -> tuple[tuple[str, ...], ...]:
    """The ops of every cell, indexed by base-5 code (tabulated once per process: samplers draw a code and
    look it up, 15,625 tuples instead of a validated :class:`NB201Arch` per draw)."""
    digits = itertools.product(NB201_OPS, repeat=len(EDGES))  # the first edge varies slowest here,
    return tuple(ops[::-1] for ops in digits)  # and least significant in a code: reversed


_EXAMPLE = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
# The ResNet cell of NB201 (its table index 11472): what tests and docs use as a known architecture.
RESNET_CELL = NB201Arch.from_text(_EXAMPLE)


def nb201_mflops(arch: NB201Arch, C: int = 16, num_classes: int = 10, layers: int = 5, image_size: int = 32) -> float:
    """Multiply-adds (millions) of the convolutions and the classifier, counted analytically.

    BN, pooling and additions are left out (they are a few percent and the same kind in every cell), so
    the count is exact for what it counts and needs no network: a search can ask it for every query.
    """
    macs = 3 * C * 9 * image_size**2  # stem
    per_cell = sum(_PARAMETRIC_MACS.get(op, 0) for op in arch.ops)
    hw = image_size**2
    for stage, width in enumerate((C, 2 * C, 4 * C)):
        if stage:
            hw //= 4
            macs += 9 * (width // 2) * width * hw + 9 * width * width * hw + (width // 2) * width * hw
        macs += layers * per_cell * width * width * hw
    return (macs + 4 * C * num_classes) / 1e6
