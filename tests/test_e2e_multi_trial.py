"""End to end: `nnictl create` runs a multi-trial benchmark experiment (random search, tiny settings):
the search's candidates are trials of the experiment, its best candidate gets the final training, and a
random architecture is trained beside it, all in one nni.sqlite the analysis reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis import read_experiments
from analysis.stats import cost_table
from search_spaces import create_space
from tests.conftest import local_experiment, trial_command

pytestmark = pytest.mark.slow

TINY = {"preset": "quick", "epochs": 1, "channels": 4, "layers": 3, "batch_size": 50, "subset": 5,
        "eval_batch_size": 100, "seed": 1}


def test_nnictl_multi_trial_end_to_end(nnictl_runner, synthetic_root: Path, cache_dir: Path, tmp_path: Path) -> None:
    class_args = {"method": "random_search", "dataset": "cifar10", "num_searches": 1, "num_random": 1,
                  "search_seed": 0, "arch_seed": 5, "search": {"budget": 3}, "candidate_protocol": TINY,
                  "protocol": TINY}
    # 2 slots: the 3 candidates and the random trial take them; the searched trial is owed until the
    # last candidate reports, which is the waiting path of the tuner. 5 trials = 1 x (3 + 1) + 1.
    config = local_experiment("test-multi-trial", "MultiTrialTuner", class_args, workdir=tmp_path,
                              command=trial_command(synthetic_root, cache_dir, tmp_path / "checkpoints"),
                              concurrency=2, max_trials=5)
    experiment = nnictl_runner(config, tmp_path, timeout=600)

    df = read_experiments([experiment])
    assert list(df.status) == ["SUCCEEDED"] * 5, df[["trial_id", "status", "role"]]
    assert sorted(df.role) == ["candidate"] * 3 + ["random", "searched"]
    candidates = df[df.role == "candidate"].set_index("trial_id")
    assert sorted(candidates.candidate_index) == [0, 1, 2] and set(candidates.search_seed) == {0}
    assert (candidates.method == "random_search").all() and (candidates.train_seed == 0).all()  # seed = search's
    searched = df[df.role == "searched"].iloc[0]
    best = candidates.loc[searched.source_trial]  # the candidate trial it came from, by NNI trial id
    assert searched.genotype == best.genotype and best.final_acc == candidates.final_acc.max()
    assert searched.search_seed == 0 and searched.train_seed == 1 and searched.protocol["epochs"] == 1
    create_space("darts").parse(searched.genotype)
    assert df[df.role == "random"].iloc[0].arch_seed == 5
    cost = cost_table(df)
    assert cost.set_index("method").loc["random_search", "search_runs"] == 1
