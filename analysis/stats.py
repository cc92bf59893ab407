"""The paper's statistics on the tidy trial table (:mod:`analysis.trial_db`, :mod:`analysis.published`).

- :func:`ri_table`: relative improvement RI = 100 (Acc_m - Acc_r) / Acc_r per method x dataset, a ratio of
  MEAN accuracies as in SPEC, with the means, standard deviations and counts beside it, a bootstrap
  percentile interval (the paper gives none) and a Mann-Whitney U test of searched vs random.
  Beside it: Holm-adjusted p-values over the table (:func:`holm`), the Vargha-Delaney effect size
  (:func:`a12`), the test's power for that effect at the run counts and the runs it would need
  (:func:`mwu_power`, :func:`runs_for_power`), and interquartile means (:func:`iqm`, :func:`bootstrap_iqm`).
- :func:`random_summary`: the random-sampling baseline per dataset (always reported, SPEC's best practice).
- :func:`compare_rankings` / :func:`kendall_tau` / :func:`rank_shifts`: the seeds and depth studies.
- :func:`epoch_rank_correlation`: τ of the accuracy at epoch e vs the final accuracy, raw and smoothed.
- :func:`cost_table`: device-hours of search and of final training per method.
- :func:`protocol_table`: the training-tricks study (mean, std, max per protocol).

Ablation studies label their trials (``study``: 'tricks', 'seeds', 'depth', 'depth_sweep', 'operations';
``variant`` within it): :func:`study_rows` picks a study's rows, and those rows never join the RI baseline
(they answer their own question, and several studies retrain the same architectures). DBs without labels
are analysed as a whole.

Only complete trials enter a statistic (``complete`` True: SUCCEEDED with a FINAL metric); failed and
unfinished ones are listed by the report instead. ``metric='final'`` (the last epoch, SPEC's honest
default) or ``'best'`` (the best epoch, what the original code logged) picks the accuracy column.
Standard deviations are sample standard deviations (ddof = 1).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from nni_nas_bench.contract import Role, arch_id
from nni_nas_bench.errors import ConfigError

METRICS = {"final": "final_acc", "best": "best_acc"}
# What a searched architecture must share with its random baseline (SPEC: "train them with the same
# protocol and the same training seed"): same dataset, same space with the same settings, same protocol
# settings, and training seeds among those the searched runs used. A missing value (published numbers
# carry no space or protocol) matches everything.
BASELINE_MATCH = ("dataset", "space", "space_args", "protocol_key", "train_seed")


def metric_column(metric: str) -> str:
    """The accuracy column of ``metric`` ('final' or 'best'; a column name is passed through)."""
    if metric in METRICS.values():
        return metric
    try:
        return METRICS[metric]
    except KeyError:
        raise ConfigError(f"unknown metric {metric!r}; choose 'final' (last epoch) or 'best' (best epoch)") from None


def usable(df: pd.DataFrame, metric: str = "final") -> pd.DataFrame:
    """Complete trials that have the chosen accuracy, with it as a float column ``acc``."""
    column = metric_column(metric)
    if df.empty:
        return df.assign(acc=pd.Series(dtype=float))
    keep = df["complete"].fillna(False).astype(bool) if "complete" in df else df["status"].eq("SUCCEEDED")
    out = df[keep & df[column].notna()].copy()
    out["acc"] = out[column].astype(float)
    if "origin" not in out:
        out["origin"] = "nni"
    out["origin"] = out["origin"].fillna("nni")
    return out


def with_protocol_key(data: pd.DataFrame) -> pd.DataFrame:
    """``data`` plus ``protocol_key`` (see :func:`_protocol_key`), computed only where baselines are matched."""
    protocols = data["protocol"] if "protocol" in data else pd.Series([None] * len(data), index=data.index)
    return data.assign(protocol_key=[_protocol_key(p) for p in protocols])


def study_rows(df: pd.DataFrame, study: str) -> pd.DataFrame:
    """The rows of ablation study ``study``; without any such rows, the rows that carry no study label.

    The fallback keeps DBs from before studies were labelled (and hand-made tables) analysable, while a
    labelled study is never mixed with another one.
    """
    if "study" not in df or not df["study"].notna().any():
        return df
    labelled = df[df["study"] == study]
    return labelled if not labelled.empty else df[df["study"].isna()]


# Protocol settings that say how a training runs, not what it computes: a searched run and its baseline match
# whatever they are. ``cuda_graphs`` replays the eager step's kernels (tests/test_cuda_graph.py); protocols
# written before it existed lack it and must still match.
EXECUTION_ONLY = ("seed", "cuda_graphs")


def _protocol_key(protocol: Any) -> str | None:
    """Every protocol setting except the seed and :data:`EXECUTION_ONLY` ones, as text: searched and random
    must share all of them."""
    if isinstance(protocol, str):
        try:
            protocol = json.loads(protocol)
        except json.JSONDecodeError:
            return protocol
    if not isinstance(protocol, dict):
        return None
    return json.dumps({k: v for k, v in protocol.items() if k not in EXECUTION_ONLY}, sort_keys=True)


# --------------------------------------------------------------------------------------------------- RI
def relative_improvement(searched: Sequence[float] | np.ndarray, random: Sequence[float] | np.ndarray) -> float:
    """RI = 100 (mean(searched) - mean(random)) / mean(random), in percent."""
    s, r = np.asarray(searched, dtype=float), np.asarray(random, dtype=float)
    if s.size == 0 or r.size == 0:
        return float("nan")
    return float(100.0 * (s.mean() - r.mean()) / r.mean())


def _bootstrap_means(a: np.ndarray, b: np.ndarray, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_boot`` resampled means of two independent samples (each resampled with replacement on its own)."""
    rng = np.random.default_rng(seed)
    a_means = a[rng.integers(0, a.size, size=(n_boot, a.size))].mean(axis=1)
    b_means = b[rng.integers(0, b.size, size=(n_boot, b.size))].mean(axis=1)
    return a_means, b_means


def _percentile_interval(values: np.ndarray, ci: float) -> tuple[float, float]:
    if not 0 < ci < 1:
        raise ConfigError(f"ci must be in (0, 1), got {ci}")
    low, high = np.quantile(values, [(1 - ci) / 2, (1 + ci) / 2])
    return float(low), float(high)


INTERVALS = ("BCa", "percentile")


def _ri_statistic(s: np.ndarray, r: np.ndarray, axis: int = -1) -> np.ndarray:
    """RI of (resampled) samples along ``axis``: the statistic ``scipy.stats.bootstrap`` resamples."""
    r_mean = r.mean(axis=axis)
    return 100.0 * (s.mean(axis=axis) - r_mean) / r_mean


def bootstrap_ri(searched: Sequence[float] | np.ndarray, random: Sequence[float] | np.ndarray, *,
                 n_boot: int = 10_000, ci: float = 0.95, seed: int = 0, method: str = "BCa") -> tuple[float, float]:
    """Bootstrap interval of RI: BCa (default) or percentile, seeded.

    Searched and random runs are independent samples (different architectures, seeds), so each is
    resampled with replacement on its own, ``n_boot`` times, and RI recomputed. ``method='BCa'`` is
    ``scipy.stats.bootstrap``'s bias-corrected and accelerated interval over the two samples (Efron 1987:
    second-order accurate where the percentile interval is first-order, which matters for the skewed RI of
    8-run samples); ``'percentile'`` is the ``(1 - ci) / 2`` and ``(1 + ci) / 2`` quantiles of the resampled
    RIs. BCa needs variation to estimate its acceleration: when neither sample varies, or one has a single
    run, the percentile interval is returned (a point for constant data). Seeded, and each sample is sorted
    first: the same runs give the same interval whatever order the trial DB lists them in (concurrent
    trials finish in a different order from one run of an experiment to the next).
    """
    if not 0 < ci < 1:
        raise ConfigError(f"ci must be in (0, 1), got {ci}")
    if method not in INTERVALS:
        raise ConfigError(f"interval method must be one of {INTERVALS}, got {method!r}")
    s, r = np.sort(np.asarray(searched, dtype=float)), np.sort(np.asarray(random, dtype=float))
    if s.size == 0 or r.size == 0:
        return float("nan"), float("nan")
    degenerate = min(s.size, r.size) < 2 or (np.ptp(s) == 0 and np.ptp(r) == 0)
    if method == "BCa" and not degenerate:
        with warnings.catch_warnings():  # an undefined BCa (NaN) falls back below instead of warning
            warnings.simplefilter("ignore", sps.DegenerateDataWarning)
            result = sps.bootstrap((s, r), _ri_statistic, n_resamples=n_boot, confidence_level=ci, method="BCa",
                                   vectorized=True, rng=np.random.default_rng(seed))
        low, high = result.confidence_interval
        if np.isfinite(low) and np.isfinite(high):
            return float(low), float(high)
    s_means, r_means = _bootstrap_means(s, r, n_boot, seed)
    return _percentile_interval(100.0 * (s_means - r_means) / r_means, ci)


def bootstrap_mean_difference(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
                              n_boot: int = 10_000, ci: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """mean(a) - mean(b) in accuracy points, with a percentile bootstrap interval (same scheme as RI).

    For the studies' shifts (poor vs DARTS op set, all tricks vs none), where a difference in points,
    not a ratio, is what the paper reports.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size == 0 or y.size == 0:
        return float("nan"), float("nan"), float("nan")
    x_means, y_means = _bootstrap_means(x, y, n_boot, seed)
    return (float(x.mean() - y.mean()), *_percentile_interval(x_means - y_means, ci))


def rank_test(searched: Sequence[float] | np.ndarray, random: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test of searched vs random accuracies: (U of searched, p-value).

    A rank test, because K = 8 runs per side are too few to trust normality, and one diverged run
    should not decide the comparison.
    """
    s, r = np.asarray(searched, dtype=float), np.asarray(random, dtype=float)
    if s.size == 0 or r.size == 0:
        return float("nan"), float("nan")
    result = sps.mannwhitneyu(s, r, alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def a12(searched: Sequence[float] | np.ndarray, random: Sequence[float] | np.ndarray) -> float:
    """Vargha-Delaney A12 effect size: P(searched > random) + P(tie) / 2 over all pairs of runs.

    0.5 is no effect; Vargha & Delaney (2000) call 0.56 / 0.64 / 0.71 (and their mirrors) small / medium /
    large. It is the Mann-Whitney U of the searched runs over the number of pairs, so it says how often a
    searched run beats a random one, which RI (a ratio of means) does not.
    """
    s, r = np.asarray(searched, dtype=float), np.asarray(random, dtype=float)
    if s.size == 0 or r.size == 0:
        return float("nan")
    return float(sps.mannwhitneyu(s, r, alternative="two-sided").statistic / (s.size * r.size))


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (``statsmodels``' ``multipletests``); NaN stays NaN, outside the family.

    A benchmark table tests every method x dataset cell at once: at 0.05 per cell, one of 20 null cells
    looks significant by chance. Holm controls the family-wise error and is uniformly better than Bonferroni.
    """
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    tested = np.isfinite(p)
    if tested.any():
        adjusted[tested] = multipletests(p[tested], method="holm")[1]
    return adjusted


def mwu_power(effect: float, n_searched: int, n_random: int, alpha: float = 0.05) -> float:
    """Power of the two-sided Mann-Whitney test at level ``alpha`` to detect an effect of size A12 = ``effect``
    with these run counts, by Noether's normal approximation (JASA 82:645, 1987):
    ``z_power = |A12 - 1/2| sqrt(12 c (1 - c) N) - z_{1 - alpha/2}`` with ``N`` runs in all, ``c`` the searched
    share. Read it as "could K runs have detected a difference this large": the observed A12 plugged in is a
    planning figure, not evidence (a low power says the cell needs more runs, not that there is no effect).
    """
    n = n_searched + n_random
    if not np.isfinite(effect) or min(n_searched, n_random) < 1:
        return float("nan")
    c = n_searched / n
    z = abs(effect - 0.5) * np.sqrt(12 * c * (1 - c) * n) - sps.norm.ppf(1 - alpha / 2)
    return float(sps.norm.cdf(z))


def runs_for_power(effect: float, power: float = 0.8, alpha: float = 0.05) -> float:
    """Runs per side (searched = random) the two-sided Mann-Whitney test needs to detect A12 = ``effect`` with
    ``power`` (Noether 1987, as :func:`mwu_power`); inf for no effect."""
    if not np.isfinite(effect):
        return float("nan")
    if effect == 0.5:
        return float("inf")
    total = (sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)) ** 2 / (3 * (effect - 0.5) ** 2)  # c = 1/2
    return float(np.ceil(total / 2))


def iqm(values: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50 % of runs (``scipy.stats.trim_mean`` at 25 %).

    Agarwal et al. (NeurIPS 2021, rliable) recommend it for few runs: unlike the median it uses half the
    runs, unlike the mean one diverged run cannot move it.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    return float(sps.trim_mean(x, 0.25)) if x.size else float("nan")


def bootstrap_iqm(values: Sequence[float] | np.ndarray, *, n_boot: int = 2_000, ci: float = 0.95,
                  seed: int = 0) -> tuple[float, float]:
    """Seeded percentile bootstrap interval of :func:`iqm` (``scipy.stats.bootstrap``; rliable's choice)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size == 1 or np.ptp(x) == 0:
        return float(x[0]), float(x[0])
    result = sps.bootstrap((x,), lambda v, axis=-1: sps.trim_mean(v, 0.25, axis=axis), n_resamples=n_boot,
                           confidence_level=ci, method="percentile", vectorized=True,
                           rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return float(low), float(high)


def baseline_rows(group: pd.DataFrame, randoms: pd.DataFrame, method: str,
              match: Sequence[str]) -> tuple[pd.DataFrame, str]:
    """The random rows a searched group is compared with, and a description of the match."""
    same_method = randoms[randoms["method"] == method]
    if not same_method.empty:
        # Published layout: each method has its own "Random <Method>" column.
        return same_method, f"random runs paired with {method}"
    pool, described = randoms, []
    for column in match:
        if column not in group or column not in pool:
            continue
        values = group[column].dropna().unique()
        if len(values) == 0:
            continue
        pool = pool[pool[column].isin(values) | pool[column].isna()]
        if column != "protocol_key":
            described.append(f"{column}={'/'.join(map(str, values))}")
        else:
            described.append("same protocol")
    return pool, ("random, " + ", ".join(described)) if described else "random"


RI_COLUMNS = [
    "origin", "dataset", "method", "searched_n", "searched_mean", "searched_std", "searched_iqm", "random_n",
    "random_mean", "random_std", "random_iqm", "ri", "ri_low", "ri_high", "mwu_u", "mwu_p", "mwu_p_holm", "a12",
    "power", "runs_for_80", "baseline",
]


def ri_table(df: pd.DataFrame, metric: str = "final", *, n_boot: int = 10_000, ci: float = 0.95, seed: int = 0,
             match: Sequence[str] = BASELINE_MATCH, interval: str = "BCa") -> pd.DataFrame:
    """RI per method x dataset (and origin: new NNI runs and published numbers are never pooled).

    A searched group (role 'searched') is compared with the random rows of the same origin that share
    ``match`` (see :data:`BASELINE_MATCH`) and belong to no ablation study; published random columns pair
    with their method. Groups without
    a baseline get RI NaN and say so in ``baseline``. ``n_boot=0`` skips the interval (figures need only
    the means). ``interval``: 'BCa' (default) or 'percentile' (:func:`bootstrap_ri`). Columns: :data:`RI_COLUMNS`.
    """
    data = usable(df, metric)
    data = with_protocol_key(data[data["role"].isin([Role.SEARCHED, Role.RANDOM])])
    rows = []
    searched = data[data["role"] == Role.SEARCHED]
    baseline_pool = data[data["role"] == Role.RANDOM]
    if "study" in baseline_pool:
        baseline_pool = baseline_pool[baseline_pool["study"].isna()]  # ablation rows are not the baseline
    for (origin, dataset, method), group in searched.groupby(["origin", "dataset", "method"], sort=True):
        randoms = baseline_pool[(baseline_pool["origin"] == origin) & (baseline_pool["dataset"] == dataset)]
        base, description = baseline_rows(group, randoms, method, match)
        s, r = group["acc"].to_numpy(), base["acc"].to_numpy()
        low, high = (bootstrap_ri(s, r, n_boot=n_boot, ci=ci, seed=seed, method=interval) if n_boot > 0
                     else (np.nan, np.nan))
        u, p = rank_test(s, r)
        effect = u / (len(s) * len(r)) if len(r) else np.nan  # A12 (see a12)
        rows.append({
            "origin": origin, "dataset": dataset, "method": method,
            "searched_n": len(s), "searched_mean": s.mean(), "searched_std": _std(s), "searched_iqm": iqm(s),
            "random_n": len(r), "random_mean": r.mean() if len(r) else np.nan, "random_std": _std(r),
            "random_iqm": iqm(r), "ri": relative_improvement(s, r), "ri_low": low, "ri_high": high, "mwu_u": u,
            "mwu_p": p, "a12": effect, "power": mwu_power(effect, len(s), len(r)),
            "runs_for_80": runs_for_power(effect),
            "baseline": description if len(r) else f"no random baseline ({description})",
        })
    table = pd.DataFrame(rows, columns=RI_COLUMNS)
    for _, cells in table.groupby("origin"):  # one family per origin: new runs and published numbers apart
        table.loc[cells.index, "mwu_p_holm"] = holm(cells["mwu_p"].to_numpy())
    return table


def _std(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def describe(acc: pd.Series) -> dict[str, float]:
    """n, mean, std, min, max: the columns every summary table of the report shares."""
    return {"n": int(acc.size), "mean": acc.mean(), "std": _std(acc.to_numpy()), "min": acc.min(),
            "max": acc.max()}


def random_summary(df: pd.DataFrame, metric: str = "final",
                   by: Sequence[str] = ("origin", "dataset", "study", "space", "op_set", "protocol_name", "variant"),
                   ) -> pd.DataFrame:
    """The random-sampling baseline: n, mean, std, min, max of the accuracy per dataset (study, space, protocol).

    Grouping keys that are empty for every row are left out of the table.
    """
    data = usable(df, metric)
    data = data[data["role"] == Role.RANDOM]
    keys = [k for k in by if k in data and data[k].notna().any()]
    if data.empty:
        return pd.DataFrame(columns=[*keys, "n", "mean", "std", "min", "max"])
    filled = data.assign(**{k: data[k].fillna("-") for k in keys})
    rows = [{**dict(zip(keys, key if isinstance(key, tuple) else (key,))), **describe(g["acc"])}
            for key, g in filled.groupby(keys, sort=True)]
    return pd.DataFrame(rows)


def protocol_table(df: pd.DataFrame, metric: str = "final", role: str = Role.RANDOM) -> pd.DataFrame:
    """Training-tricks study: n, mean, std, min, max of the accuracy per dataset x protocol (SPEC exp. 1).

    Rows of the 'tricks' study when the table has them (:func:`study_rows`); a protocol is named by the
    trial's variant when it has one (variants are distinct by construction), else by ``protocol_name``.
    """
    data = usable(study_rows(df, "tricks"), metric)
    data = data[data["role"] == role]
    if data.empty:
        return pd.DataFrame(columns=["dataset", "protocol_name", "n", "mean", "std", "min", "max"])
    label = data["variant"].fillna(data["protocol_name"]) if "variant" in data else data["protocol_name"]
    data = data.assign(protocol_name=label)
    rows = [{"dataset": d, "protocol_name": p, **describe(g["acc"])}
            for (d, p), g in data.groupby(["dataset", "protocol_name"], sort=True)]
    table = pd.DataFrame(rows, columns=["dataset", "protocol_name", "n", "mean", "std", "min", "max"])
    return table.sort_values(["dataset", "mean"]).reset_index(drop=True)


# -------------------------------------------------------------------------------------------- rankings
def kendall_tau(a: Sequence[float] | pd.Series, b: Sequence[float] | pd.Series) -> tuple[float, float]:
    """Kendall τ-b between two scorings of the same items (ties handled), and its p-value.

    Series are aligned on their index (the items); plain sequences are taken position by position.
    """
    if isinstance(a, pd.Series) and isinstance(b, pd.Series):
        a, b = a.align(b, join="inner")
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size != b.size:
        raise ConfigError(f"rankings of different lengths: {a.size} vs {b.size}")
    ok = ~(np.isnan(a) | np.isnan(b))
    if ok.sum() < 2:
        return float("nan"), float("nan")
    tau, p = sps.kendalltau(a[ok], b[ok])  # unpacked: the result type changed across scipy versions
    return float(tau), float(p)


def rank_shifts(a: pd.Series, b: pd.Series) -> pd.DataFrame:
    """Rank of every item under two scorings (1 = highest accuracy) and how far it moved.

    Ties share their lowest rank ('min'), the way a leaderboard prints them.
    """
    a, b = a.align(b, join="inner")
    table = pd.DataFrame({"acc_a": a, "acc_b": b})
    table["rank_a"] = table["acc_a"].rank(ascending=False, method="min").astype(int)
    table["rank_b"] = table["acc_b"].rank(ascending=False, method="min").astype(int)
    table["shift"] = table["rank_b"] - table["rank_a"]
    return table.sort_values("rank_a")


@dataclass
class RankComparison:
    """Two rankings of the same architectures (two seeds, two depths, ...)."""

    by: str
    a: Any
    b: Any
    n: int
    tau: float
    p_value: float
    max_rank_shift: int
    max_shift_item: Any
    mean_abs_change: float
    max_abs_change: float
    table: pd.DataFrame

    def summary(self) -> dict[str, Any]:
        """The scalar results as a dict (one row of a report table)."""
        return {"study": self.by, "a": self.a, "b": self.b, "n": self.n, "tau": self.tau, "p": self.p_value,
                "max_rank_shift": self.max_rank_shift, "mean_abs_change": self.mean_abs_change,
                "max_abs_change": self.max_abs_change}


def architecture_key(df: pd.DataFrame) -> pd.Series:
    """What identifies an architecture across experiments: space, its settings and the genotype."""
    return df["space"].astype(str) + "|" + df["space_args"].astype(str) + "|" + df["genotype"].astype(str)


ARCHITECTURE_COLUMNS = ["dataset", "method", "role", "protocol", "arch_id", "n", "train_seeds", "mean", "std",
                        "genotype"]


def architecture_table(df: pd.DataFrame, metric: str = "final") -> pd.DataFrame:
    """One row per architecture a benchmark experiment trained (searched or random; studies have their own
    tables): its dataset, method, role, protocol, a short stable id, the seeds it was trained with and the
    accuracy over them, and the full genotype. Sorted by dataset, role, then accuracy (best first).

    ``arch_id`` is :func:`nni_nas_bench.contract.arch_id` of space, settings and genotype: the id every trial
    reports to NNI (the web UI's ``arch_id`` column), the same in every report and table.
    """
    data = usable(df, metric)
    data = data[data["role"].isin([Role.SEARCHED, Role.RANDOM]) & data["genotype"].notna()]
    if "study" in data:
        data = data[data["study"].isna()]
    if data.empty:
        return pd.DataFrame(columns=ARCHITECTURE_COLUMNS)
    ids = [arch_id(*row) for row in zip(*(data[k].astype(str) for k in ("space", "space_args", "genotype")))]
    data = data.assign(arch_id=ids,
                       protocol=data["protocol_name"].fillna("-"))
    keys = ["dataset", "method", "role", "protocol", "arch_id"]
    seeds = data["train_seed"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    out = (data.assign(seed_text=seeds).groupby(keys, sort=False, dropna=False)
           .agg(n=("acc", "size"), mean=("acc", "mean"), std=("acc", "std"), genotype=("genotype", "first"),
                train_seeds=("seed_text", lambda v: ", ".join(sorted(set(v) - {""}, key=int)) or "-"))
           .reset_index())
    return out[ARCHITECTURE_COLUMNS].sort_values(["dataset", "role", "mean"], ascending=[True, True, False],
                                                 kind="stable", ignore_index=True)


MIN_RANK_N = 5
"""Fewest points a Kendall τ is shown for: with 4 points the smallest two-sided p-value is 0.083, so no
ranking of 4 or fewer can be told from chance; the report says "too few to rank" instead."""


def compare_rankings(df: pd.DataFrame, by: str, a: Any = None, b: Any = None, metric: str = "final",
                     role: str = Role.RANDOM) -> RankComparison:
    """Rank the same architectures under two values of ``by`` ('train_seed', 'layers', ...) and compare.

    Architectures are matched by :func:`architecture_key`; several runs of one architecture under one
    value are averaged. ``a`` and ``b`` default to the two smallest values of ``by``. Raises
    :class:`ConfigError` when fewer than two common architectures exist.
    """
    data = usable(df, metric)
    data = data[(data["role"] == role) & data[by].notna()]
    values = sorted(data[by].unique().tolist())  # plain Python values: they appear in messages and tables
    if a is None or b is None:
        if len(values) < 2:
            raise ConfigError(f"need two values of {by!r} to compare rankings, found {values}")
        a = values[0] if a is None else a
        b = next(v for v in values if v != a) if b is None else b
    data = data.assign(arch=architecture_key(data))
    acc_a = data[data[by] == a].groupby("arch")["acc"].mean()
    acc_b = data[data[by] == b].groupby("arch")["acc"].mean()
    table = rank_shifts(acc_a, acc_b)
    if len(table) < 2:
        raise ConfigError(f"fewer than two architectures were trained with both {by}={a} and {by}={b}")
    tau, p = kendall_tau(table["acc_a"], table["acc_b"])
    biggest = table["shift"].abs().idxmax()
    change = (table["acc_b"] - table["acc_a"]).abs()
    return RankComparison(by, a, b, len(table), tau, p, int(abs(table.loc[biggest, "shift"])), biggest,
                          float(change.mean()), float(change.max()), table)


def moving_average(curves: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average along the last axis (the first epochs average what exists so far)."""
    curves = np.asarray(curves, dtype=float)
    if window <= 1:
        return curves
    c = np.cumsum(curves, axis=-1)
    out = c.copy()
    out[..., window:] = c[..., window:] - c[..., :-window]
    counts = np.minimum(np.arange(1, curves.shape[-1] + 1), window)
    return out / counts


def epoch_rank_correlation(df: pd.DataFrame, metric: str = "final", *, window: int = 5, max_points: int = 100,
                           by: Sequence[str] = ("dataset", "experiment_id", "role", "protocol_name")) -> pd.DataFrame:
    """τ between the accuracy at epoch e and the final accuracy, for every epoch (SPEC exp. 5).

    Per group of ``by`` (by default one experiment's final trainings with one protocol), the curves of
    complete 'random' and 'searched' trials of the group's most common length form an (architectures x
    epochs) matrix; ``tau`` compares column e with the chosen final metric, ``tau_smoothed`` the trailing
    ``window``-epoch moving average at e. Search trials are left out: their curves are a supernet's. At
    most ``max_points`` evenly spaced epochs are evaluated (always including the last), which keeps a
    600-epoch, 10,000-trial table quick and changes nothing visible in the figure.
    """
    data = usable(df, metric)
    data = data[data["role"].isin([Role.RANDOM, Role.SEARCHED])]
    data = data[data["curve"].map(lambda c: isinstance(c, (list, tuple, np.ndarray)) and len(c) > 0)]
    keys = [k for k in by if k in data]
    rows = []
    if data.empty:
        return pd.DataFrame(columns=[*keys, "epoch", "n", "tau", "tau_smoothed"])
    for key, group in data.groupby(keys, sort=True):
        lengths = group["curve"].map(len)
        length = int(lengths.mode().iloc[0])
        group = group[lengths == length]
        if len(group) < 3:
            continue
        curves = np.vstack(group["curve"].map(np.asarray).to_list()).astype(float)
        smooth = moving_average(curves, window)
        final = group["acc"].to_numpy()
        epochs = np.unique(np.linspace(0, length - 1, min(length, max_points)).round().astype(int))
        for e in epochs:
            rows.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,))), "epoch": int(e) + 1,
                         "n": len(group), "tau": kendall_tau(curves[:, e], final)[0],
                         "tau_smoothed": kendall_tau(smooth[:, e], final)[0]})
    return pd.DataFrame(rows, columns=[*keys, "epoch", "n", "tau", "tau_smoothed"])


# ------------------------------------------------------------------------------------------------- cost
COST_COLUMNS = ["origin", "dataset", "method", "search_runs", "search_hours", "search_hours_per_run",
                "train_runs", "train_hours", "train_hours_per_run", "devices"]


def cost_table(df: pd.DataFrame) -> pd.DataFrame:
    """Device-hours per method x dataset: the search (role 'search') and the final training.

    Search time is a search trial's ``search_seconds`` when it reports one, else its ``train_seconds``; a
    multi-trial search is the candidates (role 'candidate') of one experiment and search seed, its time
    the sum of their ``train_seconds``;
    final training is the ``train_seconds`` of 'searched' trials (of 'random' ones for the baseline, whose
    search costs nothing). Failed trials count too: they were paid for. Hours are on the devices listed
    (``device`` column: a GPU name, or 'cpu'); SPEC counts hyperparameter tuning in the search cost, so a
    tuning trial should run with role 'search'.
    """
    if df.empty:
        return pd.DataFrame(columns=COST_COLUMNS)
    data = df.copy()
    data["origin"] = data["origin"].fillna("nni") if "origin" in data else "nni"
    search_s = pd.to_numeric(data.get("search_seconds"), errors="coerce")
    train_s = pd.to_numeric(data.get("train_seconds"), errors="coerce")
    data["_search"] = np.where(data["role"] == Role.SEARCH, search_s.fillna(train_s),
                               np.where(data["role"] == Role.CANDIDATE, train_s, np.nan))
    data["_train"] = np.where(data["role"].isin([Role.SEARCHED, Role.RANDOM]), train_s, np.nan)
    rows = []
    costed = data["role"].isin([Role.SEARCH, Role.CANDIDATE, Role.SEARCHED, Role.RANDOM])
    for (origin, dataset, method), g in data[costed].groupby(["origin", "dataset", "method"], sort=True):
        candidates = g[g["role"] == Role.CANDIDATE]
        multi_trial = (candidates.groupby(["experiment_id", "search_seed"])["_search"].sum(min_count=1)
                       if len(candidates) else pd.Series(dtype=float))
        search = pd.concat([g.loc[g["role"] == Role.SEARCH, "_search"], multi_trial]).dropna()
        train = g["_train"].dropna()
        if search.empty and train.empty:
            continue
        rows.append({
            "origin": origin, "dataset": dataset, "method": method,
            "search_runs": int((g["role"] == Role.SEARCH).sum()) + len(multi_trial),
            "search_hours": search.sum() / 3600,
            "search_hours_per_run": search.mean() / 3600 if len(search) else np.nan,
            "train_runs": int(g["role"].isin([Role.SEARCHED, Role.RANDOM]).sum()), "train_hours": train.sum() / 3600,
            "train_hours_per_run": train.mean() / 3600 if len(train) else np.nan,
            "devices": ", ".join(sorted(map(str, g["device"].dropna().unique()))) if "device" in g else "",
        })
    return pd.DataFrame(rows, columns=COST_COLUMNS)


# ----------------------------------------------------------------------------------------- latency
LATENCY_COLUMNS = ["origin", "dataset", "space", "method", "role", "n", "acc_mean", "acc_std", "latency_mean",
                   "latency_std", "latency_min", "latency_max", "acc_per_latency_tau"]


def latency_rows(df: pd.DataFrame, metric: str = "final") -> pd.DataFrame:
    """Complete searched and random trials that carry a predicted latency (spaces with a latency model)."""
    data = usable(df, metric)
    if "latency_ms" not in data:
        return data.iloc[0:0].assign(latency_ms=pd.Series(dtype=float))
    data = data[data["role"].isin([Role.SEARCHED, Role.RANDOM]) & data["latency_ms"].notna()]
    if "study" in data:
        data = data[data["study"].isna()]
    return data.assign(latency_ms=data["latency_ms"].astype(float))


def latency_table(df: pd.DataFrame, metric: str = "final") -> pd.DataFrame:
    """Accuracy and predicted latency of searched vs random architectures, per dataset, space and method.

    One row per (origin, dataset, space, method, role): counts, mean/std accuracy, mean/std/min/max of
    the predicted latency (ms), and Kendall τ between accuracy and latency within the group (positive:
    the slower architectures of that group were the more accurate). Random rows are listed once per
    dataset and space, as the shared baseline of every method searched in that space. Columns:
    :data:`LATENCY_COLUMNS`.
    """
    data = latency_rows(df, metric)
    rows = []
    keys = ["origin", "dataset", "space", "method", "role"]
    filled = data.assign(space=data["space"].fillna("-"), origin=data["origin"].fillna("nni"))
    for key, group in filled.groupby(keys, sort=True):
        acc, latency = group["acc"].to_numpy(), group["latency_ms"].to_numpy()
        tau = kendall_tau(acc, latency)[0] if len(group) > 2 else float("nan")
        rows.append({**dict(zip(keys, key)), "n": len(group), "acc_mean": acc.mean(), "acc_std": _std(acc),
                     "latency_mean": latency.mean(), "latency_std": _std(latency), "latency_min": latency.min(),
                     "latency_max": latency.max(), "acc_per_latency_tau": tau})
    table = pd.DataFrame(rows, columns=LATENCY_COLUMNS)
    # searched methods first, their random baseline after them, within each dataset
    order = table["role"].map({Role.SEARCHED: 0, Role.RANDOM: 1})
    return (table.assign(_order=order).sort_values(["origin", "dataset", "space", "_order", "method"])
            .drop(columns="_order").reset_index(drop=True))
