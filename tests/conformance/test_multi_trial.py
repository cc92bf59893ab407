"""The multi-trial base's candidate hook, and the one method that uses it against its reference: NASWOT's
search (BayesWatch/nas-without-training@b3a82a6642564df115f989ff940ec6b8ef9ca9d3 ``search.py``)."""

from __future__ import annotations

import math

import numpy as np

from nni_nas_bench.strategies import create_strategy, list_strategies
from search_spaces import create_space


def test_only_a_scored_method_changes_what_a_candidate_trial_does() -> None:
    """``candidate_settings`` (strategies/multi_trial.py) is empty for every method whose candidates train."""
    from nni_nas_bench.strategies import get_strategy_class

    for name in list_strategies():
        if getattr(get_strategy_class(name), "kind", None) == "multi_trial" and name != "zero_cost":
            assert create_strategy(name).candidate_settings() == {}, name
    assert create_strategy("zero_cost").candidate_settings() == {"zero_cost": {"proxy": "naswot", "batch_size": 64}}


def test_naswot_search_draws_with_replacement_and_picks_the_nan_argmax() -> None:
    """search.py:89 draws N indices with ``np.random.randint``: each draw afresh and uniform, repeats allowed
    (the default ``replace: true``: the draws are exactly the space's sampler called on the seeded stream);
    search.py:164 picks ``np.nanargmax`` of their scores, so a NaN score is never the pick."""
    space = create_space("nb201")
    strategy = create_strategy("zero_cost", seed=0, budget=40)
    assert strategy.settings["replace"] is True
    scores = {}

    def score(sample: dict) -> dict | None:
        key = tuple(sorted(sample.items()))
        value = scores.setdefault(key, math.nan if len(scores) % 3 == 0 else float(len(scores)))
        return {"default": value} if math.isfinite(value) else None

    result = strategy.search(space, score)
    drawn = [tuple(sorted(h["sample"].items())) for h in result.history]
    finite = {k: v for k, v in scores.items() if math.isfinite(v)}
    assert tuple(sorted(result.best_sample.items())) == max(finite, key=finite.get)
    values = np.array([scores[k] for k in drawn])
    assert result.best_metrics["default"] == values[np.nanargmax(values)]
    rng = np.random.RandomState(0)
    assert drawn == [tuple(sorted(space.random_sample(rng).items())) for _ in range(40)]
    no_repeat = create_strategy("zero_cost", seed=0, budget=40, replace=False).search(space, score)
    assert len({tuple(sorted(h["sample"].items())) for h in no_repeat.history}) == 40
