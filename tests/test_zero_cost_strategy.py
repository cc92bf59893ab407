"""The zero_cost strategy: uniform draws ranked by a proxy, in a process and as scored candidate trials."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from nni_nas_bench import zero_cost
from nni_nas_bench.contract import arch_id
from nni_nas_bench.errors import ConfigError, TrialFailedError
from nni_nas_bench.strategies import create_strategy
from search_spaces import create_space


def _candidate(**zero: object) -> dict:
    space = create_space("nb201")
    return {"role": "candidate", "method": "zero_cost", "dataset": "cifar10", "space": "nb201", "space_args": {},
            "search_seed": 0, "candidate_index": 0, "genotype": space.sample(5).to_text(),
            "protocol": {"preset": "quick", "channels": 4, "layers": 3, "seed": 3},
            "zero_cost": {"proxy": "synflow", "batch_size": 4, **zero},
            "tabular": {"dataset": "cifar10-valid", "metric": "valid", "noise": True, "final_metric": "test"}}


def test_settings_are_checked_and_reach_candidate_trials() -> None:
    strategy = create_strategy("zero_cost", seed=0, budget=3, proxy="snip", batch_size=16)
    assert strategy.candidate_settings() == {"zero_cost": {"proxy": "snip", "batch_size": 16}}
    assert strategy.settings == {"budget": 3, "seed": 0, "replace": True, "proxy": "snip", "batch_size": 16}
    with pytest.raises(ConfigError, match="unknown zero-cost proxy 'nawsot'; choose one of: grad_norm, jacob_cov"):
        create_strategy("zero_cost", proxy="nawsot")
    with pytest.raises(ConfigError, match="batch_size must be an integer >= 2"):
        create_strategy("zero_cost", batch_size=1)
    assert create_strategy("random_search").candidate_settings() == {}  # trained candidates: nothing added


def test_in_process_search_picks_the_best_score(synthetic_root: Path) -> None:
    space = create_space("nb201")
    evaluator = zero_cost.ProxyEvaluator(space, "cifar10", synthetic_root, proxy="naswot", batch_size=8, C=4,
                                         layers=1)
    result = create_strategy("zero_cost", seed=1, budget=4).search(space, evaluator)
    scores = [h["metrics"]["default"] for h in result.history]
    assert evaluator.queries == 4 and len(set(scores)) == 4
    assert result.best_metrics["naswot"] == max(scores)


def test_a_candidate_trial_scores_instead_of_looking_up(synthetic_root: Path, capsys: pytest.CaptureFixture) -> None:
    """Even with ``tabular`` set, a zero_cost candidate is scored: its default is the proxy of the network built
    from the candidate protocol's size and seed, on the seeded batch."""
    from nni_nas_bench.trial import main

    params = _candidate()
    assert main(["--data-root", str(synthetic_root), "--params", json.dumps(params), "--device", "cpu"]) == 0
    final = json.loads(capsys.readouterr().out.split("final: ", 1)[1].splitlines()[0])
    space = create_space("nb201")
    torch.manual_seed(3)
    network = space.build_network(space.parse(params["genotype"]), C=4, layers=3)
    inputs, _ = zero_cost.proxy_batch("cifar10", synthetic_root, 4, seed=3)
    assert final["default"] == pytest.approx(zero_cost.synflow(network, inputs))
    assert final["zero_cost_proxy"] == "synflow" and final["candidate_index"] == 0 and "nb201_index" not in final
    assert final["arch_id"] == arch_id("nb201", final["space_args"], params["genotype"])


def test_a_nan_score_fails_the_candidate(synthetic_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zero_cost, "score", lambda *args, **kwargs: {"synflow": math.nan})
    with pytest.raises(TrialFailedError, match="the synflow score of this network is nan"):
        zero_cost.score_candidate(_candidate(), data_root=synthetic_root, device="cpu")


def test_the_in_process_table_refuses_it_with_the_way_to_run_it() -> None:
    from nni_nas_bench.tabular.runner import multi_trial_strategies, run_tabular

    assert "zero_cost" not in multi_trial_strategies(include_references=True)
    with pytest.raises(ConfigError, match=r"zero_cost scores real networks.*benchmarks/zero_cost\.py"):
        run_tabular(["zero_cost"], runs=1, budget=2)
