"""End to end: `nnictl create` runs a tabular NB201 experiment (MultiTrialTuner + table lookups), and the
analysis reads its nni.sqlite like any trained experiment: candidates, the searched pick, random cells, RI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from analysis import read_experiment
from analysis.stats import ri_table
from tests.conftest import REPO, SHARED_DATA
from tests.support import TINY_MULTI_TRIAL_SEARCH

TABLES = SHARED_DATA / "nas-bench-201"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not TABLES.is_dir(), reason=f"NAS-Bench-201 tables not found at {TABLES}")]


def test_nnictl_tabular_experiment_reaches_the_analysis(nnictl_runner, tmp_path: Path) -> None:
    """The README's CPU first run (experiments/nb201/first_run.yml, budget cut to 4 lookups) through nnictl,
    the reader and `nas-bench report`, as a newcomer runs it."""
    import subprocess

    import yaml

    from nni_nas_bench.tabular import load_table

    config = yaml.safe_load((REPO / "experiments" / "nb201" / "first_run.yml").read_text())
    args = config["tuner"]["classArgs"]
    args.update(num_searches=1, num_random=2, search={"budget": 4, "population": 2, "sample_size": 2})
    config.update(
        experimentName="test-tabular-evolution",
        trialCommand=f"OMP_NUM_THREADS=1 {sys.executable} -m nni_nas_bench.trial --data-root {SHARED_DATA}",
        trialCodeDirectory=str(REPO), trialConcurrency=2, maxTrialNumber=4 + 1 + 2,
    )
    config["tuner"]["codeDirectory"] = str(REPO)
    experiment = nnictl_runner(config, tmp_path, timeout=300)

    df = read_experiment(experiment)
    assert list(df.status) == ["SUCCEEDED"] * 7, df[["trial_id", "status", "role", "error"]]
    assert sorted(df.role) == ["candidate"] * 4 + ["random"] * 2 + ["searched"]
    table = load_table("cifar10-valid", SHARED_DATA)
    candidates = df[df.role == "candidate"]
    for row in candidates.itertuples():  # a seed draw of the validation accuracy, charged its training time
        index = table.index_of(row.genotype)
        allowed = table.valid[index] + table.seed_dev[index, : table.seed_count[index]]
        assert min(abs(allowed - row.final_acc)) < 1e-6 and row.train_seconds == table.seconds[index]
    searched = df[df.role == "searched"].iloc[0]
    assert searched.genotype in set(candidates.genotype)
    assert searched.final_acc == pytest.approx(table.test[table.index_of(searched.genotype)])
    for row in df[df.role == "random"].itertuples():
        assert row.final_acc == pytest.approx(table.test[table.index_of(row.genotype)])
    ri = ri_table(df, n_boot=0)
    assert list(ri.method) == ["evolution"] and ri.random_n.iloc[0] == 2 and ri.searched_n.iloc[0] == 1

    out = tmp_path / "report"
    run = subprocess.run([sys.executable, "-m", "nni_nas_bench.cli", "report", str(experiment), "--out", str(out),
                          "--bootstrap", "200"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert run.returncode == 0, run.stderr
    rows = (out / "ri_table.csv").read_text().splitlines()
    assert len(rows) == 2 and ",evolution," in rows[1], rows
    assert "evolution" in (out / "report.md").read_text()


TINY_SEARCH = TINY_MULTI_TRIAL_SEARCH  # tests/support.py: 4 candidates each


def test_every_multi_trial_method_runs_under_nnictl(nnictl_runner, tmp_path: Path) -> None:
    """Each method's own NB201 YAML, shrunk, as a real experiment; the five table-lookup ones run side by side (separate
    managers and ports), since each spends most of its time waiting on NNI, not computing."""
    from concurrent.futures import ThreadPoolExecutor

    import yaml

    from nni_nas_bench.strategies import get_strategy_class, list_strategies

    # NNI's own implementations kept as references (nni_tpe) take the same MultiTrialTuner path as the
    # suite's method they are measured against (tpe), which runs here.
    multi_trial = {n for n in list_strategies() if getattr(get_strategy_class(n), "kind", "") == "multi_trial"
                   and not get_strategy_class(n).nni_reference}
    assert multi_trial == set(TINY_SEARCH) | {"evolution"}, "a multi-trial method without an nnictl test"

    def run(method: str) -> Path:
        config = yaml.safe_load((REPO / "experiments" / "nb201" / f"{method}.yml").read_text())
        # No random cells: those trials are the same for every method (the first-run test above has two).
        config["tuner"]["classArgs"].update(num_searches=1, num_random=0, search=TINY_SEARCH[method])
        config.update(
            experimentName=f"test-tabular-{method}",
            trialCommand=f"OMP_NUM_THREADS=1 {sys.executable} -m nni_nas_bench.trial --data-root {SHARED_DATA}",
            trialCodeDirectory=str(REPO), trialConcurrency=2, maxTrialNumber=4 + 1,
        )
        config["tuner"]["codeDirectory"] = str(REPO)
        workdir = tmp_path / method
        workdir.mkdir()
        return nnictl_runner(config, workdir, timeout=400)

    # The table-lookup methods side by side; zero_cost after them, alone: its candidate trials build and score
    # networks (torch), and beside five experiments a tuner process then missed NNI's 10 s connect window.
    looked_up = [m for m in TINY_SEARCH if m != "zero_cost"]
    with ThreadPoolExecutor(len(looked_up)) as pool:
        experiments = dict(zip(looked_up, pool.map(run, looked_up)))
    experiments["zero_cost"] = run("zero_cost")
    for method, experiment in experiments.items():
        df = read_experiment(experiment)
        assert list(df.status) == ["SUCCEEDED"] * 5, (method, df[["trial_id", "status", "role", "error"]])
        assert sorted(df.role) == ["candidate"] * 4 + ["searched"], method
        assert set(df[df.role != "random"].method) == {method}
        searched = df[df.role == "searched"].iloc[0]
        assert searched.genotype in set(df[df.role == "candidate"].genotype), method
    # zero_cost's candidates were scored, not looked up: the pick is the best NASWOT score, then looked up.
    from nni_nas_bench.tabular import load_table

    df = read_experiment(experiments["zero_cost"])
    candidates, searched = df[df.role == "candidate"], df[df.role == "searched"].iloc[0]
    table = load_table("cifar10-valid", SHARED_DATA)
    looked_up = [c.final_acc == pytest.approx(table.valid[table.index_of(c.genotype)]) for c in candidates.itertuples()]
    assert not any(looked_up)
    assert searched.genotype == candidates.loc[candidates.final_acc.idxmax(), "genotype"]
    assert searched.final_acc == pytest.approx(table.test[table.index_of(searched.genotype)])
