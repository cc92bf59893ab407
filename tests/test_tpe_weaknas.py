"""The suite's TPE and WeakNAS on small spaces: no repeated architectures, the whole-space ranking of
WeakNAS, and NNI's TPE kept as a reference outside the default tabular table."""

from __future__ import annotations

from typing import Any

import pytest

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies import create_strategy
from search_spaces import create_space

# Additive objective on NB201: each edge scores its op; the optimum is every edge at nor_conv_3x3.
OP_SCORE = {"none": 0.0, "skip_connect": 1.0, "avg_pool_3x3": 2.0, "nor_conv_1x1": 3.0, "nor_conv_3x3": 4.0}


def additive(sample: dict[str, Any]) -> dict[str, Any]:
    return {"default": sum(OP_SCORE[op] for op in sample.values())}


@pytest.fixture(scope="module")
def nb201() -> Any:
    return create_space("nb201")


def keys(result: Any) -> list[tuple[Any, ...]]:
    return [tuple(sorted(h["sample"].items())) for h in result.history]


def test_tpe_never_repeats_and_finds_the_additive_optimum(nb201: Any) -> None:
    result = create_strategy("tpe", budget=300, seed=0).search(nb201, additive, batch_size=3)
    assert len(set(keys(result))) == 300  # the point of our TPE: NNI's re-proposes evaluated cells
    assert result.best_metrics["default"] == 24.0
    # the model concentrates: the last 100 proposals score far above a uniform draw's mean (12)
    late = [h["metrics"]["default"] for h in result.history[200:]]
    assert sum(late) / len(late) > 16.0  # hyperopt's prior (prior_weight per value) explores more than 1/K did


def test_tpe_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="gamma"):
        create_strategy("tpe", gamma=1.5)
    with pytest.raises(ConfigError, match="allow_repeats"):
        create_strategy("tpe", allow_repeats="no")


@pytest.mark.parametrize("predictor", ["linear", "mlp"])
def test_weaknas_ranks_the_whole_small_space(nb201: Any, predictor: str) -> None:
    """NB201 (15,625 cells) is ranked whole: an additive objective's optimum is found within a few refits."""
    settings = {"initial": 10, "predictor": predictor, "hidden": 32, "layers": 2, "iterations": 100}
    strategy = create_strategy("weaknas", budget=150, seed=0, **settings)
    result = strategy.search(nb201, additive)
    assert len(set(keys(result))) == 150
    assert result.best_metrics["default"] == 24.0, predictor
    assert strategy._whole is not None and len(strategy._whole) == nb201.num_architectures()


def test_weaknas_uses_a_random_pool_on_large_spaces() -> None:
    strategy = create_strategy("weaknas", budget=12, seed=0, initial=4, per_iteration=4, top_k=4, pool_size=20,
                               predictor="linear")
    result = strategy.search(create_space("darts"), lambda s: {"default": float(len(repr(s)) % 7)})
    assert strategy._whole is None and len(set(keys(result))) == 12


def test_weaknas_rejects_an_unknown_predictor() -> None:
    with pytest.raises(ConfigError, match="predictor must be one of mlp, gbdt, linear"):
        create_strategy("weaknas", predictor="xgboost")


def test_nni_tpe_is_a_reference_outside_the_default_table() -> None:
    from nni_nas_bench.tabular.runner import TABLE_SETTINGS, multi_trial_strategies

    assert "tpe" in multi_trial_strategies() and "nni_tpe" not in multi_trial_strategies()
    assert "nni_tpe" in multi_trial_strategies(include_references=True)
    assert TABLE_SETTINGS["weaknas"]["predictor"] == "linear"
