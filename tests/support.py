"""Helpers shared by several test files (a test file never imports another: each stays runnable alone).

Synthetic outcomes for tuners driven by the simulated NNI manager (``tests/simulated_manager.py``), and the
tiny search settings of the multi-trial methods that the end-to-end and resume tests run.
"""

from __future__ import annotations

import zlib

from search_spaces import create_space

SPACE = create_space("darts")

# Tiny settings of the multi-trial methods other than evolution: 4 candidates each.
TINY_MULTI_TRIAL_SEARCH = {
    "random_search": {"budget": 4},
    "reinforce": {"budget": 4},
    "tpe": {"budget": 4},
    "nsganet": {"budget": 4, "population": 2, "generations": 1, "offspring": 2},
    "weaknas": {"budget": 4, "initial": 2, "per_iteration": 2, "top_k": 4, "pool_size": 50, "hidden": 16,
                "layers": 2, "iterations": 5},
    "zero_cost": {"budget": 4, "batch_size": 8},
}


def found_genotype(seed: int) -> str:
    """The DARTS genotype a fake one-shot search with this seed 'finds'."""
    return SPACE.sample(1000 + seed).to_text()


def synthetic_accuracy(genotype: str) -> float:
    """A synthetic validation accuracy of a DARTS genotype: share of sep_conv_3x3 ops, plus a tie-breaker of
    the text."""
    parsed = SPACE.parse(genotype)
    ops = [op for op, _ in parsed.normal + parsed.reduce]
    return 100.0 * ops.count("sep_conv_3x3") / len(ops) + (zlib.crc32(genotype.encode()) % 1000) / 1e4
