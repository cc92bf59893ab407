"""One pass over a training loader, shared by the final training and every supernet search.

Each family's step differs (DARTS alternates an α step and a w step, ENAS/MANAS/NAO sample an
architecture per batch, Single-Path anneals its thresholds, the final training may use an auxiliary
head); what they share is the pass itself: the running loss and accuracy, kept on the device so a step
never waits for the host, and the check that the loss stayed finite, so a diverged run fails with a
reason instead of reporting NaN as an accuracy. :func:`run_epoch` is that pass; a caller supplies the
step and, optionally, what to do after each step (progress lines, a controller's reward).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from nni_nas_bench.errors import TrialFailedError

Step = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class EpochTotals:
    """What one pass measured: the summed loss (per sample), correct predictions and samples seen."""

    loss_sum: float
    correct: int
    seen: int

    @property
    def loss(self) -> float:
        """Mean training loss of the pass."""
        return self.loss_sum / max(self.seen, 1)

    @property
    def accuracy(self) -> float:
        """Training accuracy (%) of the pass."""
        return 100.0 * self.correct / max(self.seen, 1)

    def finite_or_fail(self, what: str, where: str, fix: str) -> EpochTotals:
        """These totals, or a TrialFailedError "``what`` became <loss> ``where``: it diverged; ``fix``" when the
        mean loss is NaN or infinite."""
        if not math.isfinite(self.loss):
            raise TrialFailedError(f"{what} became {self.loss} {where}: it diverged; {fix}")
        return self


def run_epoch(batches: Iterable[tuple[torch.Tensor, torch.Tensor]], step: Step, device: torch.device,
              after_step: Callable[[torch.Tensor], None] | None = None) -> EpochTotals:
    """Run ``step(x, y) -> (logits, loss)`` on every batch and total loss and accuracy over the pass.

    The step does its own optimisation (zero_grad, backward, optimiser steps); this loop only measures.
    ``after_step(y)`` runs after each step. Totals stay device tensors until the end of the pass: one host
    synchronisation per epoch, not per step.
    """
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    for x, y in batches:
        logits, loss = step(x, y)
        loss_sum += loss.detach().float() * y.numel()
        correct += (logits.detach().argmax(1) == y).sum()
        seen += y.numel()
        if after_step is not None:
            after_step(y)
    return EpochTotals(loss_sum.item(), int(correct.item()), seen)
