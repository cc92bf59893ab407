"""DARTS-PT: perturbation-based architecture selection (Wang et al., "Rethinking Architecture Selection
in Differentiable NAS", ICLR 2021) on a trained DARTS supernet, as its release (ruocwang/darts-pt) runs it.

α's magnitude is a poor guide to what an op contributes to the supernet, so DARTS-PT asks the supernet
instead. After DARTS's supernet training (this project's first-order DARTS, reused) one tuning phase
alternates decisions and tuning epochs (``sota/cnn/projection.py:pt_project``):

1. operations: each op decision picks one undecided edge of the normal cell AND one of the reduction
   cell, each at random (seeded); for each op of the edge, mask that op (its mixing weight set to 0, the
   others unchanged) and measure the validation accuracy; the op whose removal hurts most is kept (ties:
   the earlier op): the edge is fixed to it (a one-hot row). One decision per edge pair: 14 on DARTS.
2. topology: each topology decision picks one undecided node (those with more than two inputs) of each
   cell at random, measures the accuracy with each of its input edges removed (row set to 0), keeps the
   two whose removal hurts most and cuts the others: 3 on DARTS. The reference removes the input whose
   removal hurts least, re-measures, and repeats until two remain; our measurement is deterministic, so
   its rounds return the same numbers and one pass gives the same two inputs (with the same tie rule).

Decisions start the tuning epochs ``0, k, 2k, …`` (``k`` = ``finetune_epochs``, the reference's
``--proj_intv 5``) of ``k·(decisions − 1) + 1`` tuning epochs (DARTS: 81); NB201's script has
``k·(decisions − 1)`` epochs with its last decision at the last epoch (``nasbench201/projection.py``),
see :func:`tuning_schedule`. Tuning is DARTS's search step, α included (first order, α's Adam continues
from the supernet training), with a fresh SGD at ``finetune_lr`` (the reference's ``learning_rate / 10``
= 0.0025): the reference builds a cosine scheduler for it but never steps it, so the rate is constant.

The accuracy of a perturbed supernet is measured as the reference measures it: in train mode (BN uses
the batch's statistics; ``infer(..., _eval=False)``), on the validation half with the training
augmentation in batches of ``batch_size`` (the α batches' loader). Every candidate of one decision sees
the same batches (the reference reshuffles per measurement: noise, not method).

The supernet mixes the DARTS ops without ``none`` (the reference's DARTS space ``s5``; ``drop_none``);
on NB201 (its own supernet; the reference keeps ``none`` there) ``none`` is a candidate like any op, and
only phase 1 runs: an NB201 cell has no input selection. The genotype is the decisions (DARTS's
derivation of the fixed rows). The decisions live in the supernet's state and the tuning phase is
checkpointed, so a killed search resumes; each edge choice is drawn from (seed, decision), so a resumed
search draws the same edges.
"""

from __future__ import annotations

import copy
import functools
from typing import Any, Callable

import numpy as np
import torch

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies.checks import check_number
from nni_nas_bench.strategies.darts import DartsStrategy, SearchRun
from search_spaces.genotype import Genotype
from search_spaces.supernet import DartsSupernet, EdgeOps, edge_offsets, num_edges

MEASURE_EPOCH = 10**6  # loader epochs of the measurements: never an α batch's epoch


def tuning_schedule(n_decisions: int, interval: int, final_epoch: bool) -> tuple[int, list[int]]:
    """(tuning epochs, the epochs at whose start a decision is made) of the reference's ``pt_project``.

    ``final_epoch``: DARTS space (``sota/cnn/projection.py:126-127``: ``proj_intv · (decisions − 1) + 1``
    epochs); else NB201 (``nasbench201/projection.py:78``: ``proj_intv · (decisions − 1)``). Both decide
    at every ``interval``-th epoch and at the last one.
    """
    total = interval * (n_decisions - 1) + (1 if final_epoch else 0)
    epochs = [e for e in range(total) if e % interval == 0 or e == total - 1]
    if len(epochs) != n_decisions:
        raise ConfigError(f"darts_pt.finetune_epochs={interval} leaves {n_decisions - len(epochs)} of {n_decisions} "
                          "decisions unmade in the reference's schedule: use 0 or at least 2")
    return total, epochs


def select_op(net: Any, cell: str, row: int, accuracy: Callable[[], float],
              include_none: bool = False) -> tuple[str, dict[str, float]]:
    """Decide edge ``row`` of ``cell``: the op whose masking lowers ``accuracy()`` most; fix the edge to it.

    ``none`` is a candidate only with ``include_none`` (NB201, where a cell may hold it). Returns the op
    and the accuracy measured with each op masked.
    """
    ops = list(net.candidate_ops)
    base = net.edge_weights(cell)[row].detach()
    scores: dict[str, float] = {}
    for op in net.edge_ops[cell][row]:
        if op == "none" and not include_none:
            continue
        masked = base.clone()
        masked[ops.index(op)] = 0.0
        net.set_edge_weights(cell, row, masked)
        scores[op] = accuracy()
    if not scores:
        raise ConfigError(f"edge {row} of the {cell} cell has no op besides 'none' to select")
    best = min(scores, key=lambda op: (scores[op], ops.index(op)))  # ties: the earlier candidate
    net.set_edge_weights(cell, row, torch.nn.functional.one_hot(torch.tensor(ops.index(best)), len(ops)).float())
    return best, scores


def select_inputs(net: Any, cell: str, node: int, accuracy: Callable[[], float],
                  keep: int = 2) -> tuple[list[int], dict[int, float]]:
    """Keep the ``keep`` inputs of ``node`` (0-based intermediate node) whose removal lowers accuracy most.

    The other input edges are cut (their row fixed to zeros). Returns the kept inputs and the accuracy
    measured with each input edge removed. Ties keep the lower input, as the reference's elimination
    (it removes the last of the inputs whose removal hurts least) does.
    """
    offset = edge_offsets(net.n_nodes)[node]
    fixed = getattr(net, f"fixed_{cell}").detach().clone()
    zeros = torch.zeros(fixed.shape[1])
    scores: dict[int, float] = {}
    for src in range(node + 2):
        row = offset + src
        net.set_edge_weights(cell, row, zeros)
        scores[src] = accuracy()
        net.set_edge_weights(cell, row, None if torch.isnan(fixed[row]).any() else fixed[row])
    kept = sorted(sorted(scores, key=lambda s: (scores[s], s))[:keep])
    for src in scores:
        if src not in kept:
            net.set_edge_weights(cell, offset + src, zeros)
    return kept, scores


def train_mode_accuracy(net: torch.nn.Module, loader: Any) -> float:
    """Top-1 accuracy (%) over ``loader`` with BN in train mode (batch statistics), as the reference measures
    a perturbed supernet (``sota/cnn/train_search.py:404``: ``model.train()`` when ``_eval=False``)."""
    net.train()
    correct, total = 0, 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((net(x).argmax(1) == y).sum())
            total += y.numel()
    return 100.0 * correct / max(total, 1)


class DartsPtStrategy(DartsStrategy):
    """DARTS-PT: DARTS's supernet training (``epochs`` etc.), then perturbation-based selection with tuning.

    ``finetune_epochs`` (the reference's ``proj_intv`` = 5): tuning epochs between two decisions (0: no
    tuning at all, a test setting). ``finetune_lr`` (None: ``w_lr / 10``, the reference's): the constant
    rate of the tuning's fresh SGD. ``drop_none`` (None: the reference's choice per space, True on DARTS
    cell spaces, False on NB201): build the supernet without ``none``. ``order`` defaults to 1: DARTS-PT
    selects on a first-order DARTS supernet.
    """

    setting_names = (*DartsStrategy.setting_names, "finetune_epochs", "finetune_lr", "drop_none")
    repr_names = (*DartsStrategy.repr_names, "finetune_epochs")

    name = "darts_pt"

    def __init__(self, *, finetune_epochs: int = 5, finetune_lr: float | None = None, drop_none: bool | None = None,
                 order: int = 1, **settings: Any):
        super().__init__(order=order, **settings)
        if isinstance(finetune_epochs, bool) or not isinstance(finetune_epochs, int) or finetune_epochs < 0:
            raise ConfigError(f"darts_pt.finetune_epochs must be an integer >= 0, got {finetune_epochs!r}")
        if drop_none is not None and not isinstance(drop_none, bool):
            raise ConfigError(f"darts_pt.drop_none must be true, false or null (the reference's per space), "
                              f"got {drop_none!r}")
        self.finetune_epochs = finetune_epochs
        self.finetune_lr = None if finetune_lr is None else check_number("darts_pt", "finetune_lr", finetune_lr)
        self.drop_none = drop_none
        self._alpha_state: dict[str, Any] | None = None  # the supernet's Adam state, carried into the tuning
        self._last_alpha_opt: torch.optim.Optimizer | None = None

    @property
    def tuning_lr(self) -> float:
        """The tuning's constant weight learning rate (reference: ``args.learning_rate / 10``, never annealed)."""
        return self.w_lr / 10 if self.finetune_lr is None else self.finetune_lr

    # --------------------------------------------------------------------------------- the supernet
    def supernet_ops(self, space: Any) -> EdgeOps | None:
        """Each edge's ops: without ``none`` where ``drop_none`` resolves to True (DARTS cell spaces: ``s5``)."""
        own_supernet = hasattr(space, "build_supernet")
        if self.drop_none and own_supernet:
            raise ConfigError(f"darts_pt.drop_none=true: space {space.name!r} builds its own supernet, which keeps "
                              "'none' (as the reference's NB201 search does); leave drop_none unset")
        if own_supernet or self.drop_none is False:
            return None
        ops = [op for op in space.candidate_ops if op != "none"]
        return {cell: [list(ops) for _ in range(num_edges(space.n_nodes))] for cell in ("normal", "reduce")}

    def make_optimizers(self, net: Any) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        """DARTS's optimizers; in the tuning, α's Adam continues the supernet training's state (the reference
        keeps one architect)."""
        w_opt, a_opt = super().make_optimizers(net)
        if self._alpha_state is not None:
            a_opt.load_state_dict(self._alpha_state)
        self._last_alpha_opt = a_opt
        return w_opt, a_opt

    # ------------------------------------------------------------------------------------ the search
    def _search(self, run: SearchRun) -> tuple[Genotype, float]:
        net = self.build_supernet(run, layers=self.layers, edge_ops=self.supernet_ops(run.space))
        self._alpha_state = None
        self.train_supernet(net, run, epochs=self.epochs, phase="supernet")
        n_decisions = self.count_decisions(net)
        decisions: list[dict[str, Any]] = []
        if self.finetune_epochs == 0:
            for index in range(n_decisions):
                decisions += self.project(net, run, index)
        else:
            total, decide_at = tuning_schedule(n_decisions, self.finetune_epochs, isinstance(net, DartsSupernet))
            made: dict[int, list[dict[str, Any]]] = {}

            def decide(_net: Any, epoch: int) -> None:
                if epoch in decide_at:
                    made[epoch] = self.project(net, run, decide_at.index(epoch))

            assert self._last_alpha_opt is not None
            self._alpha_state = copy.deepcopy(self._last_alpha_opt.state_dict())
            try:
                rows = self.train_supernet(net, run, epochs=total, phase="tune", before_epoch=decide,
                                           lr_range=(self.tuning_lr, self.tuning_lr))
            finally:
                self._alpha_state = None
            for row in rows:
                if row["phase_epoch"] - 1 in made:
                    row["projection"] = made[row["phase_epoch"] - 1]  # the decisions made before this epoch
                    decisions += row["projection"]
        genotype = net.genotype()
        valid_acc = self.evaluate_supernet(net, run)
        run.history[-1]["decisions"] = decisions  # the decisions made by this process (a resumed one: the rest)
        run.history[-1]["genotype_selected"] = genotype.to_text()
        self._save(run)
        return genotype, valid_acc

    @staticmethod
    def count_decisions(net: Any) -> int:
        """Projections: one per edge, then one per node with more than two inputs (DARTS cells only)."""
        n_edges = len(net.edge_ops[net.cell_types[0]])
        return n_edges + (net.n_nodes - 1 if isinstance(net, DartsSupernet) else 0)

    def project(self, net: Any, run: SearchRun, index: int) -> list[dict[str, Any]]:
        """Decision ``index``: for each cell type, one random undecided edge's op (``index`` < edges) or one
        random undecided node's two inputs (``sota/cnn/projection.py:166-181``: normal, then reduction)."""
        from nni_nas_bench.data._seeding import derive_seed

        n_edges = len(net.edge_ops[net.cell_types[0]])
        out = []
        for cell in net.cell_types:
            rng = np.random.RandomState(derive_seed("darts_pt", "decision", index, cell, self.seed) % 2**32)
            measure = functools.partial(self.perturbation_accuracy, net, run,
                                        MEASURE_EPOCH + 2 * index + net.cell_types.index(cell))
            fixed = getattr(net, f"fixed_{cell}")
            if index < n_edges:
                row = int(rng.choice([r for r in range(n_edges) if torch.isnan(fixed[r]).all()]))
                op, scores = select_op(net, cell, row, measure, include_none=not isinstance(net, DartsSupernet))
                out.append({"cell": cell, "edge": row, "op": op, "masked_acc": scores})
                run.log(f"darts_pt: {cell} edge {row} -> {op} (accuracy with each op masked: {scores})")
            else:
                offsets = edge_offsets(net.n_nodes)
                open_nodes = [n for n in range(1, net.n_nodes)
                              if all(fixed[offsets[n] + s].abs().sum() > 0 for s in range(n + 2))]
                node = int(rng.choice(open_nodes))
                kept, removed = select_inputs(net, cell, node, measure)
                out.append({"cell": cell, "node": node + 2, "inputs": kept, "removed_acc": removed})
                run.log(f"darts_pt: {cell} node {node + 2} keeps inputs {kept} (accuracy without each: {removed})")
        return out

    def perturbation_accuracy(self, net: Any, run: SearchRun, key: int) -> float:
        """The accuracy of the (perturbed) supernet: train-mode BN, the α loader's batches of pass ``key``."""
        run.a_loader.set_epoch(key)
        return train_mode_accuracy(net, run.a_loader)
