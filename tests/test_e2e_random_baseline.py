"""End to end: `nnictl create` runs the random baseline with the local training service, and the
experiment's nni.sqlite holds every trial's architecture, curve and final metrics."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from analysis import read_experiment
from search_spaces import create_space
from tests.conftest import RANDOM_BASELINE_TINY as TINY

# One pytest-xdist worker runs every test of the session's random-baseline experiments (tests/conftest.py).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("random_baseline_experiments")]


def test_nnictl_random_baseline_end_to_end(random_baseline_experiments: dict[str, Path]) -> None:
    """The session's random-baseline experiment (tests/conftest.py): 3 architectures of seed 5, 2 at a time."""
    experiment = random_baseline_experiments["ok"]

    # The raw DB first: every trial SUCCEEDED, with FINAL metrics and one PERIODICAL row per epoch.
    db = experiment / "db" / "nni.sqlite"
    with sqlite3.connect(db) as conn:
        finals = conn.execute("SELECT trialJobId, data FROM MetricData WHERE type = 'FINAL'").fetchall()
        periodical = conn.execute("SELECT COUNT(*) FROM MetricData WHERE type = 'PERIODICAL'").fetchone()[0]
    assert len(finals) == 3 and periodical == 3 * TINY["epochs"]

    # Then the reader: the genotypes are the tuner's seeded samples, whatever NNI recorded.
    df = read_experiment(experiment)
    assert list(df.status) == ["SUCCEEDED"] * 3, df[["trial_id", "status"]]
    space = create_space("darts")
    from nni_nas_bench.tuners.random_baseline import architecture_seed

    expected = {i: space.sample(architecture_seed(5, i)).to_text() for i in range(3)}
    assert {int(r.arch_index): r.genotype for r in df.itertuples()} == expected
    for row in df.itertuples():
        space.parse(row.genotype)
        assert 0 <= row.final_acc <= 100 and len(row.curve) == TINY["epochs"] and row.curve[-1] == row.final_acc
        assert row.role == "random" and row.train_seed == 1 and row.protocol["channels"] == 4
        assert row.params_m > 0 and row.mflops > 0 and row.code_version
        final = json.loads(json.loads(dict(finals)[row.trial_id]))
        assert final["genotype"] == row.genotype
