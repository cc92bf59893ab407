"""DARTS-PT: perturbation-based architecture selection (Wang et al., "Rethinking Architecture Selection
in Differentiable NAS", ICLR 2021) on a trained DARTS supernet.

α's magnitude is a poor guide to what an op contributes to the supernet, so DARTS-PT asks the supernet
instead. After DARTS's supernet training (this project's DARTS, reused):

1. operations: pick an undecided edge at random (seeded); for each of its ops (``none`` excluded), mask
   that op (its mixing weight set to 0, the others unchanged) and measure the validation accuracy;
   the op whose removal hurts most is kept: the edge is fixed to it (a one-hot row). Fine-tune the
   supernet's weights for ``finetune_epochs`` and take the next edge, until every edge is decided.
2. topology: the same for node inputs: pick a node at random, measure the accuracy with each of its
   input edges removed (row set to 0), keep the two edges whose removal hurts most, cut the others,
   fine-tune, until every node has two inputs.

The genotype is then DARTS's derivation of the fixed rows (each kept edge is one-hot on its op).

On NB201 (its own supernet, same fixed rows) only phase 1 runs: an NB201 cell has no input selection,
every node sums all earlier nodes. As on DARTS, ``none`` is never selected (masking it changes nothing:
it contributes zero), so a DARTS-PT cell of NB201 keeps all six edges.
Validation accuracy is measured on the whole validation half of the search split, in eval mode.
Fine-tuning trains the weights only, at the supernet training's final learning rate (``w_lr_min``):
the decisions are made by masking, not by α. Each fine-tune is a checkpointed phase, and the decisions
live in the supernet's state, so a killed search resumes (re-measuring decisions it already made, which
gives the same answers on the same state).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies import register_strategy
from nni_nas_bench.strategies.darts import DartsStrategy, SearchRun
from search_spaces.genotype import Genotype
from search_spaces.supernet import DartsSupernet, edge_offsets


def select_op(net: Any, cell: str, row: int, accuracy: Callable[[], float]) -> tuple[str, dict[str, float]]:
    """Decide edge ``row`` of ``cell``: the op whose masking lowers ``accuracy()`` most; fix the edge to it.

    Returns the op and the accuracy measured with each op masked.
    """
    ops = list(net.candidate_ops)
    base = net.edge_weights(cell)[row].detach()
    scores: dict[str, float] = {}
    for op in net.edge_ops[cell][row]:
        if op == "none":
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
    measured with each input edge removed.
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


@register_strategy("darts_pt")
class DartsPtStrategy(DartsStrategy):
    """DARTS-PT: DARTS's supernet training (``epochs`` etc.), then perturbation-based selection.

    ``finetune_epochs`` (SPEC: 5) of weight training follow every decision. ``order`` defaults to 1:
    DARTS-PT selects on a first-order DARTS supernet.
    """

    def __init__(self, *, finetune_epochs: int = 5, order: int = 1, **settings: Any):
        super().__init__(order=order, **settings)
        if isinstance(finetune_epochs, bool) or not isinstance(finetune_epochs, int) or finetune_epochs < 0:
            raise ConfigError(f"darts_pt.finetune_epochs must be an integer >= 0, got {finetune_epochs!r}")
        self.finetune_epochs = finetune_epochs

    @property
    def settings(self) -> dict[str, Any]:
        return {**super().settings, "finetune_epochs": self.finetune_epochs}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, finetune_epochs={self.finetune_epochs}"

    def _search(self, run: SearchRun) -> tuple[Genotype, float]:
        from nni_nas_bench.data._seeding import derive_seed
        from nni_nas_bench.training.protocol import Protocol
        from nni_nas_bench.training.trainer import evaluate

        net = self.build_supernet(run, layers=self.layers)
        self.train_supernet(net, run, epochs=self.epochs, phase="supernet")
        protocol = Protocol(precision="fp32", channels_last=False)

        def accuracy() -> float:
            return evaluate(net, run.eval_loader, protocol, run.device)

        rng = np.random.RandomState(derive_seed("darts_pt", "order", self.seed) % 2**32)
        decisions: list[dict[str, Any]] = []
        edges = [(cell, row) for cell in net.cell_types for row in range(len(net.edge_ops[cell]))]
        for i in rng.permutation(len(edges)):
            cell, row = edges[i]
            op, scores = select_op(net, cell, row, accuracy)
            decisions.append({"cell": cell, "edge": int(row), "op": op, "masked_acc": scores})
            run.log(f"darts_pt: {cell} edge {row} -> {op} (accuracy with each op masked: {scores})")
            self._finetune(net, run, len(decisions))
        # Only the DARTS cells choose two inputs per node (NB201's nodes sum all earlier ones).
        nodes = [(cell, node) for cell in net.cell_types for node in range(net.n_nodes)] \
            if isinstance(net, DartsSupernet) else []
        for i in rng.permutation(len(nodes)):
            cell, node = nodes[i]
            if node == 0:
                continue  # the first node has exactly two inputs: nothing to decide
            kept, scores = select_inputs(net, cell, node, accuracy)
            decisions.append({"cell": cell, "node": int(node) + 2, "inputs": kept, "removed_acc": scores})
            run.log(f"darts_pt: {cell} node {node + 2} keeps inputs {kept} (accuracy without each: {scores})")
            self._finetune(net, run, len(decisions))
        genotype = net.genotype()
        valid_acc = accuracy()
        run.history[-1]["decisions"] = decisions
        run.history[-1]["genotype_selected"] = genotype.to_text()
        self._save(run)
        return genotype, valid_acc

    def _finetune(self, net: Any, run: SearchRun, step: int) -> list[dict[str, Any]]:
        """Weights only, at the final learning rate of the supernet training (no restart of its schedule)."""
        if self.finetune_epochs == 0:
            return []
        return self.train_supernet(net, run, epochs=self.finetune_epochs, phase=f"finetune{step}",
                                   alpha_from=self.finetune_epochs, lr_range=(self.w_lr_min, self.w_lr_min))
