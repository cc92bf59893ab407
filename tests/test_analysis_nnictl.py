"""The analysis on REAL trial databases: two tiny `nnictl create` experiments of the random baseline, one
whose protocol makes the loss NaN so its trial exits with code 3 and NNI records it FAILED. The reader, the
`nas-bench report` command and the notebook all run on what NNI itself wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis import find_dbs, read_experiment, read_experiments
from search_spaces import create_space
from tests.conftest import REPO

# One pytest-xdist worker runs every test of the session's random-baseline experiments (tests/conftest.py).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("random_baseline_experiments")]


@pytest.fixture(scope="module")
def experiments(random_baseline_experiments: dict[str, Path]) -> dict[str, Path]:
    """{'ok': 3 trials that succeed, 'failed': 1 trial that fails} (tests/conftest.py, shared with other tests)."""
    return random_baseline_experiments


def test_reader_on_real_nni_databases(experiments: dict[str, Path]) -> None:
    ok, failed = experiments["ok"], experiments["failed"]
    df = read_experiments([ok.parent, failed / "db" / "nni.sqlite"])  # a folder of experiments, and a DB path
    assert len(df) == 4 and df.experiment_id.nunique() == 2
    good = df[df.experiment_id == ok.name]
    assert list(good.status) == ["SUCCEEDED"] * 3 and good.complete.all() and not good.failed.any()
    space = create_space("darts")
    for row in good.itertuples():
        space.parse(row.genotype)
        assert row.role == "random" and row.method == "random" and row.dataset == "cifar10"
        assert len(row.curve) == 2 and row.curve[-1] == row.final_acc and row.best_acc == max(row.curve)
        assert (row.layers, row.channels, row.train_seed, row.protocol_name) == (3, 4, 1, "quick")
        assert row.params_m > 0 and row.mflops > 0 and row.train_seconds > 0 and row.code_version
        assert row.start_time < row.end_time and row.experiment_name == "random-baseline-ok"
    assert sorted(good.arch_index) == [0, 1, 2]

    bad = df[df.experiment_id == failed.name].iloc[0]
    assert bad.status == "FAILED" and bad.failed and not bad.complete
    assert bad.curve == [] and pd.isna(bad.final_acc) and pd.isna(bad.train_seconds)
    assert bad.arch_index == 0 and bad.protocol["lr"] == 1.0e30  # from what the manager recorded
    assert "training loss became nan" in bad.error

    # The same experiments by id under the experiments folder, and the `_latest` link is not read twice.
    assert list(read_experiment(ok.name, ok.parent).trial_id) == list(good.trial_id)
    assert [p.parent.parent.name for p in find_dbs(ok.parent)] == [ok.name]


def test_report_command_on_real_databases(experiments: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report"
    run = subprocess.run([sys.executable, "-m", "nni_nas_bench.cli", "report", str(experiments["ok"]),
                          str(experiments["failed"]), "--out", str(out), "--bootstrap", "200"],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert run.returncode == 0, run.stderr
    listed = [Path(line) for line in run.stdout.splitlines()]
    assert listed, run.stdout
    for path in listed:
        assert path.is_file() and path.stat().st_size > 0, path
    names = {p.relative_to(out).as_posix() for p in listed}
    assert {"report.md", "report.html", "random_baseline.csv", "random_baseline.tex", "trials.csv",
            "figures/distributions.png", "figures/distributions.pdf"} <= names
    assert "ri_table.csv" not in names  # no searched trials: no RI table, said plainly instead
    md = (out / "report.md").read_text()
    assert "RI needs searched trials" in md
    failed_trial = read_experiment(experiments["failed"]).trial_id.iloc[0]
    assert f"| {experiments['failed'].name} | {failed_trial} | FAILED |" in md
    assert "1 trial(s) did not complete (1 failed)" in md
    for experiment in experiments.values():
        assert f"| {experiment.name} |" in md
    assert "training seeds: 1" in md and "| quick |" in md
    assert "`searched_vs_random`: needs searched trials" in md
    baseline = (out / "random_baseline.csv").read_text().splitlines()
    assert len(baseline) == 2 and ",3," in baseline[1]  # one dataset, n = 3 complete trials


def test_notebook_runs_on_real_databases(experiments: dict[str, Path], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("NNB_EXPERIMENTS", os.pathsep.join(str(p) for p in experiments.values()))
    monkeypatch.setenv("NNB_FIGURES_OUT", str(tmp_path / "figures"))
    notebook = nbformat.read(REPO / "analysis" / "notebooks" / "reproduce_figures.ipynb", as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "2 experiments, 4 trials, 3 complete, 1 failed" in text
    assert "skipped searched_vs_random: needs searched trials" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2
    assert (tmp_path / "figures" / "distributions.pdf").stat().st_size > 0
