"""Tabular mode end to end: multi-trial strategies on NAS-Bench-201's tables, the runner's outputs, trials.

Everything runs against the real tables in ../shared/data/nas-bench-201 (skipped when absent).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nni_nas_bench.contract import arch_id
from nni_nas_bench.errors import ConfigError
from search_spaces.nb201_arch import RESNET_CELL
from tests.conftest import SHARED_DATA

TABLES = SHARED_DATA / "nas-bench-201"
pytestmark = pytest.mark.skipif(not TABLES.is_dir(), reason=f"NAS-Bench-201 tables not found at {TABLES}")
# WeakNAS's paper predictor (4 × 1000 MLP, 100 Adam steps per refit) costs seconds per refit on one core: the
# speed check uses a small predictor, the same algorithm. Every other method runs with its defaults.
FAST_SETTINGS = {"weaknas": {"initial": 10, "hidden": 64, "iterations": 30, "pool_size": 2000}}


def _methods() -> list[str]:
    from nni_nas_bench.tabular.runner import multi_trial_strategies

    return multi_trial_strategies()


def test_every_contract_method_is_a_registered_multi_trial_strategy() -> None:
    assert {"random_search", "evolution", "reinforce", "tpe", "nsganet", "weaknas"} <= set(_methods())
    assert "darts" not in _methods()


@pytest.mark.parametrize("method", _methods())
def test_each_strategy_runs_200_queries_and_picks_a_good_queried_cell(method: str) -> None:
    """Speed is measured by benchmarks/tabular.py, never timed here (issue 18)."""
    from nni_nas_bench.strategies import create_strategy
    from nni_nas_bench.tabular import TabularEvaluator
    from search_spaces import create_space

    evaluator = TabularEvaluator("cifar100", root=SHARED_DATA, seed=1)
    space = create_space("nb201")
    strategy = create_strategy(method, seed=1, budget=200, **FAST_SETTINGS.get(method, {}))
    result = strategy.search(space, evaluator)
    assert evaluator.queries == result.num_queries == 200
    # the final pick is a queried cell, and it is far better than the space's mean (61.4 on CIFAR-100)
    assert result.genotype.to_text() in {space.to_genotype(h["sample"]).to_text() for h in result.history}
    assert result.best_metrics["test_acc"] > 66.0


def test_random_search_best_of_n_rises_with_n(tmp_path: Path) -> None:
    from analysis.stats import ri_table
    from analysis.tabular import curves_by_query
    from nni_nas_bench.tabular.runner import run_tabular, write_outputs

    result = run_tabular(["random_search"], ["cifar10-valid"], runs=30, budget=100, num_random=30,
                         root=SHARED_DATA, workers=1, n_boot=200)
    summary = curves_by_query(result.curves).set_index("query")
    curve = summary["mean"]  # test accuracy of the incumbent (best by noisy validation accuracy)
    assert curve[1] < curve[10] < curve[100], curve[[1, 10, 100]].to_dict()
    # the running best of the search signal never drops (its test accuracy may: validation is not test)
    assert np.all(np.diff(summary["value_mean"].to_numpy()) >= -1e-9)
    # the per-run incumbent at the last query is the run's final pick
    last = result.curves[result.curves["query"] == 100].set_index("run")["test_acc"]
    assert np.allclose(last.sort_index().to_numpy(), result.runs.set_index("run")["pick_test"].sort_index().to_numpy())
    row = result.summary.iloc[0]
    assert row["runs"] == 30 and row["test_mean"] > row["space_mean"] and row["ri_space"] > 0
    hits = result.runs["queries_to_optimum"].dropna()
    assert (hits.between(1, 100)).all() and row["found_optimum"] == pytest.approx(len(hits) / 30)
    # the trial-DB form is what the analysis reads: RI against the 30 random cells
    ri = ri_table(result.trials, n_boot=0)
    assert list(ri["method"]) == ["random_search"] and ri["random_n"].iloc[0] == 30
    assert ri["ri"].iloc[0] == pytest.approx(row["ri_random"])
    files = {p.name for p in write_outputs(result, tmp_path)}
    assert {"curves_by_query.csv", "curves_by_seconds.csv", "summary.csv", "tabular_queries.png"} <= files


def test_runner_rejects_one_shot_methods_and_unknown_metrics() -> None:
    from nni_nas_bench.tabular.runner import run_tabular

    with pytest.raises(ConfigError, match="not multi-trial strategies"):
        run_tabular(["darts"], root=SHARED_DATA)
    with pytest.raises(ConfigError, match="no valid accuracy"):
        run_tabular(["random_search"], ["cifar10"], root=SHARED_DATA)


def test_tabular_trial_roles_and_clear_errors() -> None:
    from nni_nas_bench.tabular.trial import run_tabular_trial

    base = {"space": "nb201", "method": "evolution", "dataset": "cifar10", "genotype": RESNET_CELL.to_text(),
            "search_seed": 2, "tabular": {"dataset": "cifar10-valid"}}
    candidate = run_tabular_trial({**base, "role": "candidate", "candidate_index": 5}, data_root=SHARED_DATA)
    again = run_tabular_trial({**base, "role": "candidate", "candidate_index": 5}, data_root=SHARED_DATA)
    assert candidate == again and candidate["nb201_index"] == 11472 and candidate["candidate_index"] == 5
    searched = run_tabular_trial({**base, "role": "searched"}, data_root=SHARED_DATA)
    assert searched["default"] == searched["test_acc"] == pytest.approx(90.68, abs=0.01)  # cifar10-valid test
    assert json.loads(searched["protocol"])["metric"] == "test" and searched["train_seconds"] > 0
    assert searched["arch_id"] == candidate["arch_id"] == arch_id("nb201", "{}", RESNET_CELL.to_text())
    with pytest.raises(ConfigError, match="space must be 'nb201'"):
        run_tabular_trial({**base, "space": "darts"}, data_root=SHARED_DATA)
    with pytest.raises(ConfigError, match="unknown tabular settings"):
        run_tabular_trial({**base, "tabular": {"datset": "cifar100"}}, data_root=SHARED_DATA)


def test_a_tabular_trial_does_not_import_torch() -> None:
    """A table lookup is the cheapest trial there is: torch (seconds per process) would be most of it."""
    import subprocess
    import sys

    from tests.conftest import REPO

    params = {"role": "random", "space": "nb201", "method": "evolution", "dataset": "cifar10", "arch_index": 0,
              "genotype": RESNET_CELL.to_text(), "tabular": {"dataset": "cifar10"}}
    code = ("import sys; from nni_nas_bench.trial import main; "
            f"code = main(['--data-root', {str(SHARED_DATA)!r}, '--params', {json.dumps(params)!r}]); "
            "print('torch' in sys.modules); sys.exit(code)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    assert '"nb201_index": 11472' in out.stdout and out.stdout.strip().endswith("False"), out.stdout


def test_benchmark_tuner_puts_tabular_into_final_trials_only() -> None:
    from nni_nas_bench.tuners import BenchmarkTuner

    tuner = BenchmarkTuner("darts", "cifar10", num_searches=1, num_random=1, space="nb201",
                           search={"layers": 3}, protocol={"preset": "base", "layers": 5},
                           tabular={"dataset": "cifar10"})
    first, second = tuner.generate_parameters(0), tuner.generate_parameters(1)
    assert first["role"] == "search" and "tabular" not in first
    assert second["role"] == "random" and second["tabular"] == {"dataset": "cifar10"}
    assert second["genotype"].startswith("|") and second["space"] == "nb201"
    with pytest.raises(ConfigError, match="tabular must be a mapping"):
        BenchmarkTuner("darts", "cifar10", space="nb201", tabular="cifar10")


def test_workers_pin_blas_and_openmp_to_one_thread() -> None:
    """The process pool's initializer limits every threadpool (threadpoolctl) of a worker to one thread."""
    from threadpoolctl import threadpool_info

    from nni_nas_bench.tabular import runner
    from nni_nas_bench.workers import pin_threads, unpin_threads

    assert runner.pin_threads is pin_threads  # the tabular pool's initializer (as benchmarks/zero_cost.py's)
    pin_threads()
    try:
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    finally:
        unpin_threads()


def test_parsed_tables_are_cached_keyed_by_their_csv_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tabular trial is a new process per lookup: the parsed table comes from an .npz cache (identical arrays),
    a changed CSV is parsed again, a damaged cache file is replaced, an unwritable cache folder costs a parse."""
    import os
    import shutil

    from nni_nas_bench.tabular import table as tables

    folder = tmp_path / "nas-bench-201"
    folder.mkdir()
    for name in (tables.DATASETS["cifar100"][0], tables.SEED_FILE):
        shutil.copy(TABLES / name, folder / name)
    monkeypatch.setenv("NNB_CACHE_DIR", str(tmp_path / "cache"))
    parses = []
    parse = tables._parse_csv
    monkeypatch.setattr(tables, "_parse_csv", lambda *a: parses.append(a) or parse(*a))

    first = tables._load_csv(folder, "cifar100")
    cached = tables._load_csv(folder, "cifar100")
    assert len(parses) == 1 and len(list((tmp_path / "cache" / "nb201").glob("*.npz"))) == 1
    for name in (*tables._NPZ_FIELDS, "code_to_index"):
        a, b = getattr(first, name), getattr(cached, name)
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), name
    assert cached.arch_str.dtype == object and cached.index_of(RESNET_CELL) == first.index_of(RESNET_CELL)

    stat = (folder / tables.SEED_FILE).stat()
    os.utime(folder / tables.SEED_FILE, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a changed file
    tables._load_csv(folder, "cifar100")
    assert len(parses) == 2
    for npz in (tmp_path / "cache" / "nb201").glob("*.npz"):
        npz.write_bytes(b"damaged")
    assert tables._load_csv(folder, "cifar100").index_of(RESNET_CELL) == first.index_of(RESNET_CELL)
    assert len(parses) == 3
    monkeypatch.setenv("NNB_CACHE_DIR", str(folder / tables.SEED_FILE / "not-a-folder"))
    assert tables._load_csv(folder, "cifar100").index_of(RESNET_CELL) == first.index_of(RESNET_CELL)


def test_worker_processes_give_the_same_runs_and_a_progress_bar(capsys: pytest.CaptureFixture) -> None:
    """Two worker processes (finishing in any order) give the table one process gives, run for run; the bar
    counts runs as they finish."""
    from nni_nas_bench.tabular.runner import run_tabular

    kwargs = {"runs": 8, "budget": 30, "num_random": 10, "root": SHARED_DATA, "n_boot": 0}
    one = run_tabular(["random_search", "reinforce"], ["cifar10-valid"], workers=1, progress=False, **kwargs)
    assert capsys.readouterr().err == ""
    two = run_tabular(["random_search", "reinforce"], ["cifar10-valid"], workers=2, progress=True, **kwargs)
    err = capsys.readouterr().err
    assert "tabular: 100%" in err and "16/16" in err, err[-300:]
    pd.testing.assert_frame_equal(one.runs.drop(columns="wall_seconds"), two.runs.drop(columns="wall_seconds"))
    pd.testing.assert_frame_equal(one.curves, two.curves)
