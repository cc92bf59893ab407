"""Genotypes of cell-based spaces, in the text notation of the DARTS code base.

A genotype lists, for each intermediate node of the normal and of the reduction cell, its two incoming
edges as ``(op_name, input_index)``; inputs 0 and 1 are the two previous cells' outputs and ``k >= 2``
is intermediate node ``k - 2``. The text form is what papers and repositories publish::

    Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...], normal_concat=range(2, 6),
             reduce=[...], reduce_concat=range(2, 6))

It is parsed with :mod:`ast` (never ``eval``), so a trial can read a genotype from its NNI parameters
safely, and it contains neither ``#`` nor ``//`` (NNI's tuner channel corrupts messages with those).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nni_nas_bench.errors import GenotypeError

Edge = tuple[str, int]
_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")


@dataclass(frozen=True)
class Genotype:
    """A discrete cell architecture (normal + reduction cell), immutable and hashable."""

    normal: tuple[Edge, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Edge, ...]
    reduce_concat: tuple[int, ...]

    def __post_init__(self) -> None:
        # Normalise lists (and range objects) to tuples so equal genotypes compare and hash equal.
        for field in ("normal", "reduce"):
            object.__setattr__(self, field, tuple((str(op), int(i)) for op, i in getattr(self, field)))
        for field in ("normal_concat", "reduce_concat"):
            object.__setattr__(self, field, tuple(int(i) for i in getattr(self, field)))

    @property
    def n_nodes(self) -> int:
        """Number of intermediate nodes (two edges per node)."""
        return len(self.normal) // 2

    def cell(self, reduction: bool) -> tuple[tuple[Edge, ...], tuple[int, ...]]:
        """Edges and concat of the reduction (``True``) or normal (``False``) cell."""
        return (self.reduce, self.reduce_concat) if reduction else (self.normal, self.normal_concat)

    def to_text(self) -> str:
        """The DARTS notation; contiguous concats print as ``range(a, b)`` like the published ones."""
        return (
            f"Genotype(normal={_edges_text(self.normal)}, normal_concat={_concat_text(self.normal_concat)}, "
            f"reduce={_edges_text(self.reduce)}, reduce_concat={_concat_text(self.reduce_concat)})"
        )

    __str__ = to_text

    @classmethod
    def from_text(cls, text: str) -> Genotype:
        """Parse the DARTS notation (also with list concats, a ``genotypes.`` prefix, or edges grouped per
        node as pt.darts and the paper's code write them: ``normal=[[(op, 0), (op, 1)], ...]``)."""
        if not isinstance(text, str):
            raise GenotypeError(f"a genotype is DARTS-notation text, got {type(text).__name__} {text!r:.80}")
        try:
            node = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as exc:
            raise GenotypeError(f"cannot parse genotype text ({exc.msg}): {text[:200]!r}") from None
        if not (isinstance(node, ast.Call) and _call_name(node) == "Genotype" and not node.args):
            raise GenotypeError(
                "a genotype must read Genotype(normal=[(op, input), ...], normal_concat=range(2, 6), "
                f"reduce=[...], reduce_concat=range(2, 6)); got {text[:200]!r}"
            )
        values = {kw.arg: kw.value for kw in node.keywords}
        missing = [f for f in _FIELDS if f not in values]
        extra = [k for k in values if k not in _FIELDS]
        if missing or extra:
            raise GenotypeError(f"genotype fields missing {missing} / unexpected {extra} in {text[:200]!r}")
        return cls(
            normal=_parse_edges(values["normal"], "normal"),
            normal_concat=_parse_concat(values["normal_concat"], "normal_concat"),
            reduce=_parse_edges(values["reduce"], "reduce"),
            reduce_concat=_parse_concat(values["reduce_concat"], "reduce_concat"),
        )

    def validate(self, ops: Sequence[str], n_nodes: int | None = None, distinct_inputs: bool = True,
                 concat_inputs: bool = False) -> Genotype:
        """Raise :class:`GenotypeError` naming the first problem; return ``self`` when valid.

        ``ops`` are the operations the space allows (a final genotype of the DARTS space never holds
        ``none``); ``n_nodes`` the space's node count; ``distinct_inputs`` whether a node's two edges
        must come from different inputs (true for the DARTS space, false for ENAS-style cells);
        ``concat_inputs`` whether the concat may hold the cell inputs 0 and 1 (ENAS and NAO concatenate
        every unused state, cell inputs included).
        """
        lowest = 0 if concat_inputs else 2
        for name in ("normal", "reduce"):
            edges, concat = getattr(self, name), getattr(self, f"{name}_concat")
            if not edges or len(edges) % 2:
                raise GenotypeError(f"{name} cell has {len(edges)} edges: need two per node, at least one node")
            nodes = len(edges) // 2
            if n_nodes is not None and nodes != n_nodes:
                raise GenotypeError(f"{name} cell has {nodes} nodes but the space has {n_nodes} per cell")
            for k, (op, src) in enumerate(edges):
                node = k // 2
                if op not in ops:
                    raise GenotypeError(
                        f"{name} cell, node {node}: operation {op!r} is not in this space's op set ({', '.join(ops)})"
                    )
                if not 0 <= src < node + 2:
                    raise GenotypeError(
                        f"{name} cell, node {node}: input index {src} out of range (valid: 0..{node + 1})"
                    )
            if distinct_inputs:
                for node in range(nodes):
                    if edges[2 * node][1] == edges[2 * node + 1][1]:
                        raise GenotypeError(
                            f"{name} cell, node {node}: both edges read input {edges[2 * node][1]}; "
                            "this space needs two distinct inputs"
                        )
            if not concat or len(set(concat)) != len(concat) or not all(lowest <= c < nodes + 2 for c in concat):
                raise GenotypeError(
                    f"{name}_concat {list(concat)} must be distinct node indices in range({lowest}, {nodes + 2})"
                )
        if len(self.normal) != len(self.reduce):
            raise GenotypeError(f"normal cell has {self.n_nodes} nodes but reduce cell has {len(self.reduce) // 2}")
        return self


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _parse_edges(node: ast.expr, field: str) -> list[Edge]:
    try:
        value = ast.literal_eval(node)
        if isinstance(value, (list, tuple)) and value and all(
                isinstance(group, (list, tuple)) and group and all(isinstance(e, (list, tuple)) for e in group)
                for group in value):
            value = [edge for group in value for edge in group]  # per-node groups: flatten in node order
        edges = [(op, src) for op, src in value]
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise GenotypeError(f"{field} must be a list of (op_name, input_index) pairs") from None
    if not all(isinstance(op, str) and isinstance(src, int) and not isinstance(src, bool) for op, src in edges):
        raise GenotypeError(f"{field} must be a list of (op_name: str, input_index: int) pairs, got {value!r}")
    return edges


MAX_CONCAT = 64
"""No cell of any space here has more than a few dozen nodes: a larger concat is a typo or an attack
(``range(2, 10**10)`` would otherwise be expanded into a list until memory runs out)."""


def _parse_concat(node: ast.expr, field: str) -> list[int]:
    if isinstance(node, ast.Call) and _call_name(node) == "range":
        try:
            args = [ast.literal_eval(a) for a in node.args]
            bounds = range(*args)
        except (ValueError, TypeError, SyntaxError):
            raise GenotypeError(f"{field}: range() takes integer literals") from None
        if not all(isinstance(a, int) and not isinstance(a, bool) for a in args) or node.keywords:
            raise GenotypeError(f"{field}: range() takes integer literals")
        if len(bounds) > MAX_CONCAT:
            raise GenotypeError(f"{field}: {len(bounds)} concatenated nodes; a cell concatenates at most "
                                f"{MAX_CONCAT} (write e.g. range(2, 6))")
        return list(bounds)
    try:
        value = list(ast.literal_eval(node))
    except (ValueError, TypeError, SyntaxError):
        raise GenotypeError(f"{field} must be range(a, b) or a list of node indices") from None
    if not all(isinstance(v, int) for v in value):
        raise GenotypeError(f"{field} must hold integers, got {value!r}")
    return value


def _edges_text(edges: Iterable[Edge]) -> str:
    return "[" + ", ".join(f"({op!r}, {src})" for op, src in edges) + "]"


def _concat_text(concat: tuple[int, ...]) -> str:
    if concat and list(concat) == list(range(concat[0], concat[-1] + 1)):
        return f"range({concat[0]}, {concat[-1] + 1})"
    return "[" + ", ".join(str(c) for c in concat) + "]"


# Published genotypes (DARTS, Liu et al. ICLR 2019; P-DARTS, Chen et al. ICCV 2019), transcribed from
# the papers' released genotype files; tests load and build each of them.
PUBLISHED: dict[str, Genotype] = {
    name: Genotype.from_text(text)
    for name, text in {
        "DARTS_V1": "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), "
        "('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
        "('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
        "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), "
        "('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])",
        "DARTS_V2": "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
        "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
        "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
        "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
        "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])",
        "PDARTS": "Genotype(normal=[('skip_connect', 0), ('dil_conv_3x3', 1), ('skip_connect', 0), "
        "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 0), "
        "('dil_conv_5x5', 4)], normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 0), "
        "('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('dil_conv_5x5', 2), ('max_pool_3x3', 0), "
        "('dil_conv_3x3', 1), ('dil_conv_3x3', 1), ('dil_conv_5x5', 3)], reduce_concat=range(2, 6))",
    }.items()
}
DARTS_V1, DARTS_V2, PDARTS = PUBLISHED["DARTS_V1"], PUBLISHED["DARTS_V2"], PUBLISHED["PDARTS"]
