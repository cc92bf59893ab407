"""Anytime curves of tabular searches (NAS-Bench-201): best-found accuracy vs queries and vs GPU-seconds.

Input is the tidy *curve* table the tabular runner writes (:mod:`nni_nas_bench.tabular.runner`), one
row per query of every run:

=========  ===================================================================================
method     the strategy; ``dataset`` the NB201 setting; ``run`` the run's seed
query      1-based number of evaluations so far
seconds    simulated GPU-seconds so far (the recorded training time of every queried cell)
value      the search signal of the incumbent (best ``default`` seen so far, seed noise included)
test_acc   the table's mean test accuracy of the incumbent (what the curves plot)
=========  ===================================================================================

Summaries give, per method × dataset × x, the number of runs ``n``, ``mean``, ``std`` and a 95%
normal-approximation interval of the mean (``ci_low``, ``ci_high``): with R = 100 runs the mean is what
the comparison is about, and an interval per point is cheap for a thousand points. ``iqm`` beside it is the
interquartile mean (rliable's aggregate, robust to a few runs stuck on a poor cell).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CURVE_COLUMNS = ["method", "dataset", "run", "query", "seconds", "value", "test_acc"]
SUMMARY_COLUMNS = ["method", "dataset", "n", "mean", "std", "ci_low", "ci_high", "iqm", "value_mean"]
Z95 = 1.959963984540054


def _describe(values: np.ndarray, signal: np.ndarray) -> dict[str, np.ndarray]:
    """Column-wise statistics of a runs × points matrix, ignoring NaN (runs without a value yet)."""
    n = np.sum(~np.isnan(values), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # points where < 2 runs have a value: std is NaN
        mean = np.nanmean(values, axis=0) if values.size else np.array([])
        std = np.nanstd(values, axis=0, ddof=1) if values.shape[0] > 1 else np.full(values.shape[1], np.nan)
        half = Z95 * std / np.sqrt(n)
        value_mean = np.nanmean(signal, axis=0)
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half, "iqm": _iqm(values),
            "value_mean": value_mean}


def _iqm(values: np.ndarray) -> np.ndarray:
    """Column-wise interquartile mean ignoring NaN: ``scipy.stats.trim_mean(column, 0.25)`` of each column's
    values, for a thousand points at once (:func:`analysis.stats.iqm` is the one-sample form)."""
    ordered = np.sort(values, axis=0)  # NaN last
    n = np.sum(~np.isnan(values), axis=0)
    cut = (0.25 * n).astype(int)  # what trim_mean cuts from each end
    row = np.arange(values.shape[0])[:, None]
    kept = (row >= cut) & (row < n - cut)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(kept, ordered, 0.0).sum(axis=0) / kept.sum(axis=0)


def _matrices(group: pd.DataFrame, column: str) -> np.ndarray:
    return group.pivot(index="run", columns="query", values=column).to_numpy(float)


def curves_by_query(curves: pd.DataFrame) -> pd.DataFrame:
    """Best-found test accuracy after each number of queries, per method × dataset."""
    frames = []
    for (method, dataset), group in curves.groupby(["method", "dataset"], sort=True):
        test, value = _matrices(group, "test_acc"), _matrices(group, "value")
        queries = np.sort(group["query"].unique())
        stats = _describe(test, value)
        frames.append(pd.DataFrame({"method": method, "dataset": dataset, "query": queries, **stats}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["query", *SUMMARY_COLUMNS])


def curves_by_seconds(curves: pd.DataFrame, points: int = 200) -> pd.DataFrame:
    """Best-found test accuracy against simulated GPU-seconds, on one log-spaced grid per dataset.

    A run's incumbent at time t is the one after its last query finished by t; before its first query
    finished a run has no value (NaN, not counted in ``n``), after its budget it keeps its final pick.
    """
    frames = []
    for dataset, data in curves.groupby("dataset", sort=True):
        lo, hi = data["seconds"].min(), data["seconds"].max()
        grid = np.geomspace(max(lo, 1e-9), max(hi, lo * (1 + 1e-9), 1e-9), points)
        for method, group in data.groupby("method", sort=True):
            secs, test, value = (_matrices(group, c) for c in ("seconds", "test_acc", "value"))
            at_test = np.full((len(secs), points), np.nan)
            at_value = np.full((len(secs), points), np.nan)
            for r in range(len(secs)):
                done = ~np.isnan(secs[r])
                pos = np.searchsorted(secs[r][done], grid, side="right") - 1
                ok = pos >= 0
                at_test[r, ok] = test[r][done][pos[ok]]
                at_value[r, ok] = value[r][done][pos[ok]]
            frames.append(pd.DataFrame({"method": method, "dataset": dataset, "seconds": grid,
                                        **_describe(at_test, at_value)}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["seconds", *SUMMARY_COLUMNS])


def curve_figure(summary: pd.DataFrame, x: str = "query", optimum: dict[str, float] | None = None) -> Figure:
    """One panel per dataset: mean best-found test accuracy per method with its 95% band (log x axis).

    ``optimum`` (dataset → accuracy) draws the best test accuracy of the space as a dashed line. Points
    where fewer than half of the runs have a value (the first simulated seconds) are not drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted(summary["dataset"].unique())
    fig, axes = plt.subplots(1, max(len(datasets), 1), figsize=(4.6 * max(len(datasets), 1), 3.8), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        data = summary[summary["dataset"] == dataset]
        for method, group in data.groupby("method", sort=True):
            # Early times where fewer than half of the runs have finished a query would plot the luck of a few.
            group = group[group["n"] >= 0.5 * group["n"].max()]
            line = ax.plot(group[x], group["mean"], label=method, lw=1.4)[0]
            ax.fill_between(group[x], group["ci_low"], group["ci_high"], color=line.get_color(), alpha=0.2, lw=0)
        if optimum and dataset in optimum:
            ax.axhline(optimum[dataset], color="k", ls="--", lw=0.8, label="best in space")
        ax.set_xscale("log")
        ax.set_title(dataset)
        ax.set_xlabel("queries" if x == "query" else "simulated GPU-seconds")
        ax.set_ylabel("test accuracy of best found (%)")
        lows = data["mean"].dropna()
        if len(lows):
            ax.set_ylim(np.percentile(lows, 5) - 1, (optimum or {}).get(dataset, lows.max()) + 0.5)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_curve_figures(by_query: pd.DataFrame, by_seconds: pd.DataFrame, out_dir: str | Path,
                        optimum: dict[str, float] | None = None) -> list[Path]:
    """``tabular_queries.png`` and ``tabular_seconds.png`` in ``out_dir``."""
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for summary, x, name in ((by_query, "query", "tabular_queries"), (by_seconds, "seconds", "tabular_seconds")):
        fig = curve_figure(summary, x, optimum)
        path = out / f"{name}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths
