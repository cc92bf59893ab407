"""Conformance of the suite's ``tpe`` with hyperopt's TPE, through NNI's ``TpeTuner`` which follows it.

NNI 3.0's functions are imported and run on the same history as ours (site-packages
``nni/algorithms/hpo/tpe_tuner.py``); hyperopt (hyperopt/hyperopt@08337520add01488737f72cd62ace799ee31957f,
``hyperopt/tpe.py``) is not installed, so its rules are encoded by hand where NNI differs from it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from nni.algorithms.hpo.tpe_tuner import (
    Record,
    TpeArguments,
    linear_forgetting_weights,
    split_history,
    suggest_categorical,
)

from nni_nas_bench.strategies import create_strategy
from tests.conformance.multi_trial_toy import ToySpace

SIZES = (5, 3, 4)
SPACE = ToySpace({f"d{i}": list(range(k)) for i, k in enumerate(SIZES)})


def score(sample: dict[str, Any]) -> dict[str, Any]:
    """A deterministic accuracy with ties (so the tie rule of the good/bad split matters too)."""
    return {"default": float((3 * sample["d0"] + 2 * sample["d1"] * sample["d2"]) % 7)}


def told(n: int, seed: int = 3, space: ToySpace = SPACE, **settings: Any) -> Any:
    """A ``tpe`` told ``n`` results of uniform, distinct proposals (startup larger than n: no modelling)."""
    strategy = create_strategy("tpe", seed=seed, budget=n + 5, startup=n + 1, **settings)
    strategy.start(space)
    for _ in range(n):
        sample = strategy.ask()
        strategy.tell(sample, score(sample))
    return strategy


def nni_history(strategy: Any) -> list[list[Record]]:
    """Per decision, NNI's records of the same results (maximise: loss = -accuracy), in the order told."""
    rows = [(strategy.indices(h["sample"]), h["metrics"]["default"]) for h in strategy.history]
    return [[Record(idx[d], -acc) for idx, acc in rows] for d in range(len(SIZES))]


def nni_density(args: TpeArguments, records: list[Record], size: int) -> tuple[np.ndarray, np.ndarray]:
    """NNI's l and g of one decision: tpe_tuner.py:313-317 and 321-323 (the same expression for both)."""
    out = []
    for part in split_history(args, records):
        counts = np.bincount(part, linear_forgetting_weights(args, len(part)), size)
        out.append((counts + args.prior_weight) / sum(counts + args.prior_weight))
    return out[0], out[1]


def test_categorical_densities_equal_nnis() -> None:
    """NNI tpe_tuner.py:309-323 (suggest_categorical: ``counts + prior_weight`` for every value, the prior
    of hyperopt's tpe.py ``tpe_cat_pseudocounts``: ``counts + p.size * prior_weight * p``), with
    split_history (tpe_tuner.py:344-353): before the fix ours added prior_weight / K, a K-times weaker prior."""
    strategy = told(20)
    log_l, log_g = strategy.log_densities()
    args = TpeArguments()
    for d, (records, size) in enumerate(zip(nni_history(strategy), SIZES)):
        below, above = nni_density(args, records, size)
        np.testing.assert_allclose(np.exp(log_l[d, :size]), below, rtol=1e-12)
        np.testing.assert_allclose(np.exp(log_g[d, :size]), above, rtol=1e-12)


def test_good_set_is_capped_at_the_forgetting_window() -> None:
    """hyperopt tpe.py ap_split_trials: ``n_below = min(ceil(gamma sqrt(n)), gamma_cap=DEFAULT_LF)``;
    NNI tpe_tuner.py:348-349. With gamma 0.99 and 60 results, ceil(0.99 sqrt(60)) = 8 > cap 5."""
    strategy = told(60, gamma=0.99, forgetting=5)
    args = TpeArguments(gamma=0.99, linear_forgetting=5)
    assert math.ceil(0.99 * math.sqrt(60)) > 5
    log_l, _ = strategy.log_densities()
    for d, (records, size) in enumerate(zip(nni_history(strategy), SIZES)):
        below, _ = nni_density(args, records, size)
        np.testing.assert_allclose(np.exp(log_l[d, :size]), below, rtol=1e-12)
        assert len(split_history(args, records)[0]) == 5


def test_bad_set_is_forgotten_in_the_order_told() -> None:
    """hyperopt tpe.py ap_split_trials keeps each set in trial order (``zip(o_idxs, o_vals)``, docs sorted
    by tid in ``suggest`` "so that linear_forgetting removes the oldest ones"); linear_forgetting_weights
    ramps the oldest ``N - LF`` from 1/N (tpe.py linear_forgetting_weights; NNI tpe_tuner.py:355-365). NNI's
    split_history orders the sets by loss instead: ours keeps hyperopt's order (docs/fidelity.md ``tpe``)."""
    strategy = told(40)
    _, log_g = strategy.log_densities()
    acc = np.array([h["metrics"]["default"] for h in strategy.history])
    idx = np.array([strategy.indices(h["sample"]) for h in strategy.history])
    n_good = math.ceil(0.25 * math.sqrt(40))
    good = set(np.argsort(-acc, kind="stable")[:n_good])
    bad = [i for i in range(40) if i not in good]  # in the order told
    n = len(bad)
    weights = np.concatenate([np.linspace(1.0 / n, 1.0, n - 25), np.ones(25)])
    for d, size in enumerate(SIZES):
        counts = np.bincount(idx[bad, d], weights, size) + 1.0
        np.testing.assert_allclose(np.exp(log_g[d, :size]), counts / counts.sum(), rtol=1e-12)


def test_densities_of_decisions_of_equal_sizes_equal_nnis_and_hyperopts_forgetting() -> None:
    """The same rules as the three tests above (NNI tpe_tuner.py:309-323 and 344-365; hyperopt tpe.py
    ap_split_trials and linear_forgetting_weights) on decisions that all have 5 values, as NAS-Bench-201's
    six edges: the strategy takes a faster path there (no padding), which must give the same densities."""
    sizes = (5, 5, 5, 5)
    space = ToySpace({f"d{i}": list(range(k)) for i, k in enumerate(sizes)})
    strategy = told(20, space=space)  # 20 results: no forgetting, so NNI's split gives the same sets
    log_l, log_g = strategy.log_densities()
    args = TpeArguments()
    records = [[Record(idx[d], -acc) for idx, acc in ((strategy.indices(h["sample"]), h["metrics"]["default"])
                                                      for h in strategy.history)] for d in range(len(sizes))]
    for d, size in enumerate(sizes):
        below, above = nni_density(args, records[d], size)
        np.testing.assert_allclose(np.exp(log_l[d]), below, rtol=1e-12)
        np.testing.assert_allclose(np.exp(log_g[d]), above, rtol=1e-12)
    strategy = told(60, space=space)  # 60 results: the bad set is forgotten in the order told (hyperopt)
    log_l, log_g = strategy.log_densities()
    acc = np.array([h["metrics"]["default"] for h in strategy.history])
    idx = np.array([strategy.indices(h["sample"]) for h in strategy.history])
    good = sorted(np.argsort(-acc, kind="stable")[: math.ceil(0.25 * math.sqrt(60))])
    bad = [i for i in range(60) if i not in set(good)]
    weights = np.concatenate([np.linspace(1.0 / len(bad), 1.0, len(bad) - 25), np.ones(25)])
    for d, size in enumerate(sizes):
        for log_density, rows, w in ((log_l, good, np.ones(len(good))), (log_g, bad, weights)):
            counts = np.bincount(idx[rows, d], w, size) + 1.0
            np.testing.assert_allclose(np.exp(log_density[d]), counts / counts.sum(), rtol=1e-12)


def test_each_decision_takes_nnis_suggestion() -> None:
    """NNI tpe_tuner.py:221-226 and 309-325: per parameter, ``n_ei_candidates`` draws from l by
    ``rng.choice(size, n, p)``, the argmax of log l - log g (hyperopt tpe.py ``broadcast_best``), each
    decision on its own. Same generator state, same history: the same proposal (before the fix ours
    ranked whole architectures by the summed ratio)."""
    for n, seed in [(n, seed) for n in (20, 23, 26) for seed in range(4)]:  # < 25 bad results: no forgetting
        strategy = told(n, seed, allow_repeats=True)
        strategy.startup = 0
        rng = np.random.RandomState()
        rng.set_state(strategy.rng.get_state())
        args = TpeArguments()
        expected = [int(suggest_categorical(args, rng, records, size))
                    for records, size in zip(nni_history(strategy), SIZES)]
        assert strategy.indices(strategy.ask()) == expected


def test_a_repeat_falls_back_to_the_best_new_draw() -> None:
    """Kept difference (``allow_repeats`` false, default): an architecture is never proposed twice; the
    reference would re-propose it (NNI then substitutes a grid point, nni/common/hpo_utils/dedup.py)."""
    strategy = told(30)
    strategy.startup = 0
    asked = {tuple(strategy.indices(h["sample"])) for h in strategy.history}
    for _ in range(5):
        sample = strategy.ask()
        assert tuple(strategy.indices(sample)) not in asked
        asked.add(tuple(strategy.indices(sample)))
        strategy.tell(sample, score(sample))
