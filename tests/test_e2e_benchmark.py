"""End to end: `nnictl create` runs a benchmark experiment (DARTS, tiny settings) with the local training
service: search trials, then the final training of each found genotype, and random architectures, all in
one experiment whose nni.sqlite records which search every searched architecture came from."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from analysis import read_experiment
from nni_nas_bench.strategies.darts import RESULT_FILE
from nni_nas_bench.tuners.random_baseline import RandomBaselineTuner
from search_spaces import create_space
from tests.conftest import local_experiment, trial_command

pytestmark = pytest.mark.slow

SEARCH = {"order": 2, "epochs": 1, "channels": 4, "layers": 3, "batch_size": 20, "subset": 4, "eval_batch_size": 100}
TINY = {"preset": "quick", "epochs": 1, "channels": 4, "layers": 3, "batch_size": 50, "subset": 5,
        "eval_batch_size": 100, "seed": 1}


def test_nnictl_benchmark_end_to_end(nnictl_runner, synthetic_root: Path, cache_dir: Path, tmp_path: Path) -> None:
    class_args = {"method": "darts", "dataset": "cifar10", "num_searches": 2, "num_random": 1, "search_seed": 0,
                  "arch_seed": 5, "search": SEARCH, "protocol": TINY}
    # 4 slots for 3 trials that can start (2 searches, 1 random): the tuner has to hold the fourth request until
    # a search reports (NNI shows TUNER_NO_MORE_TRIAL meanwhile), which is the waiting path this test proves.
    config = local_experiment("test-benchmark-darts", "BenchmarkTuner", class_args, workdir=tmp_path,
                              command=trial_command(synthetic_root, cache_dir, tmp_path / "checkpoints"),
                              concurrency=4, max_trials=5)
    experiment = nnictl_runner(config, tmp_path, timeout=600)

    manager_log = (experiment / "log" / "nnimanager.log").read_text()
    assert "to: TUNER_NO_MORE_TRIAL" in manager_log and "Experiment done." in manager_log
    df = read_experiment(experiment)
    assert list(df.status) == ["SUCCEEDED"] * 5, df[["trial_id", "status", "role"]]
    assert sorted(df.role) == ["random", "search", "search", "searched", "searched"]
    space = create_space("darts")
    search = df[df.role == "search"].set_index("trial_id")
    assert sorted(search.search_seed) == [0, 1]
    assert (search.search_seconds > 0).all() and (search.method == "darts").all()
    for row in df[df.role == "searched"].itertuples():
        source = search.loc[row.source_trial]  # the search trial it came from, by NNI trial id
        assert row.genotype == source.genotype and row.search_seed == source.search_seed
        assert row.method == "darts" and row.protocol["epochs"] == 1 and row.train_seed == 1
        space.parse(row.genotype)

    baseline = RandomBaselineTuner(dataset="cifar10", num_archs=1, seed=5, protocol=TINY)
    randoms = df[df.role == "random"]
    assert {int(r.arch_index): r.genotype for r in randoms.itertuples()} == {
        k: baseline.trial_parameters(k)["genotype"] for k in range(1)}
    assert (randoms.protocol.map(json.dumps) == df[df.role == "searched"].protocol.map(json.dumps).iloc[0]).all()

    # The raw DB agrees: the genotype each search reported in its own FINAL metric is what was trained.
    with sqlite3.connect(experiment / "db" / "nni.sqlite") as conn:
        finals = {trial: json.loads(json.loads(data)) for trial, data in
                  conn.execute("SELECT trialJobId, data FROM MetricData WHERE type = 'FINAL'")}
    for row in df[df.role == "searched"].itertuples():
        assert finals[row.source_trial]["genotype"] == finals[row.trial_id]["genotype"]
    # Every search saved its α history in its NNI output folder.
    histories = [json.loads(p.read_text()) for p in experiment.rglob(RESULT_FILE)]
    assert sorted(h["settings"]["seed"] for h in histories) == [0, 1]
    assert {h["genotype"] for h in histories} == set(search.genotype)  # the result (after DARTS's skip cap)
