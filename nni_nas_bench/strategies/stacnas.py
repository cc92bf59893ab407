"""StacNAS: a two-stage DARTS (Li et al. 2019, arXiv 1909.11926), as benchmarked by Yang et al. 2020.

Reference: the authors' released code, susan0199/stacnas (``search.py``, ``genotypes.py``,
``search_cnn.py``, ``config.py``, ``run_all.py``); the benchmark (antoyang/NAS-Benchmark) ran the
authors' code and ships no copy of it, so its protocol values come from SPEC (the paper's Table 2).
docs/fidelity.md lists every setting against the reference.

StacNAS's observation: ops that compute similar things (the two poolings, the two separable convs, the
two dilated convs) split the α mass between them in DARTS, so a group can lose to a single op that is
worse than either member. Stage 1 therefore searches over *groups*, each represented by one op
(max pool, skip, sep conv 3x3, dil conv 3x3, plus ``none``), on a 14-cell supernet; every edge then
takes the group of its strongest representative (raw α, ``none`` excluded). Stage 2 is a fresh 20-cell
supernet in which all 14 edges mix their group's members plus ``none``; its α alone decides the cell:
per node the two edges with the largest raw α of a non-``none`` op, each with that op.

Both stages optimise one-level, as the released code does: each step computes ONE loss on a training
batch, back-propagates it into α and the weights, clips the weights' gradient, and steps both
optimizers; the batches come from the whole training set (``train_ratio`` 1). ``one_level: false``
gives DARTS's bilevel step on the 50/50 split instead (with ``order``). With the whole training set in
training, the per-epoch accuracy on the validation half is not held out (the reference validates
nothing in that mode); it is reported for progress only.

Defaults are SPEC's benchmark protocol: 100 + 100 epochs, 14 then 20 cells, gradient clip 5 (the
released ``run_all.py``: 80 + 80 epochs, clip 3: ``epochs: 80, stage2_epochs: 80, grad_clip: 3``);
the 224-px datasets search 8 and 8 cells (their YAMLs). ``groups`` is a setting: the default is the
released grouping; the first op of a group represents it in stage 1.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies.darts import Batch, DartsStrategy, SearchRun
from search_spaces.genotype import Genotype
from search_spaces.supernet import DartsSupernet, EdgeOps, derive_genotype, num_edges

# Op groups of the DARTS op set (genotypes.OPS_DICT of the release); the first member represents the group.
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


def stage2_edge_ops(alpha: Mapping[str, torch.Tensor], candidate_ops: Sequence[str],
                    groups: Mapping[str, Sequence[str]]) -> dict[str, list[list[str]]]:
    """Every edge mixes the group of its strongest stage-1 representative, plus ``none``.

    ``alpha``: the stage-1 α per cell type (edges × candidate ops), ops an edge does not hold at -inf.
    The strongest representative is the largest raw α other than ``none`` (the release's
    ``build_primitive_from_alpha``: ``topk(edge_alpha[:-1], 1)``); ties go to the earlier candidate.
    """
    owner = group_of(groups)
    none = ["none"] if "none" in candidate_ops else []
    columns = [i for i, op in enumerate(candidate_ops) if op in owner and groups[owner[op]][0] == op]
    out = {}
    for cell, a in alpha.items():
        rows = []
        for row in a.detach().cpu().double():
            best = max(columns, key=lambda c: (row[c].item(), -c))
            rows.append(list(groups[owner[candidate_ops[best]]]) + none)
        out[cell] = rows
    return out


class StacNasSupernet(DartsSupernet):
    """The DARTS supernet whose genotype ranks edges and ops by raw α, as StacNAS derives its cells.

    The release's ``build_genotype_from_alpha`` takes, per edge, the op with the largest raw α (``none``
    excluded) and, per node, the two edges whose best raw α is largest. Each edge has its own softmax, so
    ranking edges by softmax weights (DARTS) can choose other edges than ranking them by α.
    """

    def raw_alpha(self, cell: str) -> torch.Tensor:
        """α of one cell type with the ops an edge does not hold at -inf (edges × candidate ops, detached)."""
        alpha = getattr(self, f"alpha_{cell}").detach()
        return alpha.masked_fill(~getattr(self, f"mask_{cell}"), float("-inf")).cpu()

    def genotype(self) -> Genotype:
        return derive_genotype(self.space, self.raw_alpha("normal"), self.raw_alpha("reduce"))


class _NoAlphaBatches:
    """The α-batch stream of a one-level search: it draws nothing (α trains on the training batch)."""

    def set_epoch(self, epoch: int) -> None:
        """Nothing to reseed: no batches are drawn."""

    def __iter__(self) -> Iterator[None]:
        return itertools.repeat(None)


def whole_training_set(split: Any) -> Any:
    """The search split with both halves on its train side (the release's ``train_ratio`` 1); eval side kept."""
    from nni_nas_bench.data import FolderDataset, FolderSplit, TensorSplit

    if isinstance(split, TensorSplit):
        return TensorSplit(torch.cat([split.train_x, split.eval_x]), torch.cat([split.train_y, split.eval_y]),
                           split.eval_x, split.eval_y, split.info, split.classes)
    if isinstance(split, FolderSplit):
        both = FolderDataset(split.train.samples + split.eval.samples, split.train.classes, split.train.transform)
        return FolderSplit(both, split.eval, split.info)
    raise ConfigError(f"StacNAS needs a TensorSplit or FolderSplit, got {type(split).__name__}")


class StacNasStrategy(DartsStrategy):
    """StacNAS: ``epochs``/``layers`` for stage 1, ``stage2_*`` for stage 2; one-level unless ``one_level=False``."""

    setting_names = (*DartsStrategy.setting_names, "stage2_epochs", "stage2_layers", "groups", "one_level")

    name = "stacnas"

    def __init__(self, *, epochs: int = 100, layers: int = 14, stage2_epochs: int = 100, stage2_layers: int = 20,
                 groups: Mapping[str, Sequence[str]] | None = None, one_level: bool = True, order: int = 1,
                 **settings: Any):
        super().__init__(epochs=epochs, layers=layers, order=order, **settings)
        if isinstance(stage2_epochs, bool) or not isinstance(stage2_epochs, int) or stage2_epochs < 1:
            raise ConfigError(f"stacnas.stage2_epochs must be a positive integer, got {stage2_epochs!r}")
        if isinstance(stage2_layers, bool) or not isinstance(stage2_layers, int) or stage2_layers < 3:
            raise ConfigError(f"stacnas.stage2_layers must be an integer >= 3, got {stage2_layers!r}")
        if not isinstance(one_level, bool):
            raise ConfigError(f"stacnas.one_level must be true or false, got {one_level!r}")
        if one_level and order != 1:
            raise ConfigError("stacnas.order only applies to the bilevel step: set one_level: false to use order 2")
        self.stage2_epochs, self.stage2_layers, self.one_level = stage2_epochs, stage2_layers, one_level
        self.groups = {str(k): list(v) for k, v in (groups or DARTS_GROUPS).items()}
        if not self.groups or any(not ops for ops in self.groups.values()):
            raise ConfigError(f"stacnas.groups must map group names to non-empty op lists, got {groups!r}")
        group_of(self.groups)  # one group per op

    def extra_repr(self) -> str:
        step = "one-level" if self.one_level else f"bilevel order={self.order}"
        return (f"{step}, epochs={self.epochs}+{self.stage2_epochs}, layers={self.layers}/{self.stage2_layers}, "
                f"channels={self.channels}, seed={self.seed}")

    # ------------------------------------------------------------------------------ one-level
    def search_split(self, split: Any) -> Any:
        """One-level: the weights and α train on the whole training set; bilevel: DARTS's 50/50 split."""
        return whole_training_set(split) if self.one_level else split

    def step(self, net: Any, weights: dict[str, torch.Tensor], train_batch: Batch, valid_batch: Batch | None,
             lr: float, w_opt: torch.optim.Optimizer, a_opt: torch.optim.Optimizer,
             criterion: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """One-level step (the release's ``search.train``): one loss, one backward, clip w, step α and w."""
        if not self.one_level:
            return super().step(net, weights, train_batch, valid_batch, lr, w_opt, a_opt, criterion)
        x, y = train_batch
        a_opt.zero_grad(set_to_none=True)
        w_opt.zero_grad(set_to_none=True)
        logits = net(x)
        loss = criterion(logits, y)
        loss.backward()
        if self.grad_clip > 0:
            nn.utils.clip_grad_norm_(weights.values(), self.grad_clip)  # the weights only, as the release
        a_opt.step()
        w_opt.step()
        return logits, loss

    # ------------------------------------------------------------------------------- the stages
    def build_supernet(self, run: SearchRun, *, layers: int, edge_ops: EdgeOps | None = None,
                       skip_dropout: bool = False, stage: int = 0) -> Any:
        """DARTS's supernet (same seeding of α) whose genotype ranks raw α (:class:`StacNasSupernet`)."""
        from nni_nas_bench.data._seeding import derive_seed

        if hasattr(run.space, "build_supernet") or skip_dropout:
            raise ConfigError(f"stacnas searches op groups on the DARTS cell supernet; space {run.space.name!r} "
                              "builds its own supernet: search it with darts")
        key = "alpha-init" if stage == 0 else f"alpha-init-{stage}"
        generator = torch.Generator().manual_seed(derive_seed("darts", key, self.seed))
        stem = "cifar" if run.info.image_size == 32 else "imagenet"
        return StacNasSupernet(run.space, C=self.channels, num_classes=run.info.num_classes, layers=layers,
                               stem=stem, generator=generator, edge_ops=edge_ops).to(run.device)

    def _search(self, run: SearchRun) -> tuple[Genotype, float]:
        space = run.space
        grouped = set(group_of(self.groups))
        if "none" in grouped or not grouped <= set(space.candidate_ops) or grouped != set(space.ops):
            raise ConfigError(f"stacnas.groups {self.groups} must partition the space's ops {list(space.ops)} "
                              "('none' belongs to no group)")
        if self.one_level:
            run.a_loader = _NoAlphaBatches()
        n_edges = num_edges(space.n_nodes)
        net = self.build_supernet(run, layers=self.layers,
                                  edge_ops=stage1_edge_ops(space.candidate_ops, self.groups, n_edges))
        self.train_supernet(net, run, epochs=self.epochs, phase="stage1")
        edge_ops = stage2_edge_ops({cell: net.raw_alpha(cell) for cell in ("normal", "reduce")},
                                   space.candidate_ops, self.groups)
        run.log(f"stacnas: stage 1 chose the groups {edge_ops['normal']} (normal), {edge_ops['reduce']} (reduce)")
        net = self.build_supernet(run, layers=self.stage2_layers, edge_ops=edge_ops, stage=1)
        rows = self.train_supernet(net, run, epochs=self.stage2_epochs, phase="stage2")
        return space.parse(rows[-1]["genotype"]), rows[-1]["valid_acc"]
