"""Model cost counters reported with every result: parameters and FLOPs."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> float:
    """Millions of parameters used at test time (the auxiliary head is excluded, as papers report)."""
    return sum(
        p.numel() for name, p in model.named_parameters() if not name.startswith("auxiliary_head")
    ) / 1e6


@torch.no_grad()
def count_mflops(model: nn.Module, image_size: int) -> float:
    """Millions of multiply-adds of one test-time forward pass (torch's FLOP counter / 2).

    Counted in eval mode (no auxiliary head, no DropPath); the model's mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        x = torch.zeros(1, 3, image_size, image_size, device=device)
        with FlopCounterMode(display=False) as counter:
            model(x)
        return counter.get_total_flops() / 2 / 1e6
    finally:
        model.train(was_training)
