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
        return cls._from_expression(_expression(text), text)

    @classmethod
    def _from_expression(cls, node: ast.expr, text: str) -> Genotype:
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

    def cell_at(self, index: int, reduction: bool, layers: int) -> tuple[tuple[Edge, ...], tuple[int, ...]]:
        """The cell of layer ``index`` of a ``layers``-cell network: the one normal or reduction cell."""
        return self.cell(reduction)

    def named_cells(self) -> list[tuple[str, tuple[Edge, ...], tuple[int, ...]]]:
        """``(name, edges, concat)`` of every distinct cell, named as in the text (for messages)."""
        return [("normal", self.normal, self.normal_concat), ("reduce", self.reduce, self.reduce_concat)]

    def validate(self, ops: Sequence[str], n_nodes: int | None = None, distinct_inputs: bool = True,
                 concat_inputs: bool = False) -> Genotype:
        """Raise :class:`GenotypeError` naming the first problem; return ``self`` when valid.

        ``ops`` are the operations the space allows (a final genotype of the DARTS space never holds
        ``none``); ``n_nodes`` the space's node count; ``distinct_inputs`` whether a node's two edges
        must come from different inputs (true for the DARTS space, false for ENAS-style cells);
        ``concat_inputs`` whether the concat may hold the cell inputs 0 and 1 (ENAS and NAO concatenate
        every unused state, cell inputs included).
        """
        for name, edges, concat in self.named_cells():
            _validate_cell(name, edges, concat, ops, n_nodes, distinct_inputs, concat_inputs)
        if len(self.normal) != len(self.reduce):
            raise GenotypeError(f"normal cell has {self.n_nodes} nodes but reduce cell has {len(self.reduce) // 2}")
        return self


MAX_LAYERS = 64
"""Cells of a per-layer genotype: published networks have 8 to 20; more is a typo (or an attack)."""


@dataclass(frozen=True)
class LayerwiseGenotype:
    """A different cell in every layer: MANAS's "unique cells per layer" (arXiv 1909.01051, §4).

    ``cells[i]`` and ``concats[i]`` are the edges and output of layer ``i`` of the searched network of
    ``L = len(cells)`` cells, whose layers ``L // 3`` and ``2L // 3`` are the reduction cells (the
    :class:`~search_spaces.cells.CellNetwork` rule). Text form::

        LayerwiseGenotype(cells=[[('sep_conv_3x3', 0), ...], ...], concats=[range(2, 6), ...])

    A network of another depth (CIFAR's 20-cell final network after an 8-cell search) takes each stage's
    searched normal cells stretched over its own normal cells of that stage (:func:`searched_layer`), and
    the searched reduction cells at its reductions; at the searched depth every layer is its own cell.
    """

    cells: tuple[tuple[Edge, ...], ...]
    concats: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "cells", tuple(tuple((str(op), int(i)) for op, i in c) for c in self.cells))
        object.__setattr__(self, "concats", tuple(tuple(int(i) for i in c) for c in self.concats))

    @property
    def layers(self) -> int:
        """Cells of the searched network (one per layer)."""
        return len(self.cells)

    @property
    def n_nodes(self) -> int:
        """Intermediate nodes per cell (two edges per node)."""
        return len(self.cells[0]) // 2 if self.cells else 0

    def cell_at(self, index: int, reduction: bool, layers: int) -> tuple[tuple[Edge, ...], tuple[int, ...]]:
        """Edges and concat of layer ``index`` of a ``layers``-cell network (see the class docstring)."""
        k = searched_layer(index, layers, self.layers)
        return self.cells[k], self.concats[k]

    def named_cells(self) -> list[tuple[str, tuple[Edge, ...], tuple[int, ...]]]:
        return [(f"layer_{i}", edges, concat) for i, (edges, concat) in enumerate(zip(self.cells, self.concats))]

    def to_text(self) -> str:
        cells = ", ".join(_edges_text(c) for c in self.cells)
        concats = ", ".join(_concat_text(c) for c in self.concats)
        return f"LayerwiseGenotype(cells=[{cells}], concats=[{concats}])"

    __str__ = to_text

    @classmethod
    def from_text(cls, text: str) -> LayerwiseGenotype:
        """Parse the text form (see the class docstring); sizes are bounded before anything is built."""
        genotype = parse_genotype(text)
        if not isinstance(genotype, cls):
            raise GenotypeError(f"expected a LayerwiseGenotype(cells=[...], concats=[...]), got {text[:200]!r}")
        return genotype

    def validate(self, ops: Sequence[str], n_nodes: int | None = None, distinct_inputs: bool = True,
                 concat_inputs: bool = False) -> LayerwiseGenotype:
        """:meth:`Genotype.validate`'s rules for every layer's cell, plus a common node count and ≥ 3 layers."""
        if not 3 <= self.layers <= MAX_LAYERS:
            raise GenotypeError(f"a per-layer genotype has 3 to {MAX_LAYERS} cells (two are reductions), "
                                f"got {self.layers}")
        if len(self.concats) != self.layers:
            raise GenotypeError(f"{self.layers} cells but {len(self.concats)} concats: give one per cell")
        for name, edges, concat in self.named_cells():
            _validate_cell(name, edges, concat, ops, self.n_nodes if n_nodes is None else n_nodes,
                           distinct_inputs, concat_inputs)
        return self


def searched_layer(index: int, layers: int, searched: int) -> int:
    """The layer of a ``searched``-cell network whose cell layer ``index`` of a ``layers``-cell one takes.

    Reductions map to reductions; the normal cells of each of the three stages (before, between, after
    the reductions) are stretched: normal cell ``j`` of ``n'`` in a stage takes the searched stage's
    normal cell ``j · n // n'``. Equal depths map every layer to itself.
    """
    if not 0 <= index < layers:
        raise IndexError(f"layer {index} of a {layers}-cell network")
    ours, theirs = _stages(layers), _stages(searched)
    for (start, stop), (s_start, s_stop) in zip(ours, theirs):
        if start <= index < stop:
            if s_stop == s_start:
                raise GenotypeError(
                    f"a {searched}-cell per-layer genotype has no normal cell in the stage that layer {index} "
                    f"of a {layers}-cell network belongs to: search with at least 6 cells or train at {searched}")
            return s_start + (index - start) * (s_stop - s_start) // (stop - start)
    return theirs[3 + (layers // 3, 2 * layers // 3).index(index)][0]


def _stages(layers: int) -> list[tuple[int, int]]:
    """The normal-cell ranges of the three stages, then the two reduction layers (as 1-long ranges)."""
    r1, r2 = layers // 3, 2 * layers // 3
    return [(0, r1), (r1 + 1, r2), (r2 + 1, layers), (r1, r1 + 1), (r2, r2 + 1)]


def parse_genotype(text: str) -> Genotype | LayerwiseGenotype:
    """Read either text form: ``Genotype(...)`` (two cells) or ``LayerwiseGenotype(...)`` (a cell per layer)."""
    node = _expression(text)
    if isinstance(node, ast.Call) and _call_name(node) == "LayerwiseGenotype" and not node.args:
        values = {kw.arg: kw.value for kw in node.keywords}
        if sorted(values) != ["cells", "concats"] or not all(
                isinstance(values[k], (ast.List, ast.Tuple)) for k in values):
            raise GenotypeError(f"a per-layer genotype reads LayerwiseGenotype(cells=[[(op, input), ...], ...], "
                                f"concats=[range(2, 6), ...]); got {text[:200]!r}")
        cells, concats = values["cells"].elts, values["concats"].elts  # type: ignore[attr-defined]
        if len(cells) > MAX_LAYERS or len(concats) > MAX_LAYERS:
            raise GenotypeError(f"a per-layer genotype has at most {MAX_LAYERS} cells, got {len(cells)}")
        return LayerwiseGenotype(tuple(_parse_edges(c, f"cells[{i}]") for i, c in enumerate(cells)),
                                 tuple(_parse_concat(c, f"concats[{i}]") for i, c in enumerate(concats)))
    return Genotype._from_expression(node, text)


def _expression(text: str) -> ast.expr:
    """The one expression of a genotype text, parsed with :mod:`ast` (never evaluated)."""
    if not isinstance(text, str):
        raise GenotypeError(f"a genotype is DARTS-notation text, got {type(text).__name__} {text!r:.80}")
    try:
        return ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise GenotypeError(f"cannot parse genotype text ({exc.msg}): {text[:200]!r}") from None


def _validate_cell(name: str, edges: tuple[Edge, ...], concat: tuple[int, ...], ops: Sequence[str],
                   n_nodes: int | None, distinct_inputs: bool, concat_inputs: bool) -> None:
    """One cell's rules (see :meth:`Genotype.validate`); ``name`` says which cell in the message."""
    lowest = 0 if concat_inputs else 2
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
