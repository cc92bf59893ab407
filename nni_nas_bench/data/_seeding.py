"""Independent, reproducible random streams derived from one user seed.

Several consumers draw randomness from the same ``seed`` (the search split, the subset, each epoch's
order and augmentation). Seeding each with ``seed`` itself, or ``seed + epoch``, would make streams
collide (seed 0 / epoch 1 == seed 1 / epoch 0); hashing a labelled tuple keeps them apart.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch only where a generator is made: derive_seed serves torch-free table lookups too
    import torch


def derive_seed(*parts: object) -> int:
    """A 63-bit seed that depends on every part, so different purposes never share a stream."""
    digest = hashlib.sha256(repr(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def make_generator(*parts: object) -> torch.Generator:
    """A CPU generator seeded from ``parts``.

    CPU on purpose: the same seed then gives the same split, order and augmentation whether the run
    trains on a GPU or on a laptop, and drawing a few index tensors on the CPU is cheap.
    """
    import torch

    generator = torch.Generator()
    generator.manual_seed(derive_seed(*parts))
    return generator
