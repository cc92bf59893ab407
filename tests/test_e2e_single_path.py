"""End to end: `nnictl create` runs a Single-Path NAS benchmark experiment (tiny settings): a superkernel
search, the final training of what it found and a random architecture of the same space, every trial
reporting its predicted latency, and the report's accuracy-vs-latency section built from the real DB."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis import read_experiment
from analysis.report import write_report
from nni_nas_bench.strategies.single_path import RESULT_FILE
from search_spaces import create_space
from tests.conftest import local_experiment, trial_command

pytestmark = pytest.mark.slow

SEARCH = {"epochs": 1, "channels": 8, "batch_size": 20, "subset": 4, "eval_batch_size": 100}
TINY = {"preset": "single_path", "epochs": 1, "channels": 8, "batch_size": 50, "subset": 3, "eval_batch_size": 100,
        "seed": 1}


def test_nnictl_single_path_end_to_end(nnictl_runner, synthetic_root: Path, cache_dir: Path, tmp_path: Path) -> None:
    table = tmp_path / "table.json"
    table.write_text(json.dumps({str(i): {str(c): 1 + i / 10 + c for c in range(4)} for i in range(22)}))
    space_args = {"latency_table": str(table)}
    class_args = {"method": "single_path", "dataset": "cifar10", "num_searches": 1, "num_random": 1,
                  "search_seed": 0, "arch_seed": 2, "space": "mobilenet_sp", "space_args": space_args,
                  "search": SEARCH, "protocol": TINY}
    config = local_experiment("test-benchmark-single-path", "BenchmarkTuner", class_args, workdir=tmp_path,
                              command=trial_command(synthetic_root, cache_dir, tmp_path / "checkpoints"))
    experiment = nnictl_runner(config, tmp_path, timeout=600)
    df = read_experiment(experiment)
    assert list(df.status) == ["SUCCEEDED"] * 3, df[["trial_id", "status", "role"]]
    assert sorted(df.role) == ["random", "search", "searched"]
    space = create_space("mobilenet_sp", **space_args)
    for row in df.itertuples():
        assert row.latency_ms == pytest.approx(space.latency_ms(space.parse(row.genotype)))
    search, searched = df[df.role == "search"].iloc[0], df[df.role == "searched"].iloc[0]
    assert searched.genotype == search.genotype and searched.source_trial == search.trial_id
    (history,) = [json.loads(p.read_text()) for p in experiment.rglob(RESULT_FILE)]
    assert history["epochs"][-1]["genotype"] == search.genotype
    write_report(df, tmp_path / "report", n_boot=100, formats=("png",))
    assert "Accuracy vs predicted latency" in (tmp_path / "report" / "report.md").read_text()
