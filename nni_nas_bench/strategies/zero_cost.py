"""Training-free NAS (zero-cost proxies): draw N architectures uniformly, score each untrained network on one
real minibatch with a proxy, keep the best score (Mellor et al., ICML 2021 "NAS without training", whose
search is exactly this with NASWOT; Abdelfattah et al., ICLR 2021 for synflow, grad_norm, snip, jacob_cov).

The proxies are :mod:`nni_nas_bench.zero_cost` (each as its reference code computes it). Draws are random
search's: the space's own uniform sampler (:class:`RandomSearchStrategy`), with replacement as NASWOT's
``search.py:89`` draws (``replace: false``: never the same cell twice). A candidate's
"evaluation" is its score, so its metrics' ``default`` is the proxy value (higher is better for every proxy)
and the pick is the highest score; a NaN score (jacob_cov of a degenerate network) is a failed candidate.

Where the scoring runs:

- under ``nnictl`` (:class:`~nni_nas_bench.tuners.MultiTrialTuner`): each candidate is a cheap trial (role
  ``candidate``) whose parameters carry :meth:`ZeroCostStrategy.candidate_settings` (``zero_cost``: proxy,
  batch size); the trial scores instead of training, also in tabular mode, where only the pick and the
  random baseline are looked up in the NB201 table;
- in a process: ``strategy.search(space, ProxyEvaluator(...))``.

Settings: ``budget`` (N, default 100 as in the NASWOT paper's main table), ``proxy`` (default ``naswot``),
``batch_size`` (default 64, zero-cost-nas's NB201 setting; NASWOT used 128), ``replace`` (default true).
"""

from __future__ import annotations

from typing import Any

from nni_nas_bench.strategies.checks import check_int
from nni_nas_bench.strategies.random_search import RandomSearchStrategy
from nni_nas_bench.zero_cost import check_proxy


class ZeroCostStrategy(RandomSearchStrategy):
    """The best of ``budget`` uniform samples by a zero-cost proxy's score."""

    name = "zero_cost"
    # Its candidates are scored, not looked up: the in-process tabular table (table lookups only) leaves it out.
    tabular = False

    def __init__(self, *, proxy: str = "naswot", batch_size: int = 64, replace: bool = True, **settings: Any):
        # replace: NASWOT's search.py:89 draws its N cells with np.random.randint (with replacement).
        super().__init__(replace=replace, **settings)
        self.proxy, self.batch_size = check_proxy(proxy), check_int(self.name, "batch_size", batch_size, 2)

    def _settings(self) -> dict[str, Any]:
        return {**super()._settings(), "proxy": self.proxy, "batch_size": self.batch_size}

    def candidate_settings(self) -> dict[str, Any]:
        """What a candidate trial needs to score instead of train (put into its parameters)."""
        return {"zero_cost": {"proxy": self.proxy, "batch_size": self.batch_size}}
