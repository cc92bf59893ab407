"""Random search (Li & Talwalkar 2019; SPEC's extra multi-trial baseline): N architectures drawn
uniformly by the space's own sampler, each evaluated with the short candidate protocol; the final pick is
the best by validation accuracy. Unlike the random *baseline* (role ``random``), its pick is a searched
architecture: the search cost is the N candidate trainings.
"""

from __future__ import annotations

from nni_nas_bench.strategies import register_strategy
from nni_nas_bench.strategies.multi_trial import MultiTrialStrategy, Sample


@register_strategy("random_search")
class RandomSearchStrategy(MultiTrialStrategy):
    """Best of ``budget`` uniform samples; never waits for results, so any number can run at once."""

    def _propose(self) -> Sample:
        return self.random_sample()
