"""Every multi-trial strategy on NAS-Bench-201, R seeded runs each, in-process: the tabular table.

For each method × dataset × run ``r`` (seed ``seed + r``): a fresh strategy
``create_strategy(method, seed=..., budget=..., **settings)`` searches the NB201 space with a
:class:`~nni_nas_bench.tabular.evaluator.TabularEvaluator` (search signal: the dataset's validation
accuracy with seeded seed-noise; the reported accuracy of a cell is its noise-free test accuracy).
Runs are spread over worker processes; each loads the tables once.

Outputs (:class:`TabularResult`, written by :func:`write_outputs`):

- ``curves``: one row per query of every run (schema in :mod:`analysis.tabular`), summarised into
  ``curves_by_query.csv`` / ``curves_by_seconds.csv`` (mean and 95% interval over runs) and figures;
- ``runs``: one row per run: the final pick (index, cell, search-signal and test accuracy), its
  simulated search cost, and ``queries_to_optimum`` (the query that first evaluated the space's best
  cell by the noise-free search metric; NaN when the budget did not reach it);
- ``trials``: the same runs in the trial-DB schema of :mod:`analysis.trial_db` (role ``searched``,
  ``final_acc`` = test accuracy) plus K uniformly drawn cells per dataset (role ``random``), so
  :func:`analysis.stats.ri_table` computes RI against K random samples exactly as for trained runs;
- ``summary``: per method × dataset: mean / std and interquartile mean (with a seeded bootstrap interval)
  of the picks' test accuracy, RI vs the mean of the whole
  space and vs the K random samples (with bootstrap interval), queries to the optimum (fraction of runs
  that found it, median), simulated GPU-hours, and the wall time of the runs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nni_nas_bench.contract import Role
from nni_nas_bench.errors import ConfigError
from nni_nas_bench.workers import pin_threads

SEARCH_DATASETS = ("cifar10-valid", "cifar100", "ImageNet16-120")


# Settings the table runs a method with unless the caller overrides them: SPEC's NAS-Bench-201 values
# (WeakNAS starts from 10 samples there) and WeakNAS's linear predictor, because the SPEC MLP (4 × 1000)
# refits 99 times per run, i.e. hours for 300 runs on a CPU; benchmarks/tabular.py measures both.
TABLE_SETTINGS: dict[str, dict[str, Any]] = {"weaknas": {"initial": 10, "predictor": "linear"}}


def table_settings(method: str, overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The settings ``method`` runs with in the table: :data:`TABLE_SETTINGS`, then the caller's ``overrides``."""
    return {**TABLE_SETTINGS.get(method, {}), **(overrides or {}).get(method, {})}


def multi_trial_strategies(*, include_references: bool = False) -> list[str]:
    """Registered strategies that search by evaluating architectures (``kind == 'multi_trial'``).

    NNI's own implementations of methods the suite also implements (``nni_reference``, e.g. ``nni_tpe``)
    are left out unless asked for: the default table counts each method once.
    """
    from nni_nas_bench.strategies import get_strategy_class, list_strategies

    classes = {name: get_strategy_class(name) for name in list_strategies()}
    return [name for name, cls in classes.items() if getattr(cls, "kind", None) == "multi_trial"
            and getattr(cls, "tabular", True) and (include_references or not getattr(cls, "nni_reference", False))]


@dataclass
class RunSpec:
    """What one worker task runs: ``runs`` seeds of one method on one dataset."""

    method: str
    dataset: str
    seeds: list[int]
    budget: int
    metric: str
    noise: bool
    root: str | None
    source: str
    settings: dict[str, Any]


def _run_chunk(spec: RunSpec) -> list[dict[str, Any]]:
    """Run one chunk of seeded searches; return per-run arrays (small enough to send between processes)."""
    import torch

    from nni_nas_bench.data._seeding import derive_seed
    from nni_nas_bench.strategies import create_strategy
    from nni_nas_bench.tabular.evaluator import TabularEvaluator
    from search_spaces import create_space

    torch.set_num_threads(1)
    space = create_space("nb201")
    evaluator = TabularEvaluator(spec.dataset, spec.metric, noise=spec.noise, root=spec.root, source=spec.source)
    optimum = evaluator.optimum()
    out = []
    for seed in spec.seeds:
        evaluator.reset(derive_seed("tabular-noise", spec.dataset, seed) % 2**32)
        strategy = create_strategy(spec.method, seed=seed, budget=spec.budget, **spec.settings)
        tic = time.perf_counter()
        result = strategy.search(space, evaluator)
        wall = time.perf_counter() - tic
        n = len(result.history)
        # A failed query's metrics are None (the strategy keeps only metrics with a finite ``default``).
        failed = (np.nan, np.nan, 0.0, -1)
        columns = np.array([failed if m is None else (m["default"], m["test_acc"], m["seconds"], m["index"])
                            for m in (entry["metrics"] for entry in result.history)], dtype=float).reshape(n, 4)
        value, test, secs, index = columns[:, 0], columns[:, 1], columns[:, 2], columns[:, 3].astype(np.int64)
        pick = result.best_metrics
        hits = np.flatnonzero(index == optimum)
        out.append({
            "method": spec.method, "dataset": spec.dataset, "run": seed, "value": value, "test": test,
            "seconds": np.cumsum(secs), "pick_index": int(pick["index"]), "pick_value": float(pick["default"]),
            "pick_test": float(pick["test_acc"]), "arch": result.genotype.to_text(),
            "queries_to_optimum": float(hits[0] + 1) if len(hits) else np.nan, "wall_seconds": wall,
            "search_seconds": float(evaluator.clock), "queries": n,
        })
    return out


def _incumbent(value: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Running best search signal and the test accuracy of the cell holding it (first one on ties)."""
    filled = np.where(np.isnan(value), -np.inf, value)
    best = np.maximum.accumulate(filled)
    is_new = np.concatenate([[True], best[1:] > best[:-1]]) & np.isfinite(filled)
    holder = np.maximum.accumulate(np.where(is_new, np.arange(len(value)), -1))
    inc_test = np.where(holder >= 0, test[np.maximum(holder, 0)], np.nan)
    return np.where(np.isfinite(best), best, np.nan), inc_test


@dataclass
class TabularResult:
    """Every run's curve, final pick and the per-method summary (see the module docstring)."""

    curves: pd.DataFrame
    runs: pd.DataFrame
    trials: pd.DataFrame
    summary: pd.DataFrame
    settings: dict[str, Any]


def run_tabular(methods: Sequence[str] | None = None, datasets: Sequence[str] = SEARCH_DATASETS, *, runs: int = 100,
                budget: int = 1000, metric: str = "valid", noise: bool = True, num_random: int = 100, seed: int = 0,
                root: str | Path | None = None, source: str = "csv", workers: int | None = None,
                settings: dict[str, dict[str, Any]] | None = None, n_boot: int = 2000,
                progress: bool | None = None) -> TabularResult:
    """Run the table; ``settings`` maps a method to strategy settings (over :data:`TABLE_SETTINGS`).

    ``progress``: a tqdm bar of finished runs on stderr (None: only when stderr is a terminal). The full
    table is minutes of CPU; the bar says how far it is and, from the finished runs, how long it has left.
    """
    from nni_nas_bench.strategies import get_strategy_class, list_strategies
    from nni_nas_bench.tabular.table import dataset_name, load_table

    methods = list(methods) if methods else multi_trial_strategies()
    known = multi_trial_strategies(include_references=True)
    scored = [m for m in methods if m in list_strategies() and not getattr(get_strategy_class(m), "tabular", True)]
    if scored:
        raise ConfigError(f"{scored[0]} scores real networks, which this in-process table (lookups only) cannot do: "
                          "run benchmarks/zero_cost.py, or its nnictl experiment experiments/nb201/zero_cost.yml")
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise ConfigError(f"not multi-trial strategies: {unknown}; choose among {', '.join(known)}")
    datasets = [dataset_name(d) for d in datasets]
    for dataset in datasets:
        load_table(dataset, root, source).metric(metric)  # a missing table or metric fails here, once
    if runs < 1 or budget < 1:
        raise ConfigError(f"runs and budget must be >= 1, got runs={runs}, budget={budget}")
    settings = {m: table_settings(m, settings) for m in methods}
    workers = workers or min(os.cpu_count() or 1, 8)
    # 10 tasks per method × dataset: slow and fast methods balance over the workers, and the last task to
    # finish is ~1 s of NSGA-Net rather than a quarter of its 100 runs (the other worker idles meanwhile).
    chunk = -(-runs // 10)
    specs = [RunSpec(m, d, list(range(seed + s, seed + min(s + chunk, runs))), budget, metric, noise,
                     None if root is None else str(root), source, dict(settings[m]))
             for m in methods for d in datasets for s in range(0, runs, chunk)]
    tic = time.perf_counter()
    chunks = _run_chunks(specs, workers, progress)
    wall = time.perf_counter() - tic
    records = [r for c in chunks for r in c]
    curves = _curves(records)
    runs_df = pd.DataFrame([{k: v for k, v in r.items() if k not in ("value", "test", "seconds")} for r in records])
    trials = _trial_rows(runs_df, datasets, num_random, seed, root, source)
    summary = _summary(runs_df, trials, datasets, root, source, n_boot, seed)
    run_settings = {"methods": methods, "datasets": datasets, "runs": runs, "budget": budget, "metric": metric,
                    "noise": noise, "num_random": num_random, "seed": seed, "source": source, "workers": workers,
                    "root": None if root is None else str(root), "strategy_settings": settings,
                    "wall_seconds": wall, "queries": int(runs_df["queries"].sum())}
    return TabularResult(curves, runs_df, trials, summary, run_settings)


def _run_chunks(specs: list[RunSpec], workers: int, progress: bool | None) -> list[list[dict[str, Any]]]:
    """Each spec's run records, in ``specs`` order, computed by ``workers`` processes (threads pinned)."""
    from tqdm import tqdm

    bar = tqdm(total=sum(len(s.seeds) for s in specs), desc="tabular", unit="run", disable=None if progress is None
               else not progress)
    try:
        if workers == 1:
            chunks = []
            for spec in specs:
                chunks.append(_run_chunk(spec))
                bar.update(len(spec.seeds))
            return chunks
        import multiprocessing
        from concurrent.futures import as_completed

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                 initializer=pin_threads) as pool:
            futures = {pool.submit(_run_chunk, spec): i for i, spec in enumerate(specs)}
            done: dict[int, list[dict[str, Any]]] = {}
            for future in as_completed(futures):
                i = futures[future]
                done[i] = future.result()
                bar.update(len(specs[i].seeds))
                bar.set_postfix_str(f"{specs[i].method} on {specs[i].dataset}", refresh=False)
        return [done[i] for i in range(len(specs))]
    finally:
        bar.close()


def _curves(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Every run's incumbent curve, one row per query, built as whole columns (1.8 million rows in the table)."""
    incumbents = [_incumbent(r["value"], r["test"]) for r in records]
    lengths = np.array([len(r["value"]) for r in records], dtype=np.int64)
    columns: dict[str, Any] = {}
    for column in ("method", "dataset"):
        names = [r[column] for r in records]
        categories = sorted(set(names))  # as ``astype("category")`` orders them
        codes = np.array([categories.index(name) for name in names], dtype=np.int64).repeat(lengths)
        columns[column] = pd.Categorical.from_codes(codes, categories)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    columns["run"] = np.array([r["run"] for r in records], dtype=np.int64).repeat(lengths)
    columns["query"] = np.arange(int(lengths.sum())) - starts.repeat(lengths) + 1
    columns["seconds"] = np.concatenate([r["seconds"] for r in records])
    columns["value"] = np.concatenate([value for value, _ in incumbents])
    columns["test_acc"] = np.concatenate([test for _, test in incumbents])
    return pd.DataFrame(columns)


def _trial_rows(runs: pd.DataFrame, datasets: Sequence[str], num_random: int, seed: int, root: Any,
                source: str) -> pd.DataFrame:
    """Searched picks and K random cells as rows of the trial-DB schema (origin 'tabular')."""
    from nni_nas_bench.tabular.table import load_table
    from search_spaces import create_space

    space = create_space("nb201")
    rows = [{"role": Role.SEARCHED.value, "method": r.method, "dataset": r.dataset, "space": "nb201",
             "genotype": r.arch,
             "search_seed": r.run, "final_acc": r.pick_test, "best_acc": r.pick_test, "arch_index": None,
             "search_seconds": r.search_seconds, "status": "SUCCEEDED", "complete": True, "failed": False,
             "origin": "tabular"} for r in runs.itertuples()]
    for dataset in datasets:
        table = load_table(dataset, root, source)
        rng = np.random.RandomState(seed)
        for k in range(num_random):
            arch = space.to_genotype(space.random_sample(rng))
            rows.append({"role": Role.RANDOM.value, "method": "random", "dataset": dataset, "space": "nb201",
                         "genotype": arch.to_text(), "arch_index": k, "arch_seed": seed,
                         "final_acc": float(table.test[table.index_of(arch)]), "status": "SUCCEEDED",
                         "complete": True, "failed": False, "origin": "tabular"})
    from analysis.trial_db import ALL_COLUMNS

    frame = pd.DataFrame(rows)
    return frame.reindex(columns=[c for c in ALL_COLUMNS if c in frame.columns or c in ("protocol", "space_args")])


def _summary(runs: pd.DataFrame, trials: pd.DataFrame, datasets: Sequence[str], root: Any, source: str,
             n_boot: int, seed: int) -> pd.DataFrame:
    from analysis.stats import bootstrap_iqm, iqm, ri_table
    from nni_nas_bench.tabular.table import load_table

    ri = ri_table(trials, "final", n_boot=n_boot, seed=seed).set_index(["dataset", "method"])
    rows = []
    for (dataset, method), group in runs.groupby(["dataset", "method"], sort=True):
        table = load_table(dataset, root, source)
        space_mean, best = float(table.test.mean()), float(table.test.max())
        acc = group["pick_test"].to_numpy(float)
        hits = group["queries_to_optimum"].dropna()
        r = ri.loc[(dataset, method)] if (dataset, method) in ri.index else None
        rows.append({
            "dataset": dataset, "method": method, "runs": len(group), "test_mean": acc.mean(),
            "test_std": acc.std(ddof=1) if len(acc) > 1 else np.nan, "test_iqm": iqm(acc),
            **dict(zip(("test_iqm_low", "test_iqm_high"), bootstrap_iqm(acc, seed=seed))),
            "space_mean": space_mean, "space_best": best,
            "ri_space": 100 * (acc.mean() - space_mean) / space_mean,
            "random_mean": None if r is None else r["random_mean"], "ri_random": None if r is None else r["ri"],
            "ri_random_low": None if r is None else r["ri_low"], "ri_random_high": None if r is None else r["ri_high"],
            "found_optimum": len(hits) / len(group), "queries_to_optimum_median": hits.median() if len(hits) else None,
            "search_gpu_hours_mean": group["search_seconds"].mean() / 3600, "wall_seconds": group["wall_seconds"].sum(),
        })
    return pd.DataFrame(rows)


def write_outputs(result: TabularResult, out_dir: str | Path, figures: bool = True,
                  full_curves: bool = False) -> list[Path]:
    """CSV tables (+ figures, + the per-query curves of every run if asked) and ``settings.json``."""
    from analysis.tabular import curves_by_query, curves_by_seconds, write_curve_figures
    from nni_nas_bench.tabular.table import load_table

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_query, by_seconds = curves_by_query(result.curves), curves_by_seconds(result.curves)
    paths = []
    for name, frame in (("curves_by_query", by_query), ("curves_by_seconds", by_seconds), ("runs", result.runs),
                        ("trials", result.trials), ("summary", result.summary)):
        path = out / f"{name}.csv"
        frame.to_csv(path, index=False)
        paths.append(path)
    if full_curves:
        path = out / "curves.csv.gz"
        result.curves.to_csv(path, index=False)
        paths.append(path)
    path = out / "settings.json"
    path.write_text(json.dumps(result.settings, indent=1, default=str))
    paths.append(path)
    if figures:
        settings = result.settings
        optimum = {d: float(load_table(d, settings["root"], settings["source"]).test.max())
                   for d in settings["datasets"]}
        paths += write_curve_figures(by_query, by_seconds, out, optimum)
    return paths
