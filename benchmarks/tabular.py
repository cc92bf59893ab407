"""Speed of tabular mode: queries per second of the NB201 evaluator, and wall time of the full tabular table.

Tabular mode exists to make search strategies comparable in seconds, so the two numbers that matter are
how many architecture "evaluations" the table answers per second, and how long the whole comparison
(every multi-trial strategy × 3 datasets × R seeded runs × N queries) takes on the machine at hand.

1. ``evaluator``: ``TabularEvaluator.__call__`` on pre-drawn uniform samples (with and without seed
   noise), median of ``--repeats`` timed passes.
2. ``per_method``: one search of ``--budget`` queries per strategy (seed 0, cifar10-valid, one thread,
   its default settings unless ``--settings`` says otherwise) and the full-table time it extrapolates to
   (runs × datasets / workers): what each method costs, and which one dominates.
3. ``references``: the suite's methods next to NNI's own implementation or the SPEC's costlier setting
   they replace in the table (``tpe`` vs NNI's ``nni_tpe``; WeakNAS's linear predictor vs the SPEC MLP
   4 × 1000), each over ``--reference-runs`` seeds of ``--reference-budget`` queries on cifar10-valid:
   seconds per run, the speed ratio, and the search quality (test accuracy of the picks, runs that
   found the optimum), so that a faster replacement is never a worse one unnoticed.
4. ``table``: the full table itself, :func:`nni_nas_bench.tabular.runner.run_tabular`, timed end to end
   (worker start, searches, curve summaries; figures are not drawn), unless ``--skip-table``; its summary
   (mean test accuracy of the picks, RI, queries to the optimum per method × dataset) is recorded too.
5. ``baseline`` (``--baseline REV``): each method's CPU seconds per 1,000-query run at commit REV and in this
   checkout, measured alternately in fresh processes (best of 5 passes of 10 seeds, cifar100): the speed
   ratio of a change, which wall times taken at different moments of a shared machine cannot give.
6. ``cli`` (``--cli``): ``nas-bench tabular`` itself in a fresh process, as a user runs it (imports, the
   table, CSVs and figures), under the same ``--busy`` load: wall, CPU seconds and peak RSS of it and its
   workers, and whether its summary has the in-process table's numbers.

Example (the numbers in benchmarks/README.md)::

    python benchmarks/tabular.py --data-root ../shared/data --cli --out benchmarks/results/tabular-cpu-2core.json
    python benchmarks/tabular.py --data-root ../shared/data --busy 2 --reference-runs 0 --cli \
        --out benchmarks/results/tabular-cpu-2core-busy.json   # both cores kept busy by two other processes
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import REPO, git, git_state, load_average, write_result

sys.path.insert(0, str(REPO))


def bench_evaluator(root: str | None, n: int, repeats: int) -> dict[str, Any]:
    """Queries per second of the evaluator on ``n`` uniform samples, with and without seed noise."""
    import numpy as np

    from nni_nas_bench.tabular import TabularEvaluator
    from search_spaces import create_space

    space = create_space("nb201")
    rng = np.random.RandomState(0)
    samples = [space.random_sample(rng) for _ in range(n)]
    out = {}
    for noise in (True, False):
        evaluator = TabularEvaluator("cifar10-valid", root=root, noise=noise)
        rates = []
        for _ in range(repeats):
            tic = time.perf_counter()
            for sample in samples:
                evaluator(sample)
            rates.append(n / (time.perf_counter() - tic))
        out["noise" if noise else "no_noise"] = {"queries_per_s": statistics.median(rates),
                                                 "best_queries_per_s": max(rates), "repeats": rates}
    return out


def bench_methods(methods: list[str], root: str | None, budget: int, settings: dict[str, dict[str, Any]],
                  runs: int, datasets: int, workers: int) -> dict[str, Any]:
    """One search per method, timed; and the full-table time each extrapolates to."""
    import torch

    from nni_nas_bench.strategies import create_strategy
    from nni_nas_bench.tabular import TabularEvaluator
    from nni_nas_bench.tabular.runner import table_settings
    from search_spaces import create_space

    torch.set_num_threads(1)
    space = create_space("nb201")
    evaluator = TabularEvaluator("cifar10-valid", root=root)
    out = {}
    for method in methods:
        method_settings = table_settings(method, settings)
        strategy = create_strategy(method, seed=0, budget=budget, **method_settings)
        evaluator.reset(0)
        tic = time.perf_counter()
        strategy.search(space, evaluator)
        seconds = time.perf_counter() - tic
        out[method] = {"seconds_per_run": seconds, "queries_per_s": budget / seconds,
                       "settings": method_settings,
                       "extrapolated_table_seconds": seconds * runs * datasets / workers}
        print(f"{method:14s} {seconds:8.3f} s per run of {budget} queries -> "
              f"{out[method]['extrapolated_table_seconds']:8.1f} s in the full table", flush=True)
    return out


# (name in the output, method, settings): the suite's choice first, then what it is measured against.
REFERENCE_PAIRS = [
    (("tpe", "tpe", {}), ("nni_tpe", "nni_tpe", {})),
    (("weaknas[linear]", "weaknas", {"initial": 10, "predictor": "linear"}),
     ("weaknas[mlp 4x1000]", "weaknas", {"initial": 10, "predictor": "mlp"})),
]


def _number(value: Any) -> float:
    """A summary cell as a float (None, when no run reached the optimum, becomes NaN)."""
    return float("nan") if value is None else float(value)


def bench_references(root: str | None, budget: int, runs: int, workers: int) -> dict[str, Any]:
    """Each pair of :data:`REFERENCE_PAIRS` over ``runs`` seeds: seconds per run, ratio, search quality."""
    from nni_nas_bench.tabular.runner import run_tabular

    out = {}
    for pair in REFERENCE_PAIRS:
        rows = {}
        for name, method, settings in pair:
            table = run_tabular([method], ["cifar10-valid"], runs=runs, budget=budget, root=root, workers=workers,
                                settings={method: settings}, n_boot=200)
            summary = table.summary.iloc[0]
            rows[name] = {"method": method, "settings": settings,
                          "seconds_per_run": float(table.runs["wall_seconds"].mean()),
                          "test_mean": float(summary["test_mean"]), "found_optimum": float(summary["found_optimum"]),
                          "queries_to_optimum_median": _number(summary["queries_to_optimum_median"])}
            print(f"{name:22s} {rows[name]['seconds_per_run']:8.3f} s per run of {budget} queries, test "
                  f"{rows[name]['test_mean']:.2f}, optimum found in {rows[name]['found_optimum']:.0%} of runs",
                  flush=True)
        (ours, _, _), (reference, _, _) = pair
        out[f"{ours} vs {reference}"] = {
            **rows, "speedup": rows[reference]["seconds_per_run"] / rows[ours]["seconds_per_run"]}
    return out


# One method's CPU seconds per run, in a fresh process whose ``sys.path`` starts at a checkout (argv: checkout,
# method, dataset, data root, budget, runs, repeats): the best of ``repeats`` passes over ``runs`` seeds.
_PER_RUN = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from nni_nas_bench.workers import pin_threads
pin_threads()
from nni_nas_bench.tabular.runner import RunSpec, _run_chunk, table_settings
method, dataset, root, budget, runs, repeats = sys.argv[2], sys.argv[3], sys.argv[4], *map(int, sys.argv[5:8])
spec = lambda seeds: RunSpec(method, dataset, seeds, budget, "valid", True, root, "csv", table_settings(method))
_run_chunk(spec([0]))  # first use: tables, caches
passes = []
for _ in range(repeats):
    tic = time.process_time()
    _run_chunk(spec(list(range(1, runs + 1))))
    passes.append((time.process_time() - tic) / runs)
import nni_nas_bench
print(json.dumps({"cpu_seconds_per_run": min(passes), "passes": passes, "code": nni_nas_bench.__file__}))
"""


def bench_baseline(methods: list[str], rev: str, root: str | None, budget: int, runs: int,
                   repeats: int) -> dict[str, Any]:
    """Each method's CPU seconds per run at commit ``rev`` and in this checkout, measured alternately in the
    same minutes (this machine's speed drifts by 20% within an hour, so only a same-run ratio means
    anything): the best of ``repeats`` passes of ``runs`` seeded 1,000-query runs on cifar100."""
    import tempfile

    root = str(Path(root).resolve()) if root else ""
    out: dict[str, Any] = {"commit": git("rev-parse", rev), "runs": runs, "repeats": repeats, "methods": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tree = str(Path(tmp) / "baseline")
        subprocess.run(["git", "worktree", "add", "--detach", tree, rev], cwd=REPO, check=True, capture_output=True)
        try:
            for method in methods:
                row = {}
                for name, checkout in (("baseline", tree), ("current", str(REPO))):
                    done = subprocess.run([sys.executable, "-c", _PER_RUN, checkout, method, "cifar100", root,
                                           str(budget), str(runs), str(repeats)], capture_output=True, text=True,
                                          check=True, cwd=tmp)
                    measured = json.loads(done.stdout.strip().splitlines()[-1])
                    if not Path(measured["code"]).resolve().is_relative_to(Path(checkout).resolve()):
                        raise SystemExit(f"the {name} run imported {measured['code']}, not {checkout}'s code")
                    row[name] = measured["cpu_seconds_per_run"]
                row["speedup"] = row["baseline"] / row["current"]
                out["methods"][method] = row
                print(f"{method:<16} {row['baseline'] * 1000:7.1f} ms per run at {rev} -> "
                      f"{row['current'] * 1000:7.1f} ms now ({row['speedup']:.2f}x)", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=REPO, capture_output=True)
    total = {k: sum(r[k] for r in out["methods"].values()) for k in ("baseline", "current")}
    out["total"] = {**total, "speedup": total["baseline"] / total["current"]}
    print(f"{'all methods':<16} {total['baseline'] * 1000:7.1f} ms -> {total['current'] * 1000:7.1f} ms "
          f"({out['total']['speedup']:.2f}x)", flush=True)
    return out


# Runs the CLI in a fresh process and reports its children's resource use: only the CLI and its workers
# (not this script's earlier workers or the --busy spinners) count.
_RUSAGE = """
import json, resource, subprocess, sys, time
tic = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
wall = time.perf_counter() - tic
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"returncode": code, "wall_seconds": wall, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "max_rss_mb": usage.ru_maxrss / 1024}))
"""


def bench_cli(args: argparse.Namespace, summary: list[dict[str, Any]] | None) -> dict[str, Any]:
    """``nas-bench tabular`` as a user runs it: wall, CPU and peak RSS of the process and its workers; and
    whether its summary has the in-process table's numbers (the CLI is the same runner, so it must)."""
    import tempfile

    import numpy as np
    import pandas as pd

    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "nni_nas_bench.cli", "tabular", "--out", out, "--runs", str(args.runs),
                   "--budget", str(args.budget), "--workers", str(args.workers), "--settings", args.settings,
                   "--datasets", *args.datasets]
        if args.data_root:
            command += ["--data-root", str(Path(args.data_root).resolve())]
        if args.methods:
            command += ["--methods", *args.methods]
        measured = json.loads(subprocess.run([sys.executable, "-c", _RUSAGE, *command], check=True,
                                             capture_output=True, text=True, cwd=REPO).stdout)
        if measured["returncode"] != 0:
            raise SystemExit(f"nas-bench tabular failed (exit {measured['returncode']}): {' '.join(command)}")
        same = None
        if summary is not None:
            columns = ["dataset", "method", "test_mean", "ri_space", "ri_random", "found_optimum"]
            cli = pd.read_csv(Path(out) / "summary.csv")[columns].sort_values(["dataset", "method"])
            table = pd.DataFrame(summary)[columns].sort_values(["dataset", "method"])
            keys, numbers = columns[:2], columns[2:]
            same = bool(cli[keys].to_numpy().tolist() == table[keys].to_numpy().tolist() and np.allclose(
                cli[numbers].to_numpy(float), table[numbers].to_numpy(float), rtol=1e-9, equal_nan=True))
    shown = ["nas-bench" if c == "nni_nas_bench.cli" else "DIR" if c == out else c for c in command[2:]]
    return {**measured, "command": " ".join(shown), "busy_processes": args.busy,
            "summary_equals_table": same}


@contextlib.contextmanager
def busy_cpus(n: int) -> Iterator[None]:
    """``n`` processes that spin on the CPUs (pure-Python loops, no I/O) for the duration of the block: the
    competing job of a shared machine, made repeatable."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=None, help="folder holding nas-bench-201/ (default: the trial's)")
    parser.add_argument("--methods", nargs="*", default=None, help="default: every multi-trial strategy")
    parser.add_argument("--datasets", nargs="*", default=["cifar10-valid", "cifar100", "ImageNet16-120"])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--settings", default="{}", help="JSON: method -> strategy settings for the table")
    parser.add_argument("--queries", type=int, default=100_000, help="samples for the evaluator benchmark")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-runs", type=int, default=10)
    parser.add_argument("--reference-budget", type=int, default=200, help="queries per reference run")
    parser.add_argument("--skip-table", action="store_true", help="measure the evaluator and the methods only")
    parser.add_argument("--busy", type=int, default=0,
                        help="keep N other processes spinning on the CPUs while the table runs (issue 18: the "
                             "table on a machine another job keeps busy)")
    parser.add_argument("--cli", action="store_true",
                        help="also time `nas-bench tabular` itself (a fresh process: imports, the table, CSVs and "
                             "figures), under the same --busy load, and check its summary against the table's")
    parser.add_argument("--baseline", default=None, metavar="REV",
                        help="also measure each method's CPU seconds per run at git commit REV and here, "
                             "alternately (a same-run speed ratio; see bench_baseline)")
    parser.add_argument("--baseline-runs", type=int, default=10)
    parser.add_argument("--baseline-repeats", type=int, default=5)
    parser.add_argument("--out", default=None, help="JSON file to write")
    args = parser.parse_args(argv)

    from nni_nas_bench.tabular.runner import multi_trial_strategies, run_tabular

    methods = args.methods or multi_trial_strategies()
    settings = json.loads(args.settings)
    load = load_average()
    result: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_before": load},
        "git": git_state(),
        "settings": vars(args),
    }
    result["evaluator"] = bench_evaluator(args.data_root, args.queries, args.repeats)
    print(f"evaluator: {result['evaluator']['noise']['queries_per_s']:,.0f} queries/s (seed noise), "
          f"{result['evaluator']['no_noise']['queries_per_s']:,.0f} without", flush=True)
    result["per_method"] = bench_methods(methods, args.data_root, args.budget, settings, args.runs,
                                         len(args.datasets), args.workers)
    if args.baseline:
        result["baseline"] = bench_baseline(methods, args.baseline, args.data_root, args.budget, args.baseline_runs,
                                            args.baseline_repeats)
    if args.reference_runs:
        result["references"] = bench_references(args.data_root, args.reference_budget, args.reference_runs,
                                                args.workers)
    if not args.skip_table:
        with busy_cpus(args.busy):
            tic = time.perf_counter()
            table = run_tabular(methods, args.datasets, runs=args.runs, budget=args.budget, root=args.data_root,
                                workers=args.workers, settings=settings)
            from analysis.tabular import curves_by_query, curves_by_seconds

            curves_by_query(table.curves), curves_by_seconds(table.curves)
            wall = time.perf_counter() - tic
        result["table"] = {"wall_seconds": wall, "search_wall_seconds": table.settings["wall_seconds"],
                           "queries": table.settings["queries"], "methods": methods, "datasets": args.datasets,
                           "runs": args.runs, "budget": args.budget, "workers": args.workers,
                           "busy_processes": args.busy,
                           "summary": json.loads(table.summary.to_json(orient="records"))}
        print(f"full table: {wall:.1f} s wall for {table.settings['queries']:,} queries", flush=True)
        print(table.summary[["dataset", "method", "test_mean", "ri_space", "ri_random", "found_optimum"]]
              .to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    if args.cli:
        with busy_cpus(args.busy):
            result["cli"] = bench_cli(args, result.get("table", {}).get("summary"))
        print(f"nas-bench tabular: {result['cli']['wall_seconds']:.1f} s wall, {result['cli']['cpu_seconds']:.0f} "
              f"CPU-s, {result['cli']['max_rss_mb']:,.0f} MB peak RSS", flush=True)
    result["machine"]["load_after"] = load_average()
    if args.out:
        write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
