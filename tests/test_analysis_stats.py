"""analysis.stats on hand-computed examples: RI and its bootstrap interval, the rank test, Kendall τ and
rank shifts, τ over epochs, cost accounting, and how searched runs are matched with their random baseline."""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analysis import stats
from nni_nas_bench.errors import ConfigError


def _row(role: str, acc: float, *, method: str = "random", dataset: str = "cifar10", space: str = "darts",
         protocol: dict[str, Any] | None = None, seed: int = 0, **extra: Any) -> dict[str, Any]:
    protocol = {"name": "darts", "epochs": 600, "layers": 20, **(protocol or {}), "seed": seed}
    return {"experiment_id": "e", "trial_id": f"t{id(extra)}", "status": "SUCCEEDED", "role": role,
            "method": method, "dataset": dataset, "space": space, "space_args": "{}", "genotype": extra.pop("g", None),
            "protocol": protocol, "protocol_name": protocol["name"], "train_seed": seed, "layers": protocol["layers"],
            "final_acc": acc, "best_acc": extra.pop("best", acc), "complete": True, "failed": False,
            "origin": "nni", **extra}


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------- RI
def test_ri_is_a_ratio_of_means() -> None:
    # searched mean 97.5, random mean 96: RI = 100 * 1.5 / 96 = 1.5625
    assert stats.relative_improvement([97.0, 97.5, 98.0], [95.0, 96.0, 97.0]) == pytest.approx(1.5625)
    assert stats.relative_improvement([96.0], [96.0]) == 0.0
    assert np.isnan(stats.relative_improvement([], [96.0]))


def test_bootstrap_interval_of_a_two_point_baseline() -> None:
    # Searched [98, 98] never varies; a resampled mean of random [96, 100] is 96, 98 or 100 with
    # probabilities 1/4, 1/2, 1/4, so RI is 100*2/96 = 2.0833, 0 or 100*(-2)/100 = -2. Each extreme has
    # probability 1/4 > 2.5 %, so the 95 % percentile interval is exactly [-2, 2.0833].
    low, high = stats.bootstrap_ri([98.0, 98.0], [96.0, 100.0], n_boot=10_000, seed=3, method="percentile")
    assert low == pytest.approx(-2.0)
    assert high == pytest.approx(100 * 2 / 96)
    # A 40 % interval (30 % / 70 % quantiles) falls inside the middle atom: RI = 0 on both sides.
    assert stats.bootstrap_ri([98.0, 98.0], [96.0, 100.0], ci=0.4, seed=3,
                              method="percentile") == pytest.approx((0.0, 0.0))


def test_bootstrap_matches_exact_enumeration() -> None:
    searched, random = np.array([97.0, 98.0, 99.5]), np.array([95.0, 96.0, 97.5])
    # Every resample of 3 out of 3 with replacement is one of 27 equally likely index triples.
    s_means = [searched[list(i)].mean() for i in itertools.product(range(3), repeat=3)]
    r_means = [random[list(i)].mean() for i in itertools.product(range(3), repeat=3)]
    exact = np.array([100 * (s - r) / r for s in s_means for r in r_means])
    for seed in range(3):
        low, high = stats.bootstrap_ri(searched, random, n_boot=40_000, seed=seed, method="percentile")
        assert low == pytest.approx(np.quantile(exact, 0.025), abs=0.06)
        assert high == pytest.approx(np.quantile(exact, 0.975), abs=0.06)


def test_bootstrap_is_seeded_and_constant_data_gives_a_point() -> None:
    a = stats.bootstrap_ri([97.0, 97.5, 98.2], [95.1, 96.3, 97.0], seed=7)
    assert a == stats.bootstrap_ri([97.0, 97.5, 98.2], [95.1, 96.3, 97.0], seed=7)
    assert a != stats.bootstrap_ri([97.0, 97.5, 98.2], [95.1, 96.3, 97.0], seed=8)
    assert stats.bootstrap_ri([97.0] * 4, [96.0] * 4) == pytest.approx((100 / 96, 100 / 96))
    with pytest.raises(ConfigError, match="ci must be in"):
        stats.bootstrap_ri([1.0], [1.0], ci=95)


def test_rank_test_counts_pairs() -> None:
    # Every searched run beats every random one: U = 3 * 2 = 6; exact two-sided p = 2 / C(5, 2) = 0.2.
    u, p = stats.rank_test([3.0, 4.0, 5.0], [1.0, 2.0])
    assert u == 6 and p == pytest.approx(0.2)
    u, _ = stats.rank_test([1.0, 2.0], [3.0, 4.0, 5.0])
    assert u == 0


def test_ri_table_matches_space_protocol_and_seed() -> None:
    rows = [
        _row("searched", 97.0, method="darts"), _row("searched", 98.0, method="darts"),
        _row("random", 95.0), _row("random", 97.0),                                     # the baseline
        _row("random", 50.0, space="enas"),                                            # other space
        _row("random", 60.0, protocol={"layers": 8}),                                  # other protocol
        _row("random", 70.0, seed=1),                                                  # other training seed
        _row("random", 80.0, dataset="sport8"),                                        # other dataset
        _row("searched", 90.0, method="enas", space="nao"),                            # no baseline
    ]
    table = stats.ri_table(_frame(rows), n_boot=500).set_index("method")
    darts = table.loc["darts"]
    assert (darts.searched_n, darts.random_n) == (2, 2)
    assert darts.searched_mean == 97.5 and darts.random_mean == 96.0
    assert darts.searched_std == pytest.approx(np.std([97.0, 98.0], ddof=1))
    assert darts.ri == pytest.approx(1.5625)
    assert darts.ri_low <= darts.ri <= darts.ri_high
    assert "space=darts" in darts.baseline and "same protocol" in darts.baseline
    enas = table.loc["enas"]
    assert enas.random_n == 0 and np.isnan(enas.ri) and enas.baseline.startswith("no random baseline")
    assert sorted(table.reset_index().columns) == sorted(stats.RI_COLUMNS)


def test_ri_table_metric_choice_and_incomplete_trials() -> None:
    rows = [_row("searched", 97.0, method="darts", best=98.0), _row("random", 96.0, best=96.0),
            {**_row("searched", 10.0, method="darts"), "complete": False, "status": "FAILED"}]
    final = stats.ri_table(_frame(rows), "final", n_boot=0).iloc[0]
    best = stats.ri_table(_frame(rows), "best", n_boot=0).iloc[0]
    assert final.searched_n == 1 and final.ri == pytest.approx(100 / 96)
    assert best.ri == pytest.approx(200 / 96)
    assert np.isnan(final.ri_low)  # n_boot=0: no interval
    with pytest.raises(ConfigError, match="unknown metric 'top5'"):
        stats.ri_table(_frame(rows), "top5")


def test_random_summary_and_protocol_table() -> None:
    rows = [_row("random", a, protocol={"name": n}) for n, accs in (("base", [90.0, 92.0]), ("all", [95.0, 96.0, 97.0]))
            for a in accs]
    summary = stats.random_summary(_frame(rows)).set_index("protocol_name")
    assert summary.loc["all", "n"] == 3 and summary.loc["all", "mean"] == 96.0 and summary.loc["all", "std"] == 1.0
    assert summary.loc["base", "min"] == 90.0 and summary.loc["base", "max"] == 92.0
    tricks = stats.protocol_table(_frame(rows))
    assert list(tricks["protocol_name"]) == ["base", "all"]  # ascending mean
    assert tricks.iloc[1]["max"] == 97.0


# ----------------------------------------------------------------------------------------- rankings
def test_kendall_tau_on_a_known_pair_of_rankings() -> None:
    # Items A..E ranked 1..5 by the first scoring and 3, 1, 2, 5, 4 by the second. Of the 10 pairs, 3 are
    # discordant (A-B, A-C, D-E): τ = (7 - 3) / 10 = 0.4.
    tau, p = stats.kendall_tau([1, 2, 3, 4, 5], [3, 1, 2, 5, 4])
    assert tau == pytest.approx(0.4) and 0 < p < 1
    assert stats.kendall_tau([1, 2, 3], [3, 2, 1])[0] == pytest.approx(-1.0)
    # Series align on their index, whatever their order.
    a = pd.Series({"A": 1.0, "B": 2.0, "C": 3.0})
    b = pd.Series({"C": 30.0, "A": 10.0, "B": 20.0})
    assert stats.kendall_tau(a, b)[0] == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="different lengths"):
        stats.kendall_tau([1, 2], [1, 2, 3])


def test_rank_shifts_and_largest_shift() -> None:
    a = pd.Series({"A": 95.0, "B": 94.0, "C": 93.0, "D": 92.0, "E": 91.0})  # ranks A1 B2 C3 D4 E5
    b = pd.Series({"A": 93.0, "B": 95.0, "C": 94.0, "D": 91.0, "E": 92.0})  # ranks B1 C2 A3 E4 D5
    table = stats.rank_shifts(a, b)
    assert table["shift"].to_dict() == {"A": 2, "B": -1, "C": -1, "D": 1, "E": -1}
    assert stats.kendall_tau(table["acc_a"], table["acc_b"])[0] == pytest.approx(0.4)


def test_compare_rankings_pairs_architectures_across_seeds() -> None:
    accs = {0: [95.0, 94.0, 93.0, 92.0, 91.0], 1: [93.0, 95.0, 94.0, 91.0, 92.0]}
    rows = [_row("random", acc, seed=seed, g=f"arch{i}") for seed, values in accs.items()
            for i, acc in enumerate(values)]
    rows.append(_row("random", 99.0, seed=1, g="only-seed-1"))  # not in both rankings: left out
    result = stats.compare_rankings(_frame(rows), "train_seed")
    assert (result.a, result.b, result.n) == (0, 1, 5)
    assert result.tau == pytest.approx(0.4) and result.max_rank_shift == 2
    assert result.mean_abs_change == pytest.approx(np.mean([2, 1, 1, 1, 1]))
    assert result.max_abs_change == 2.0
    with pytest.raises(ConfigError, match="need two values of 'layers'"):
        stats.compare_rankings(_frame(rows), "layers")


def test_moving_average_and_epoch_rank_correlation() -> None:
    assert stats.moving_average(np.array([1.0, 2.0, 3.0, 4.0]), 2).tolist() == [1.0, 1.5, 2.5, 3.5]
    finals = [91.0, 92.0, 93.0, 94.0]
    epoch1 = [54.0, 53.0, 52.0, 51.0]   # reversed ranking: τ = -1
    epoch2 = [70.0, 80.0, 90.0, 100.0]  # final ranking: τ = 1; mean of epochs 1-2 = 62, 66.5, 71, 75.5: τ = 1
    rows = [_row("random", f, curve=[e1, e2, f], g=str(i)) for i, (e1, e2, f) in enumerate(zip(epoch1, epoch2, finals))]
    table = stats.epoch_rank_correlation(_frame(rows), window=2)
    assert table["epoch"].tolist() == [1, 2, 3]
    assert table["tau"].tolist() == pytest.approx([-1.0, 1.0, 1.0])
    assert table["tau_smoothed"].tolist() == pytest.approx([-1.0, 1.0, 1.0])
    assert set(table["n"]) == {4}


# ---------------------------------------------------------------------------------------------- cost
def test_cost_table_counts_search_and_training_hours() -> None:
    rows = [
        _row("search", 80.0, method="darts", search_seconds=3600.0, train_seconds=100.0, device="H200"),
        _row("search", 81.0, method="darts", search_seconds=None, train_seconds=7200.0, device="H200"),
        _row("searched", 97.0, method="darts", train_seconds=1800.0, device="H200"),
        _row("searched", 97.0, method="darts", train_seconds=5400.0, device="A100"),
        _row("random", 96.0, train_seconds=3600.0, device="cpu"),
    ]
    table = stats.cost_table(_frame(rows)).set_index("method")
    darts = table.loc["darts"]
    # search_seconds when reported, else train_seconds: 3600 + 7200 s = 3 h over 2 runs.
    assert darts.search_runs == 2 and darts.search_hours == pytest.approx(3.0)
    assert darts.search_hours_per_run == pytest.approx(1.5)
    assert darts.train_runs == 2 and darts.train_hours == pytest.approx(2.0) and darts.train_hours_per_run == 1.0
    assert darts.devices == "A100, H200"
    assert table.loc["random"].search_runs == 0 and table.loc["random"].train_hours == pytest.approx(1.0)


def test_protocol_key_ignores_only_the_seed_and_how_the_step_runs() -> None:
    a = stats._protocol_key({"name": "darts", "lr": 0.025, "seed": 0})
    assert a == stats._protocol_key(json.dumps({"seed": 5, "lr": 0.025, "name": "darts"}))
    # a baseline trained before protocols had cuda_graphs, or on another device, still matches
    assert a == stats._protocol_key({"name": "darts", "lr": 0.025, "seed": 0, "cuda_graphs": True})
    assert a != stats._protocol_key({"name": "darts", "lr": 0.025, "seed": 0, "precision": "bf16"})
    assert a != stats._protocol_key({"name": "darts", "lr": 0.05, "seed": 0})
    assert stats._protocol_key(None) is None


# ---------------------------------------------------------------------------------- ablation studies
def test_studies_are_kept_apart() -> None:
    rows = [
        _row("searched", 97.0, method="darts"), _row("random", 96.0),
        # The tricks study trains random architectures with the searched runs' protocol too: they answer
        # their own question and must not join the RI baseline.
        _row("random", 90.0, study="tricks", variant="darts"), _row("random", 85.0, study="tricks", variant="base"),
        _row("random", 95.0, study="seeds", variant="seed0"),
    ]
    df = _frame(rows)
    assert stats.ri_table(df, n_boot=0).iloc[0].random_n == 1
    assert list(stats.study_rows(df, "tricks").variant) == ["darts", "base"]
    assert len(stats.study_rows(df, "depth")) == 2  # no such study: the unlabelled rows
    unlabelled = df.drop(columns=["study", "variant"])
    assert len(stats.study_rows(unlabelled, "tricks")) == len(df)
    # Tricks are named by their variant (distinct by construction), not by the protocol's preset name.
    assert list(stats.protocol_table(df)["protocol_name"]) == ["base", "darts"]
    summary = stats.random_summary(df)
    assert list(summary["study"]) == ["-", "seeds", "tricks", "tricks"]


def test_bootstrap_mean_difference_hand_computed() -> None:
    from analysis.stats import bootstrap_mean_difference

    assert bootstrap_mean_difference([91.0, 91.0], [90.0, 90.0]) == (1.0, 1.0, 1.0)
    shift, low, high = bootstrap_mean_difference([1.0, 3.0], [0.0, 0.0], n_boot=4000, seed=1)
    # mean(a) resamples to 1, 2 or 3 with probabilities 1/4, 1/2, 1/4: the 95 % interval is [1, 3].
    assert shift == 2.0 and (low, high) == (1.0, 3.0)
    assert all(np.isnan(v) for v in bootstrap_mean_difference([], [1.0]))


def test_bca_is_scipys_two_sample_bca_seeded() -> None:
    """Issue 20: RI intervals through scipy.stats.bootstrap with BCa by default (the percentile interval is a
    setting). The wrapper resamples searched and random independently, as scipy's multi-sample bootstrap
    does, and is seeded."""
    from scipy.stats import bootstrap

    searched, random = np.array([97.0, 97.4, 98.9, 97.1, 99.6]), np.array([95.0, 96.1, 95.4, 97.9, 95.2, 96.0])
    ours = stats.bootstrap_ri(searched, random, n_boot=5000, seed=11)
    # The wrapper sorts each sample first (the interval must not depend on the order a trial DB lists runs in).
    theirs = bootstrap((np.sort(searched), np.sort(random)),
                       lambda s, r, axis=-1: 100 * (s.mean(axis) - r.mean(axis)) / r.mean(axis),
                       n_resamples=5000, method="BCa", vectorized=True, rng=np.random.default_rng(11))
    assert ours == pytest.approx(tuple(theirs.confidence_interval), rel=1e-12)
    assert ours == stats.bootstrap_ri(searched, random, n_boot=5000, seed=11)
    assert ours == stats.bootstrap_ri(searched[::-1], np.roll(random, 2), n_boot=5000, seed=11)
    for method in ("BCa", "percentile"):  # same runs in another order: the same interval
        assert stats.bootstrap_ri(searched, random, seed=3, method=method) == stats.bootstrap_ri(
            searched[[2, 0, 4, 1, 3]], random[::-1], seed=3, method=method)
    assert ours != stats.bootstrap_ri(searched, random, n_boot=5000, seed=11, method="percentile")
    with pytest.raises(ConfigError, match="interval method must be one of"):
        stats.bootstrap_ri(searched, random, method="bca")


def test_bca_falls_back_where_it_is_undefined() -> None:
    """BCa's acceleration needs variation: constant samples give the point, a single run the percentile."""
    assert stats.bootstrap_ri([97.0] * 4, [96.0] * 4) == pytest.approx((100 / 96, 100 / 96))
    assert stats.bootstrap_ri([98.0], [96.0, 97.0, 95.0], seed=2) == stats.bootstrap_ri(
        [98.0], [96.0, 97.0, 95.0], seed=2, method="percentile")


# ---------------------------------------------------------------- effect size, multiplicity, power, IQM
def test_a12_counts_wins_and_half_ties() -> None:
    """Vargha & Delaney (2000): pairs (2>1, 2>0, 1=1, 1>0) give (3 + 0.5) / 4."""
    assert stats.a12([2, 1], [1, 0]) == 0.875
    assert stats.a12([1, 2, 3], [0, 0, 0]) == 1.0 and stats.a12([1, 1], [1, 1]) == 0.5
    assert np.isnan(stats.a12([1.0], []))


def test_holm_adjusts_by_hand_and_keeps_untested_cells_out() -> None:
    """Sorted p 0.01, 0.03, 0.04, 0.5 times 4, 3, 2, 1 = 0.04, 0.09, 0.08, 0.5, made monotone."""
    adjusted = stats.holm([0.01, 0.04, np.nan, 0.03, 0.5])
    np.testing.assert_allclose(adjusted[[0, 1, 3, 4]], [0.04, 0.09, 0.09, 0.5])
    assert np.isnan(adjusted[2])


def test_noether_power_matches_a_simulated_mann_whitney_test() -> None:
    """A12 = 0.71 (a large effect): 8 runs per side have ~31 % power, 30 per side ~80 %; a simulation of the
    real test on normal data with that A12 (shift sqrt(2) z_0.71) agrees within a few points."""
    from scipy import stats as sps

    assert stats.mwu_power(0.71, 8, 8) == pytest.approx(0.3068, abs=1e-3)
    assert stats.runs_for_power(0.71) == 30 and stats.runs_for_power(0.5) == np.inf
    assert stats.mwu_power(0.5, 8, 8) == pytest.approx(0.025, abs=1e-3)  # one tail of alpha: no effect
    rng = np.random.default_rng(0)
    shift = np.sqrt(2) * sps.norm.ppf(0.71)
    for n, expected in ((8, stats.mwu_power(0.71, 8, 8)), (30, 0.8)):
        a, b = rng.normal(shift, 1, (4000, n)), rng.normal(0, 1, (4000, n))
        simulated = np.mean(sps.mannwhitneyu(a, b, axis=1).pvalue < 0.05)
        assert simulated == pytest.approx(expected, abs=0.05), (n, simulated)


def test_iqm_ignores_one_diverged_run_and_its_interval_is_seeded() -> None:
    runs = [1, 2, 3, 4, 100, 5, 6, 7]
    assert stats.iqm(runs) == 4.5  # the middle four: 3, 4, 5, 6
    low, high = stats.bootstrap_iqm(runs, seed=3)
    assert low <= 4.5 <= high and (low, high) == stats.bootstrap_iqm(runs, seed=3)
    assert stats.bootstrap_iqm([2.0, 2.0]) == (2.0, 2.0)


def test_ri_table_has_effect_size_power_and_holm_per_origin() -> None:
    rows = [{"origin": o, "dataset": "cifar10", "method": m, "role": role, "complete": True, "final_acc": acc,
             "space": "darts", "train_seed": 0}
            for o in ("nni", "published") for m, shift in (("darts", 1.0), ("enas", 0.0))
            for role, base in (("searched", 90 + shift), ("random", 90)) for acc in base + np.arange(8) / 10]
    table = stats.ri_table(pd.DataFrame(rows), n_boot=200)
    darts = table[(table.method == "darts") & (table.origin == "nni")].iloc[0]
    assert darts.a12 == 1.0 and darts.searched_iqm == pytest.approx(91.35)
    assert darts.mwu_p_holm == pytest.approx(min(1.0, 2 * darts.mwu_p))  # two cells in each origin's family
    assert darts.power == pytest.approx(stats.mwu_power(1.0, 8, 8))
    assert darts.runs_for_80 == 6  # (1.96 + 0.84)² / (3 · 0.25) / 2 = 5.2, rounded up
