"""The paper's figures from the tidy trial table, as matplotlib Figures (PNG and PDF via :func:`save`).

Every function takes the DataFrame of :func:`analysis.read_experiments` (published rows may be mixed
in) and the accuracy ``metric`` ('final' or 'best'), and returns a :class:`matplotlib.figure.Figure`.
When the data a figure needs is absent (no searched trials yet, a single training seed, ...) it raises
:class:`FigureSkipped` with the reason instead of drawing an empty or misleading plot; :func:`draw_all`
turns those into notes for the report.

Figures are built on :class:`~matplotlib.figure.Figure` objects, never through pyplot: nothing depends
on a display or on pyplot's global state (headless by construction, no figure left open), and a
notebook still shows a returned Figure inline.

Registry (:data:`FIGURES`, in report order):

===================  ======================================================================
searched_vs_random   paper Figure 1: per dataset, each method's mean searched vs mean random
                     accuracy with a ±1 std ellipse; above the diagonal means RI > 0
accuracy_vs_cost     searched accuracy (mean ± std) vs search device-hours per run, beside the
                     method's random baseline (hollow)
distributions        box + strip of every run per method (random baseline included), per dataset;
                     per study variant for a table that holds only ablation studies
training_tricks      mean (bar), std (error bar) and max (dot) per training protocol
seed_scatter         the same architectures trained with two seeds, with Kendall τ
depth_scatter        the same architectures at two depths (cells), with Kendall τ
epoch_tau            τ(accuracy at epoch e, final accuracy) over e, raw and moving-average smoothed
accuracy_vs_cells    accuracy of each architecture vs the number of cells, with the mean
===================  ======================================================================

:func:`accuracy_vs_latency` (searched vs random accuracy against predicted latency, for spaces with a
latency model) is not in the registry: the report draws it in its latency section, only when trials
carry ``latency_ms``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse

from analysis import stats
from nni_nas_bench.contract import Role
from nni_nas_bench.errors import ConfigError, NasBenchError


class FigureSkipped(NasBenchError):
    """The data a figure needs is not in the table; the message says what is missing."""


_LABEL = {"final": "last-epoch accuracy (%)", "best": "best-epoch accuracy (%)"}


def _ylabel(metric: str) -> str:
    return _LABEL.get(metric, f"{metric} (%)")


def _grid(n: int, width: float = 4.2, height: float = 3.6, max_cols: int = 3) -> tuple[Figure, list]:
    cols = min(n, max_cols)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _label_origin(table: pd.DataFrame) -> pd.Series:
    """'cifar10' or 'cifar10 (published)': panels never mix new runs with published numbers."""
    return table["dataset"].astype(str) + np.where(table["origin"] == "published", " (published)", "")


# ----------------------------------------------------------------------------------------- Figure 1
def searched_vs_random(df: pd.DataFrame, metric: str = "final") -> Figure:
    """Paper Figure 1: mean searched vs mean random accuracy per method, ±1 std ellipses, per dataset."""
    table = stats.ri_table(df, metric, n_boot=0)
    table = table[table["random_n"] > 0]
    if table.empty:
        raise FigureSkipped("needs searched trials (role 'searched') and a matching random baseline")
    table = table.assign(panel=_label_origin(table))
    panels = sorted(table["panel"].unique())
    fig, axes = _grid(len(panels))
    colors = dict(zip(sorted(table["method"].unique()), sns.color_palette("tab10", table["method"].nunique())))
    for ax, panel in zip(axes, panels):
        part = table[table["panel"] == panel]
        for row in part.itertuples():
            w = 2 * (row.random_std if np.isfinite(row.random_std) else 0)
            h = 2 * (row.searched_std if np.isfinite(row.searched_std) else 0)
            ax.add_patch(Ellipse((row.random_mean, row.searched_mean), w, h, alpha=0.25, color=colors[row.method]))
            ax.plot(row.random_mean, row.searched_mean, "o", color=colors[row.method], label=row.method)
            ax.annotate(f"{row.method}\nRI {row.ri:+.2f}", (row.random_mean, row.searched_mean), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
        lo = min((part.random_mean - part.random_std.fillna(0)).min(),
                 (part.searched_mean - part.searched_std.fillna(0)).min()) - 0.3
        hi = max((part.random_mean + part.random_std.fillna(0)).max(),
                 (part.searched_mean + part.searched_std.fillna(0)).max()) + 0.3
        ax.plot([lo, hi], [lo, hi], "--", color="grey", linewidth=1)
        ax.set(xlim=(lo, hi), ylim=(lo, hi), title=panel, xlabel=f"random: {_ylabel(metric)}",
               ylabel=f"searched: {_ylabel(metric)}", aspect="equal")
    fig.suptitle("Searched vs random architectures (mean ± 1 std); above the diagonal: RI > 0")
    return fig


def accuracy_vs_cost(df: pd.DataFrame, metric: str = "final") -> Figure:
    """Searched accuracy (mean ± std) against search device-hours per run, each with its random baseline."""
    cost = stats.cost_table(df)
    cost = cost[(cost["search_runs"] > 0) & cost["search_hours_per_run"].notna()]
    if cost.empty:
        raise FigureSkipped("needs search trials (role 'search') with train_seconds or search_seconds")
    table = stats.ri_table(df, metric, n_boot=0).merge(cost, on=["origin", "dataset", "method"])
    if table.empty:
        raise FigureSkipped("needs searched trials (role 'searched') of the methods whose search cost is known")
    table = table.assign(panel=_label_origin(table))
    panels = sorted(table["panel"].unique())
    fig, axes = _grid(len(panels))
    for ax, panel in zip(axes, panels):
        part = table[table["panel"] == panel]
        for i, row in enumerate(part.itertuples()):
            color = f"C{i % 10}"
            ax.errorbar(row.search_hours_per_run, row.searched_mean, yerr=np.nan_to_num(row.searched_std),
                        fmt="o", capsize=3, color=color, label=f"{row.method} (searched)")
            if np.isfinite(row.random_mean):
                # The method's own random baseline at the same x: the vertical gap is what the search bought.
                ax.errorbar(row.search_hours_per_run, row.random_mean, yerr=np.nan_to_num(row.random_std),
                            fmt="o", mfc="white", capsize=3, color=color, alpha=0.8)
                ax.plot([row.search_hours_per_run] * 2, [row.random_mean, row.searched_mean], ":", color=color)
            ax.annotate(row.method, (row.search_hours_per_run, row.searched_mean), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
        ax.set(xlim=(0, 1.15 * part["search_hours_per_run"].max()), title=panel,
               xlabel="search device-hours per run", ylabel=_ylabel(metric))
        ax.legend(fontsize=7, title="hollow: random baseline", title_fontsize=7)
    fig.suptitle("Accuracy vs search cost")
    return fig


def _group_label(data: pd.DataFrame) -> pd.Series:
    """Method names for searched runs; 'random' (+ space / op set when several exist) for the baseline;
    'study: variant' for the rows of an ablation study."""
    if "study" in data and data["study"].notna().all():
        return data["study"].astype(str) + ": " + data["variant"].fillna(data["protocol_name"]).astype(str)
    random = data["role"] == Role.RANDOM
    label = data["method"].astype(str).where(~random, "random")
    for column in ("space", "op_set"):
        if column in data and data.loc[random, column].nunique() > 1:
            label = label.where(~random, label + " " + data[column].fillna("?").astype(str))
    return label


def distributions(df: pd.DataFrame, metric: str = "final") -> Figure:
    """Every run's accuracy as box + strip per method, random baseline(s) included, one panel per dataset."""
    data = stats.usable(df, metric)
    data = data[data["role"].isin([Role.SEARCHED, Role.RANDOM])]
    if data.empty:
        raise FigureSkipped(f"no complete searched or random trials with a {metric} accuracy")
    if "study" in data and data["study"].isna().any():
        # The main experiments (methods and their baselines); ablation rows have their own figures and
        # are drawn here only when the table holds nothing else (a report on one study).
        data = data[data["study"].isna()]
    data = data.assign(group=_group_label(data), panel=_label_origin(data))
    panels = sorted(data["panel"].unique())
    fig, axes = _grid(len(panels), width=max(4.2, 0.9 * data["group"].nunique() + 1.5))
    for ax, panel in zip(axes, panels):
        part = data[data["panel"] == panel]
        order = sorted(part["group"].unique(), key=lambda g: (not g.startswith("random"), g))
        # matplotlib's own boxplot: seaborn 0.13's passes an argument matplotlib 3.11 deprecates.
        boxes = ax.boxplot([part.loc[part["group"] == g, "acc"].to_numpy() for g in order],
                           positions=range(len(order)), widths=0.6, showfliers=False, patch_artist=True)
        for box in boxes["boxes"]:
            box.set(facecolor="lightsteelblue", alpha=0.8)
        sns.stripplot(data=part, x="group", y="acc", order=order, ax=ax, color="black", size=3,
                      jitter=0.15, alpha=0.7 if len(part) < 2000 else 0.2)
        ax.set_xticks(range(len(order)), order, rotation=30, ha="right")
        ax.set(title=f"{panel} (n={len(part)})", xlabel="", ylabel=_ylabel(metric))
    fig.suptitle("Accuracy of every run")
    return fig


def training_tricks(df: pd.DataFrame, metric: str = "final") -> Figure:
    """Training-tricks study: mean (bar) ± std (error bar) and max (dot) per protocol, per dataset."""
    table = stats.protocol_table(df, metric)
    counts = table.groupby("dataset")["protocol_name"].nunique()
    datasets = sorted(counts[counts >= 2].index)
    if not datasets:
        raise FigureSkipped("needs random architectures trained with at least two protocols on one dataset")
    fig, axes = _grid(len(datasets), width=max(6.0, 0.8 * counts.max() + 1.5))
    for ax, dataset in zip(axes, datasets):
        part = table[table["dataset"] == dataset].reset_index(drop=True)
        x = np.arange(len(part))
        ax.bar(x, part["mean"], yerr=part["std"].fillna(0), capsize=3, color="lightsteelblue", label="mean ± std")
        ax.plot(x, part["max"], "o", color="black", label="max")
        ax.set_xticks(x, part["protocol_name"], rotation=30, ha="right")
        low = (part["mean"] - part["std"].fillna(0)).min()
        ax.set(ylim=(low - 1, part["max"].max() + 0.5), title=dataset, ylabel=_ylabel(metric))
        ax.legend(fontsize=7)
    fig.suptitle("Training protocols on the same random architectures")
    return fig


def _scatter(comparison: stats.RankComparison, metric: str, what: str) -> Figure:
    fig = Figure(figsize=(4.6, 4.4), layout="constrained")
    ax = fig.subplots()
    t = comparison.table
    ax.scatter(t["acc_a"], t["acc_b"], s=18)
    lo, hi = min(t["acc_a"].min(), t["acc_b"].min()) - 0.2, max(t["acc_a"].max(), t["acc_b"].max()) + 0.2
    ax.plot([lo, hi], [lo, hi], "--", color="grey", linewidth=1)
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel=f"{what} {comparison.a}: {_ylabel(metric)}",
           ylabel=f"{what} {comparison.b}: {_ylabel(metric)}", aspect="equal",
           title=f"Kendall τ = {comparison.tau:.2f} (n = {comparison.n}); largest rank shift "
                 f"{comparison.max_rank_shift}")
    return fig


def seed_scatter(df: pd.DataFrame, metric: str = "final") -> Figure:
    """The same random architectures trained with two seeds: accuracy vs accuracy, with Kendall τ."""
    try:
        comparison = stats.compare_rankings(stats.study_rows(df, "seeds"), "train_seed", metric=metric)
    except ConfigError as exc:
        raise FigureSkipped(f"seed study: {exc}") from None
    return _scatter(comparison, metric, "seed")


def depth_pair(df: pd.DataFrame, metric: str = "final") -> tuple[int, int]:
    """The two depths to compare: the paper's 8 vs 20 cells when both exist, else the extremes.

    ``df`` should already be the depth study's rows (``stats.study_rows(df, 'depth')``).
    """
    data = stats.usable(df, metric)
    values = sorted(data.loc[data["role"] == Role.RANDOM, "layers"].dropna().unique().tolist())
    if len(values) < 2:
        raise FigureSkipped(f"depth study: needs random architectures at two depths, found {values}")
    return (8, 20) if {8, 20} <= set(values) else (values[0], values[-1])


def depth_scatter(df: pd.DataFrame, metric: str = "final") -> Figure:
    """The same random architectures at two depths (cells): accuracy vs accuracy, with Kendall τ."""
    df = stats.study_rows(df, "depth")
    a, b = depth_pair(df, metric)
    try:
        comparison = stats.compare_rankings(df, "layers", a, b, metric=metric)
    except ConfigError as exc:
        raise FigureSkipped(f"depth study: {exc}") from None
    return _scatter(comparison, metric, "cells")


def epoch_tau(df: pd.DataFrame, metric: str = "final", window: int = 5, max_lines: int = 6) -> Figure:
    """Kendall τ between the accuracy at epoch e and the final accuracy, raw and smoothed, over e.

    One colour per experiment and protocol (its final trainings), thin = raw, thick = ``window``-epoch
    moving average; the ``max_lines`` groups with the most trials are drawn (all are in the report's table).
    """
    table = stats.epoch_rank_correlation(df, metric, window=window)
    table = table.dropna(subset=["tau", "tau_smoothed"], how="all")
    if table.empty:
        raise FigureSkipped("needs at least three complete trials with per-epoch curves trained alike")
    names = stats.usable(df, metric).drop_duplicates("experiment_id").set_index("experiment_id")
    names = names["experiment_name"].fillna(names.index.to_series()) if "experiment_name" in names else {}
    keys = ["dataset", "experiment_id", "role", "protocol_name"]
    groups = sorted(table.groupby(keys, sort=True), key=lambda kv: -kv[1]["n"].iloc[0])
    shown = groups[:max_lines]
    fig = Figure(figsize=(6.8, 4.2), layout="constrained")
    ax = fig.subplots()
    for (dataset, experiment, role, protocol), part in shown:
        label = (f"{dataset}/{names.get(experiment, experiment)}/{role}/{protocol} "
                 f"(n={int(part['n'].iloc[0])})")
        line = ax.plot(part["epoch"], part["tau"], alpha=0.4, linewidth=0.8)[0]
        ax.plot(part["epoch"], part["tau_smoothed"], color=line.get_color(), label=label)
    ax.axhline(0, color="grey", linewidth=0.8)
    more = f" ({len(shown)} largest of {len(groups)} groups)" if len(groups) > len(shown) else ""
    ax.set(xlabel="epoch e", ylabel="Kendall τ with final accuracy", ylim=(-1.05, 1.05),
           title=f"Ranking at epoch e vs final ranking{more}")
    ax.legend(fontsize=7, title=f"thin: raw, thick: {window}-epoch moving average", title_fontsize=7)
    return fig


def accuracy_vs_cells(df: pd.DataFrame, metric: str = "final") -> Figure:
    """Accuracy of each random architecture against its number of cells (thin lines), and the mean."""
    sweep = stats.study_rows(df, "depth_sweep")
    if "study" in df and not (sweep["study"] == "depth_sweep").any():
        sweep = stats.study_rows(df, "depth")  # the 8-vs-20 study is a two-point sweep
    data = stats.usable(sweep, metric)
    data = data[(data["role"] == Role.RANDOM) & data["layers"].notna()]
    if data["layers"].nunique() < 2:
        raise FigureSkipped(f"needs random architectures trained at two or more depths, found "
                            f"{sorted(data['layers'].unique().tolist())}")
    data = data.assign(arch=stats.architecture_key(data), layers=data["layers"].astype(int))
    # Only architectures trained at several depths (the sweep): other experiments' networks at the
    # default depth would weigh on one point of the mean and not the others.
    swept = data.groupby("arch")["layers"].transform("nunique") > 1
    if not swept.any():
        raise FigureSkipped("needs the same random architectures trained at two or more depths")
    data = data[swept]
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.subplots()
    for _, part in data.groupby("arch"):
        part = part.groupby("layers")["acc"].mean()
        ax.plot(part.index, part.to_numpy(), color="grey", alpha=0.35, linewidth=0.8)
    mean = data.groupby("layers")["acc"].agg(["mean", "std"])
    ax.errorbar(mean.index, mean["mean"], yerr=mean["std"].fillna(0), fmt="o-", capsize=3, color="C0",
                label="mean ± std")
    ax.set(xlabel="number of cells", ylabel=_ylabel(metric),
           title=f"Accuracy vs depth ({data['arch'].nunique()} architectures)")
    ax.legend(fontsize=7)
    return fig


def accuracy_vs_latency(df: pd.DataFrame, metric: str = "final") -> Figure:
    """Accuracy vs predicted latency of every searched and random architecture, with each group's mean ± std."""
    data = stats.latency_rows(df, metric)
    if data.empty:
        raise FigureSkipped("needs complete searched or random trials with latency_ms (a space with a latency "
                            "model, e.g. Single-Path NAS's mobilenet_sp)")
    data = data.assign(panel=_label_origin(data))
    panels = sorted(data["panel"].unique())
    fig, axes = _grid(len(panels))
    methods = sorted(data.loc[data["role"] == Role.SEARCHED, "method"].unique())
    colors = dict(zip(methods, sns.color_palette("tab10", max(len(methods), 1))))
    for ax, panel in zip(axes, panels):
        part = data[data["panel"] == panel]
        groups = [("random", part[part["role"] == Role.RANDOM], "grey", "none")]
        groups += [(m, part[(part["role"] == Role.SEARCHED) & (part["method"] == m)], colors[m], colors[m])
                   for m in methods]
        for name, rows, color, face in groups:
            if rows.empty:
                continue
            label = f"{name} (n={len(rows)})" if name == "random" else f"{name} searched (n={len(rows)})"
            ax.scatter(rows["latency_ms"], rows["acc"], s=22, edgecolors=color, facecolors=face, label=label)
            ax.errorbar(rows["latency_ms"].mean(), rows["acc"].mean(), xerr=np.nan_to_num(rows["latency_ms"].std()),
                        yerr=np.nan_to_num(rows["acc"].std()), fmt="s", color=color, capsize=3, markersize=7)
        ax.set(title=panel, xlabel="predicted latency (ms)", ylabel=_ylabel(metric))
        ax.legend(fontsize=7)
    fig.suptitle("Accuracy vs predicted latency: searched vs random architectures (squares: mean ± 1 std)")
    return fig


FIGURES: dict[str, Callable[..., Figure]] = {
    "searched_vs_random": searched_vs_random,
    "accuracy_vs_cost": accuracy_vs_cost,
    "distributions": distributions,
    "training_tricks": training_tricks,
    "seed_scatter": seed_scatter,
    "depth_scatter": depth_scatter,
    "epoch_tau": epoch_tau,
    "accuracy_vs_cells": accuracy_vs_cells,
}


@dataclass
class FigureResult:
    """One figure of :func:`draw_all`: the files written, or why it was skipped."""

    name: str
    title: str
    paths: list[Path] = field(default_factory=list)
    note: str | None = None


def save(fig: Figure, out_dir: str | Path, name: str, formats: Sequence[str] = ("png", "pdf"),
         dpi: int = 120) -> list[Path]:
    """Write ``fig`` as ``<out_dir>/<name>.<format>`` for each format; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out / f"{name}.{fmt}"
        fig.savefig(path, dpi=dpi)
        paths.append(path)
    return paths


def draw_all(df: pd.DataFrame, out_dir: str | Path, metric: str = "final",
             names: Sequence[str] | None = None, formats: Sequence[str] = ("png", "pdf")) -> list[FigureResult]:
    """Draw every figure of :data:`FIGURES` (or ``names``) into ``out_dir``; skipped ones carry a note."""
    results = []
    for name in names or FIGURES:
        fn = FIGURES[name]
        title = (fn.__doc__ or name).strip().splitlines()[0]
        try:
            fig = fn(df, metric)
        except FigureSkipped as exc:
            results.append(FigureResult(name, title, note=str(exc)))
            continue
        results.append(FigureResult(name, title, save(fig, out_dir, name, formats)))
    return results
