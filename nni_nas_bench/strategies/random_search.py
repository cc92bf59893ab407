"""Random search (Li & Talwalkar 2019; SPEC's extra multi-trial baseline): N architectures drawn
uniformly by the space's own sampler, each evaluated with the short candidate protocol; the final pick is
the best by validation accuracy. Unlike the random *baseline* (role ``random``), its pick is a searched
architecture: the search cost is the N candidate trainings.

Sampling is WITHOUT replacement by default (``replace`` false): an architecture is never evaluated twice
until the whole space has been, which is how WeakNAS (Wu et al. 2021, its NAS-Bench-201 table) counts
random search: on a space of N architectures the optimum takes (N + 1) / 2 queries on average (NB201:
~7,800), not N (15,625) as with replacement. ``replace: true`` is the with-replacement sampler of
NAS-Bench-201's own baseline (AutoDL-Projects ``exps/NAS-Bench-201-algos/RANDOM.py``, which calls
``random_arch()`` afresh each time). Each draw is still the space's uniform sampler (rejecting what was
asked), so every architecture not asked yet is equally likely.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies.multi_trial import MultiTrialStrategy, Sample

ENUMERATE_LIMIT = 10**6  # a nearly exhausted space up to this size is finished from an enumeration


class RandomSearchStrategy(MultiTrialStrategy):
    """Best of ``budget`` uniform samples; never waits for results, so any number can run at once."""

    name = "random_search"

    def __init__(self, *, replace: bool = False, **settings: Any):
        super().__init__(**settings)
        if not isinstance(replace, bool):
            raise ConfigError(f"random_search.replace must be true or false, got {replace!r}")
        self.replace = replace

    def _settings(self) -> dict[str, Any]:
        return {"replace": self.replace}

    def _reset(self) -> None:
        self._asked_keys: set[tuple[int, ...]] = set()
        self._space_size = math.prod(len(values) for values in self.choices)

    def _propose(self) -> Sample:
        if self.replace:
            return self.random_sample()
        if len(self._asked_keys) >= self._space_size:  # every architecture asked: a new round
            self._asked_keys.clear()
        for _ in range(100):
            sample = self.random_sample()
            key = tuple(self.indices(sample))
            if key not in self._asked_keys:
                break
        else:
            key = self._remaining() or key
            sample = self.from_indices(list(key))
        self._asked_keys.add(key)
        return sample

    def _remaining(self) -> tuple[int, ...] | None:
        """A uniformly drawn architecture not asked yet, from an enumeration (a nearly exhausted small space,
        where rejection would take many draws); None for a space too large to enumerate."""
        if self._space_size > ENUMERATE_LIMIT:
            return None
        sizes = tuple(len(values) for values in self.choices)
        flat = np.ravel_multi_index(np.array(sorted(self._asked_keys)).T, sizes) if self._asked_keys else []
        left = np.setdiff1d(np.arange(self._space_size), flat)
        return tuple(int(i) for i in np.unravel_index(int(self.rng.choice(left)), sizes))
