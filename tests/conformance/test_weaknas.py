"""Conformance of ``weaknas`` with the authors' code, VITA-Group/WeakNAS@86dc0f42e1a51ee29597e9697b903bd28ee0b765,
``WeakNAS.py`` (``run``: lines 216-323; arguments: lines 434-476; NB201 commands: README.md:79-91)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.neural_network import MLPRegressor

from nni_nas_bench.strategies import create_strategy
from tests.conformance.multi_trial_toy import ToySpace

SPACE = ToySpace({"a": list(range(4)), "b": list(range(3)), "c": list(range(2))})  # 24 architectures


def started(**settings: Any) -> Any:
    strategy = create_strategy("weaknas", seed=0, budget=24, **settings)
    strategy.start(SPACE)
    return strategy


def test_mlp_is_sklearns_regressor_with_the_reference_arguments() -> None:
    """WeakNAS.py:299 ``MLPRegressor(hidden_layer_sizes=args.mlp_size, max_iter=args.mlp_iter)`` with
    ``--mlp_size 1000 1000 1000 1000 --mlp_iter 100`` (WeakNAS.py:466-467, README.md:83); everything else
    scikit-learn's defaults (Adam, lr 1e-3, batch min(200, n), alpha 1e-4, ReLU)."""
    model = started().make_predictor(seed=7)
    reference = MLPRegressor(hidden_layer_sizes=[1000, 1000, 1000, 1000], max_iter=100, random_state=7)
    assert isinstance(model, MLPRegressor)
    params, expected = model.get_params(), reference.get_params()
    assert tuple(params.pop("hidden_layer_sizes")) == tuple(expected.pop("hidden_layer_sizes"))
    assert params == expected
    assert (params["alpha"], params["batch_size"], params["solver"]) == (1e-4, "auto", "adam")


def test_gbdt_has_the_reference_xgboost_settings() -> None:
    """WeakNAS.py:288-293: gbtree, ``max_depth`` 20 (line 446), ``n_trees`` 1000 boosting rounds (line 445),
    ``reg:squarederror`` (line 464); xgboost's default eta 0.3. Ours: scikit-learn's gradient boosting."""
    model = started(predictor="gbdt").make_predictor(seed=1)
    assert isinstance(model, GradientBoostingRegressor)
    assert (model.n_estimators, model.max_depth, model.learning_rate, model.loss) == (1000, 20, 0.3, "squared_error")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_fitted_mlp_predicts_as_sklearns() -> None:
    """The predictor is fit and queried as WeakNAS.py:300-301 (fit on the evaluated rows, predict all)."""
    strategy = started(hidden=8, layers=2, iterations=20)
    x = strategy.encode_indices(np.array([[0, 0, 0], [1, 2, 1], [3, 1, 0], [2, 2, 1], [0, 1, 1]]))
    y = np.array([-1.0, 0.5, 1.2, 0.3, -1.0])
    state = strategy.rng.get_state()
    ours = strategy._fit_predict(x, y, x)
    rng = np.random.RandomState()
    rng.set_state(state)
    reference = MLPRegressor(hidden_layer_sizes=(8, 8), max_iter=20, random_state=int(rng.randint(2**31)))
    np.testing.assert_allclose(ours, reference.fit(x, y).predict(x), rtol=1e-6)


def test_top_k_is_over_everything_ranked_less_the_evaluated() -> None:
    """WeakNAS.py:304-309 ``all_index_selected = all_index_by_acc[:top_acc]`` (top of the WHOLE space),
    then 247 ``all_index_sample = all_index_selected[~np.isin(..., keep_index_train)]`` and 255 a uniform
    draw without replacement; when fewer than ``num_sample_train`` are left, 257-265 take the not-evaluated
    in predicted order. Before the fix ours took the top ``top_k`` of the unevaluated."""
    strategy = started(per_iteration=3, top_k=5, pool_size=24)
    predicted = -np.arange(24, dtype=float)  # index i is the (i+1)-th best
    unseen = np.ones(24, dtype=bool)
    unseen[[1, 3]] = False  # two of the top 5 evaluated: 3 left (0, 2, 4)
    for _ in range(20):
        assert set(strategy.select(predicted, unseen)) <= {0, 2, 4}
    unseen[[0, 4]] = False  # one left in the top 5 (2): the best-predicted unseen in order
    assert list(strategy.select(predicted, unseen)) == [2, 5, 6]


def test_initial_samples_are_distinct() -> None:
    """WeakNAS.py:244: the initial set is ``np.random.choice(..., replace=False)``."""
    strategy = started(initial=24, predictor="linear")
    samples = [strategy.ask() for _ in range(24)]
    assert len({tuple(strategy.indices(s)) for s in samples}) == 24


def test_labels_are_standardised_on_the_evaluated_samples() -> None:
    """Kept difference: WeakNAS.py:418 standardises with the whole benchmark's labels (unknown to a search);
    ours with the evaluated ones (docs/fidelity.md ``weaknas``)."""
    seen: list[np.ndarray] = []
    strategy = started(initial=6, per_iteration=2, top_k=4, pool_size=24, predictor="linear")
    fit = strategy._fit_predict
    strategy._fit_predict = lambda x, y, f: (seen.append(y), fit(x, y, f))[1]
    accuracies = []
    for i in range(8):
        sample = strategy.ask()
        accuracies.append(float(sum(strategy.indices(sample)) + i % 2))
        strategy.tell(sample, {"default": accuracies[-1]})
    y = np.array(accuracies[:6])
    np.testing.assert_allclose(seen[0], (y - y.mean()) / (y.std() + 1e-8))


def test_each_refit_learns_every_evaluation_and_ranks_the_whole_space() -> None:
    """WeakNAS.py:271 ``train_index = np.concatenate((keep_index_train, train_index_sample))`` then 300-301
    ``regr.fit(df_dict_all.iloc[train_index], ...)``, ``pred_all = regr.predict(args.df_dict_all)``: every
    architecture evaluated so far is learnt, and ALL of the benchmark (``all_index = np.arange(...)``, :217)
    is ranked, at every iteration. Ours keeps the results in arrays and enumerates a small space once per
    process (shared, read-only): each refit must still see all of them, in the order told."""
    calls: list[tuple[np.ndarray, np.ndarray]] = []
    strategy = started(initial=4, per_iteration=3, top_k=6, pool_size=24, predictor="linear")
    fit = strategy._fit_predict
    strategy._fit_predict = lambda x, y, f: (calls.append((x.copy(), f)), fit(x, y, f))[1]
    evaluated = []
    for _ in range(13):
        sample = strategy.ask()
        evaluated.append(strategy.encode(sample))
        strategy.tell(sample, {"default": float(sum(strategy.indices(sample)))})
    assert [len(x) for x, _ in calls] == [4, 7, 10]  # 4 initial, then batches of 3
    whole = strategy.encode_indices(np.array([[a, b, c] for a in range(4) for b in range(3) for c in range(2)]))
    for x, features in calls:
        np.testing.assert_array_equal(x, np.array(evaluated[: len(x)]))
        assert len(features) == 24 and {tuple(r) for r in features} == {tuple(r) for r in whole}
        assert not features.flags.writeable  # shared by every search of this process: never modified
    assert started(predictor="linear")._whole_x is strategy._whole_x  # enumerated once


def _full_sort_select(strategy: Any, predicted: np.ndarray, unseen: np.ndarray) -> np.ndarray:
    """The selection of WeakNAS.py:247-265, 304-309 as a full sort of the ranking (what ours did before the
    partial sort): top ``top_k`` of everything ranked, less the evaluated; a uniform draw, or the best unseen."""
    order = np.lexsort((np.arange(len(predicted)), -predicted))
    left = order[: strategy.top_k][unseen[order[: strategy.top_k]]]
    if len(left) >= strategy.per_iteration:
        return strategy.rng.choice(left, size=strategy.per_iteration, replace=False)
    return order[unseen[order]][: strategy.per_iteration]


@pytest.mark.parametrize("ties", [False, True])
def test_the_partial_sort_selects_what_the_full_ranking_selects(ties: bool) -> None:
    """Ours ranks by a partial sort (only the cells at least as good as the ``top_k``-th are sorted); with
    ties (the same prediction for many cells, lower index first) and with few unseen cells left it must pick
    what the full ranking picks, drawing the same random numbers."""
    rng = np.random.RandomState(3)
    for trial in range(200):
        ours, theirs = started(per_iteration=3, top_k=5, pool_size=24), started(per_iteration=3, top_k=5, pool_size=24)
        predicted = rng.randint(0, 4, 24).astype(float) if ties else rng.randn(24)
        unseen = rng.rand(24) < rng.choice([0.15, 0.5, 0.95])
        theirs.rng.set_state(ours.rng.get_state())
        got, expected = ours.select(predicted, unseen), _full_sort_select(theirs, predicted, unseen)
        assert list(got) == list(expected), (trial, predicted, unseen)
        assert ours.rng.get_state()[2] == theirs.rng.get_state()[2]
