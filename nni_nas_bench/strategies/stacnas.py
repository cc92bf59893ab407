"""StacNAS: a two-stage DARTS (Li et al. 2019, arXiv 1909.11926), as benchmarked by Yang et al. 2020.

StacNAS's observation: ops that compute similar things (the two poolings, the two separable convs, the
two dilated convs) split the α mass between them in DARTS, so a group can lose to a single op that is
worse than either member. Stage 1 therefore searches over *groups*, each represented by one op, on a
14-cell supernet (deeper than DARTS's 8: four ops per edge leave room); its DARTS derivation fixes the
cell topology (the two inputs of each node) and the group of every kept edge (this project's reading of
the paper; the grouping and the representatives are settings). Stage 2 searches, on a 20-cell supernet,
only the members of each kept edge's group; the other edges are cut (they carry only ``none``).
SPEC: 100 + 100 epochs, 14 then 20 cells. StacNAS's code was never released (SPEC "Known defects"), so
what SPEC does not fix follows this project's DARTS: the α and weight steps, optimizers, batch size and
order (second by default: set ``order: 1`` for first order), and ``none`` stays among the candidates
of both stages.

``groups`` is a setting: the default is the grouping by op family named above, with skip-connect alone;
the first op of a group represents it in stage 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies import register_strategy
from nni_nas_bench.strategies.darts import DartsStrategy, SearchRun
from search_spaces.genotype import Genotype
from search_spaces.supernet import edge_offsets, num_edges

# Op groups of the DARTS op set (family of the op); the first member represents the group in stage 1.
DARTS_GROUPS: dict[str, tuple[str, ...]] = {
    "pooling": ("max_pool_3x3", "avg_pool_3x3"),
    "skip": ("skip_connect",),
    "separable": ("sep_conv_3x3", "sep_conv_5x5"),
    "dilated": ("dil_conv_3x3", "dil_conv_5x5"),
}


def group_of(groups: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Op name -> its group's name (each op in at most one group)."""
    out: dict[str, str] = {}
    for name, ops in groups.items():
        for op in ops:
            if op in out:
                raise ConfigError(f"stacnas.groups: {op!r} is in both {out[op]!r} and {name!r}")
            out[op] = name
    return out


def stage1_edge_ops(candidate_ops: Sequence[str], groups: Mapping[str, Sequence[str]],
                    n_edges: int) -> dict[str, list[list[str]]]:
    """Every edge mixes one representative per group (and ``none`` when the space has it)."""
    ops = [g[0] for g in groups.values()] + (["none"] if "none" in candidate_ops else [])
    return {cell: [list(ops) for _ in range(n_edges)] for cell in ("normal", "reduce")}


def stage2_edge_ops(genotype: Genotype, groups: Mapping[str, Sequence[str]], n_nodes: int,
                    candidate_ops: Sequence[str]) -> dict[str, list[list[str]]]:
    """Kept edges of the stage-1 genotype mix their group's members; all other edges are cut (``none``)."""
    owner = group_of(groups)
    offsets = edge_offsets(n_nodes)
    none = ["none"] if "none" in candidate_ops else []
    out = {}
    for cell, edges in (("normal", genotype.normal), ("reduce", genotype.reduce)):
        rows: list[list[str]] = [["none"] for _ in range(num_edges(n_nodes))]
        for i, (op, src) in enumerate(edges):
            rows[offsets[i // 2] + src] = list(groups[owner[op]]) + none
        out[cell] = rows
    return out


@register_strategy("stacnas")
class StacNasStrategy(DartsStrategy):
    """StacNAS with SPEC's search protocol: ``epochs``/``layers`` for stage 1, ``stage2_*`` for stage 2."""

    def __init__(self, *, epochs: int = 100, layers: int = 14, stage2_epochs: int = 100, stage2_layers: int = 20,
                 groups: Mapping[str, Sequence[str]] | None = None, **settings: Any):
        super().__init__(epochs=epochs, layers=layers, **settings)
        if isinstance(stage2_epochs, bool) or not isinstance(stage2_epochs, int) or stage2_epochs < 1:
            raise ConfigError(f"stacnas.stage2_epochs must be a positive integer, got {stage2_epochs!r}")
        if isinstance(stage2_layers, bool) or not isinstance(stage2_layers, int) or stage2_layers < 3:
            raise ConfigError(f"stacnas.stage2_layers must be an integer >= 3, got {stage2_layers!r}")
        self.stage2_epochs, self.stage2_layers = stage2_epochs, stage2_layers
        self.groups = {str(k): list(v) for k, v in (groups or DARTS_GROUPS).items()}
        if not self.groups or any(not ops for ops in self.groups.values()):
            raise ConfigError(f"stacnas.groups must map group names to non-empty op lists, got {groups!r}")
        group_of(self.groups)  # one group per op

    @property
    def settings(self) -> dict[str, Any]:
        return {**super().settings, "stage2_epochs": self.stage2_epochs, "stage2_layers": self.stage2_layers,
                "groups": self.groups}

    def extra_repr(self) -> str:
        return (f"order={self.order}, epochs={self.epochs}+{self.stage2_epochs}, "
                f"layers={self.layers}/{self.stage2_layers}, channels={self.channels}, seed={self.seed}")

    def _search(self, run: SearchRun) -> tuple[Genotype, float]:
        space = run.space
        grouped = set(group_of(self.groups))
        if "none" in grouped or not grouped <= set(space.candidate_ops) or grouped != set(space.ops):
            raise ConfigError(f"stacnas.groups {self.groups} must partition the space's ops {list(space.ops)} "
                              "('none' belongs to no group)")
        n_edges = num_edges(space.n_nodes)
        net = self.build_supernet(run, layers=self.layers,
                                  edge_ops=stage1_edge_ops(space.candidate_ops, self.groups, n_edges))
        rows = self.train_supernet(net, run, epochs=self.epochs, phase="stage1")
        topology = space.parse(rows[-1]["genotype"])
        edge_ops = stage2_edge_ops(topology, self.groups, space.n_nodes, space.candidate_ops)
        run.log(f"stacnas: stage 1 chose {topology}")
        net = self.build_supernet(run, layers=self.stage2_layers, edge_ops=edge_ops, stage=1)
        rows = self.train_supernet(net, run, epochs=self.stage2_epochs, phase="stage2")
        return space.parse(rows[-1]["genotype"]), rows[-1]["valid_acc"]
