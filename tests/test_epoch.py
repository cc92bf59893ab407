"""The one training pass every trainer and supernet search shares (``nni_nas_bench.training.epoch``)."""

from __future__ import annotations

import pytest
import torch

from nni_nas_bench.errors import TrialFailedError
from nni_nas_bench.training.epoch import EpochTotals, run_epoch


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    # Two batches of sizes 2 and 1: logits rows pick classes 0,1 | 1; labels 0,0 | 1 -> 2 of 3 correct.
    return [(torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 0])),
            (torch.tensor([[0.0, 1.0]]), torch.tensor([1]))]


def test_totals_weight_each_batch_loss_by_its_size() -> None:
    losses = iter([torch.tensor(1.0), torch.tensor(4.0)])
    totals = run_epoch(_batches(), lambda x, y: (x, next(losses)), torch.device("cpu"))
    assert totals == EpochTotals(loss_sum=1.0 * 2 + 4.0 * 1, correct=2, seen=3)
    assert totals.loss == pytest.approx(2.0)
    assert totals.accuracy == pytest.approx(200 / 3)


def test_after_step_sees_every_batch_in_order() -> None:
    sizes: list[int] = []
    run_epoch(_batches(), lambda x, y: (x, torch.tensor(0.0)), torch.device("cpu"), lambda y: sizes.append(y.numel()))
    assert sizes == [2, 1]


def test_empty_pass_is_zero_not_a_division_error() -> None:
    totals = run_epoch([], lambda x, y: (x, torch.tensor(0.0)), torch.device("cpu"))
    assert (totals.loss, totals.accuracy, totals.seen) == (0.0, 0.0, 0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_loss_fails_with_what_where_and_the_fix(bad: float) -> None:
    totals = run_epoch(_batches(), lambda x, y: (x, torch.tensor(bad)), torch.device("cpu"))
    message = r"^darts search loss became (nan|inf) in epoch 3: it diverged; lower w_lr$"
    with pytest.raises(TrialFailedError, match=message):
        totals.finite_or_fail("darts search loss", "in epoch 3", "lower w_lr")
    finite = EpochTotals(3.0, 1, 3)
    assert finite.finite_or_fail("x", "y", "z") is finite
