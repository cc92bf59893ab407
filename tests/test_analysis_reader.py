"""The trial-DB reader on NNI-format files (written the way NNI 3.0 writes them), its errors on broken
files, source resolution, and the published-CSV importer/exporter. Real nnictl DBs: test_analysis_nnictl.py."""

from __future__ import annotations

import io
import json
import math
import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import TrialDBError, find_dbs, read_experiment, read_experiments
from analysis.published import read_published_csv, to_published_table, write_published_csv
from analysis.stats import ri_table
from analysis.synthetic import FakeTrial, make_large_db, write_trial_db
from analysis.trial_db import ALL_COLUMNS, COLUMNS, _Progress
from nni_nas_bench.errors import ConfigError

PROTOCOL = {"name": "quick", "epochs": 3, "seed": 1, "layers": 5, "channels": 8}


def _params(i: int, **over: object) -> dict:
    return {"role": "random", "method": "random", "dataset": "cifar10", "space": "darts", "space_args": {},
            "arch_index": i, "arch_seed": 5, "genotype": f"g{i}", "protocol": PROTOCOL, **over}


def _final(i: int, curve: list[float], **over: object) -> dict:
    params = _params(i)
    return {"default": curve[-1], "best_acc": max(curve), "best_epoch": int(np.argmax(curve)) + 1,
            "epochs": len(curve), "params": 1.5, "flops": 100.0, "train_seconds": 30.0, "device": "cpu",
            "code_version": "test", "role": "random", "method": "random", "dataset": "cifar10", "space": "darts",
            "arch_index": i, "arch_seed": 5, "genotype": params["genotype"], "train_seed": 1, "protocol_name": "quick",
            "protocol": json.dumps(PROTOCOL), "space_args": json.dumps({"n_nodes": 4, "op_set": "darts"}), **over}


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    """Four trials: succeeded, failed (with a stderr), still running, succeeded under another's parameters."""
    trials = [
        FakeTrial("AAAAA", _params(0), _final(0, [10.0, 30.0, 25.0]), [10.0, 30.0, 25.0], parameter_id=0),
        FakeTrial("BBBBB", _params(1), None, [], status="FAILED", parameter_id=1),
        FakeTrial("CCCCC", _params(2), None, [12.0], status="RUNNING", parameter_id=2),
        # NNI 3.0 bug #5726: the manager recorded architecture 0's parameters for the trial that ran 3.
        FakeTrial("DDDDD", _params(0), _final(3, [11.0, 21.0, 31.0], study="seeds", variant="seed1"),
                  [11.0, 21.0, 31.0], parameter_id=3),
    ]
    folder = tmp_path / "nni-experiments" / "exp00001"
    write_trial_db(folder, trials, experiment_id="exp00001", experiment_name="unit")
    stderr = folder / "environments" / "local-env" / "trials" / "BBBBB" / "trial.stderr"
    stderr.parent.mkdir(parents=True)
    stderr.write_text("Traceback ...\n\nnni-nas-bench: trial failed: training loss became nan in epoch 0\n\n")
    return folder


def test_reader_keeps_and_flags_every_trial(experiment: Path) -> None:
    raw = read_experiment(experiment)
    assert list(raw.columns) == ALL_COLUMNS and ALL_COLUMNS[:len(COLUMNS)] == COLUMNS
    df = raw.set_index("trial_id")
    assert df["status"].to_dict() == {"AAAAA": "SUCCEEDED", "BBBBB": "FAILED", "CCCCC": "RUNNING",
                                      "DDDDD": "SUCCEEDED"}
    assert df["complete"].to_dict() == {"AAAAA": True, "BBBBB": False, "CCCCC": False, "DDDDD": True}
    assert df["failed"].to_dict() == {"AAAAA": False, "BBBBB": True, "CCCCC": False, "DDDDD": False}
    a = df.loc["AAAAA"]
    assert a.curve == [10.0, 30.0, 25.0] and a.final_acc == 25.0 and a.best_acc == 30.0 and a.best_epoch == 2
    assert (a.layers, a.channels, a.op_set, a.epochs, a.origin) == (5, 8, "darts", 3, "nni")
    assert a.experiment_id == "exp00001" and a.experiment_name == "unit"
    assert Path(a.db_path) == (experiment / "db" / "nni.sqlite").resolve()
    assert a.start_time < a.end_time and str(a.start_time.tz) == "UTC"
    # The failed trial: identity from what the manager recorded, reason from its stderr, nothing invented.
    b = df.loc["BBBBB"]
    assert b.arch_index == 1 and b.genotype == "g1" and b.curve == [] and pd.isna(b.final_acc)
    assert b.error == "nni-nas-bench: trial failed: training loss became nan in epoch 0"
    assert b.parameter_id == "1"
    c = df.loc["CCCCC"]
    assert c.curve == [12.0] and c.epochs == 1 and pd.isna(c.end_time) and pd.isna(c.error)
    # The mis-recorded trial: its own metrics win, and the disagreement is flagged.
    d = df.loc["DDDDD"]
    assert d.arch_index == 3 and d.genotype == "g3" and d.params_mismatch
    assert d.recorded_parameters["genotype"] == "g0"
    assert (d.study, d.variant) == ("seeds", "seed1") and pd.isna(a.study)
    assert not df.loc["AAAAA"].params_mismatch


def test_reader_decodes_unusual_metric_rows(tmp_path: Path) -> None:
    db = write_trial_db(tmp_path / "e", [FakeTrial("AAAAA", _params(0), _final(0, [1.0]), []),
                                         FakeTrial("BBBBB", _params(1), _final(1, [1.0]), [])])
    with sqlite3.connect(db) as conn:
        rows = [
            ("AAAAA", json.dumps(json.dumps({"default": 40.0, "epoch": 1}))),
            ("BBBBB", json.dumps(json.dumps(12.5))),                     # a plain number reported
            ("AAAAA", json.dumps(json.dumps({"epoch": 2, "default": 41.5}))),  # key order differs
            ("BBBBB", json.dumps(json.dumps({"default": float("nan")}))),  # NaN: not strict JSON
            ("AAAAA", json.dumps(json.dumps({"default": 1e-3, "x": {"y": 1}}))),
        ]
        conn.executemany("INSERT INTO MetricData VALUES (0, ?, '0', 'PERIODICAL', 0, ?)", rows)
    df = read_experiment(db).set_index("trial_id")
    assert df.loc["AAAAA", "curve"] == [40.0, 41.5, 1e-3]  # interleaved rows, each trial in its own order
    first, second = df.loc["BBBBB", "curve"]
    assert first == 12.5 and math.isnan(second)
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO MetricData VALUES (0, 'BBBBB', '0', 'PERIODICAL', 0, '\"{broken')")
    # Damaged rows cost only their trial (issue 17 item 10): it is listed with the reason, the rest counts.
    df = read_experiment(db).set_index("trial_id")
    assert df.loc["AAAAA", "complete"] and df.loc["AAAAA", "curve"] == [40.0, 41.5, 1e-3]
    broken = df.loc["BBBBB"]
    assert not broken.complete and broken.failed and "trial BBBBB has an undecodable metric" in broken.error


@pytest.mark.parametrize("damage", ["garbage", "truncated", "not_nni", "empty"])
def test_corrupt_db_names_the_file(tmp_path: Path, damage: str) -> None:
    db = tmp_path / "exp" / "db" / "nni.sqlite"
    if damage == "garbage":
        db.parent.mkdir(parents=True)
        db.write_bytes(os.urandom(4096))
    elif damage == "truncated":
        trials = [FakeTrial(f"T{i:04d}", _params(i), _final(i, [float(i)] * 50), [float(i)] * 50) for i in range(40)]
        write_trial_db(db, trials)
        data = db.read_bytes()
        db.write_bytes(data[: len(data) // 3])
    elif damage == "not_nni":
        db.parent.mkdir(parents=True)
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE other (x)")
    else:
        db.parent.mkdir(parents=True)
        db.write_bytes(b"")
    with pytest.raises(TrialDBError) as info:
        read_experiment(tmp_path / "exp")
    assert str(db) in str(info.value) and "NNI trial database" in str(info.value)


def test_missing_db_and_sources(tmp_path: Path, experiment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TrialDBError, match=r"no NNI trial database for 'nope'.*experiment id"):
        read_experiment("nope", tmp_path)
    experiments_dir = experiment.parent
    # A second experiment, and NNI's `_latest` symlink that must not make one experiment count twice.
    write_trial_db(experiments_dir / "exp00002", [FakeTrial("EEEEE", _params(9), _final(9, [5.0]), [5.0])],
                   experiment_id="exp00002")
    (experiments_dir / "_latest").symlink_to(experiments_dir / "exp00002")
    assert [p.parent.parent.name for p in find_dbs(experiments_dir)] == ["exp00001", "exp00002"]
    with pytest.raises(TrialDBError, match="holds several experiments: read them with read_experiments"):
        read_experiment(experiments_dir)
    by_id = read_experiments(["exp00002"], experiments_dir)
    assert list(by_id.trial_id) == ["EEEEE"]
    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(experiments_dir))
    everything = read_experiments([experiments_dir, "exp00001", experiment / "db" / "nni.sqlite"])
    assert sorted(everything.trial_id) == ["AAAAA", "BBBBB", "CCCCC", "DDDDD", "EEEEE"]  # each DB read once
    assert read_experiments([]).columns.tolist() == ALL_COLUMNS


def test_progress_line_only_for_long_reads() -> None:
    lines: list[str] = []
    quiet = _Progress(2, None, delay=60, write=lines.append)
    quiet.update(1, 10, "a")
    quiet.update(2, 20, "b")
    assert lines == []
    shown = _Progress(2, True, write=lines.append)
    shown.update(1, 10, "a")
    shown.update(2, 20, "b")
    assert lines[-1] == "reading NNI trial DBs: 2/2 experiments, 20 trials (b)\n"
    _Progress(1, False, write=lines.append).update(1, 1, "c")
    assert len(lines) == 2


def test_reader_at_scale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 1,000 trials x 600 epochs (a tenth of the benchmark): every curve exact, read by two threads
    # over trial-id ranges, then by one: the same frame. How fast: benchmarks/report_scale.py (never timed here).
    from analysis import trial_db

    db = make_large_db(tmp_path / "large", trials=1000, epochs=600)
    monkeypatch.setattr(trial_db, "CURVE_THREADS", 2)
    df = read_experiment(db)
    assert len(df) == 1000 and set(df.curve.map(len)) == {600}
    assert all(c[-1] == f for c, f in zip(df.curve, df.final_acc))
    monkeypatch.setattr(trial_db, "CURVE_THREADS", 1)
    pd.testing.assert_frame_equal(read_experiment(db), df)
    # The threads split the trials at ids taken from TrialJobEvent: metric rows of trials the events do not
    # list (a damaged or hand-edited DB) are still read, by the open first and last ranges.
    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM TrialJobEvent WHERE trialJobId IN (SELECT DISTINCT trialJobId FROM TrialJobEvent "
                    "ORDER BY trialJobId LIMIT 400 OFFSET 300)")  # 400 trials in the middle: another split point
    monkeypatch.setattr(trial_db, "CURVE_THREADS", 2)
    assert len(trial_db._query(db, "SELECT DISTINCT trialJobId FROM TrialJobEvent")) == 600
    con = trial_db._connect(db)
    try:
        curves = trial_db._curves(db, con)[0]
    finally:
        con.close()
    assert len(curves) == 1000 and curves == dict(zip(df.trial_id, df.curve))


# ------------------------------------------------------------------------------------- published CSV
PUBLISHED = """Random DARTS,DARTS,Random MANAS,MANAS-LS,Random NAO,NAO
96.5,97.25,96.0,97.0,95.5,96.0
97.0,97.5,96.5,97.5,,96.5
96.75,97.0,96.25,97.25,,
"""


def test_published_csv_import() -> None:
    df = read_published_csv(io.StringIO(PUBLISHED), "CIFAR10", name="toy.csv")
    assert set(df.dataset) == {"cifar10"} and set(df.origin) == {"published"} and df.complete.all()
    darts = df[df.method == "DARTS"]
    assert sorted(darts.role) == ["random"] * 3 + ["searched"] * 3
    # "Random MANAS" is the baseline of the column after it, "MANAS-LS".
    assert set(df[df.csv_column == "Random MANAS"].method) == {"MANAS-LS"}
    assert len(df[df.csv_column == "Random NAO"]) == 1 and len(df[df.csv_column == "NAO"]) == 2  # blanks skipped
    table = ri_table(df, n_boot=200).set_index("method")
    assert table.loc["DARTS", "ri"] == pytest.approx(100 * (97.25 - 96.75) / 96.75)
    assert table.loc["MANAS-LS", "random_mean"] == 96.25


def test_published_csv_round_trip(tmp_path: Path) -> None:
    df = read_published_csv(io.StringIO(PUBLISHED), "CIFAR10")
    path = tmp_path / "out.csv"
    text = write_published_csv(df, path)
    assert path.read_text() == text
    assert text.splitlines()[0] == PUBLISHED.splitlines()[0]
    pd.testing.assert_frame_equal(pd.read_csv(path), pd.read_csv(io.StringIO(PUBLISHED)))
    again = read_published_csv(path, "CIFAR10")
    columns = ["role", "method", "dataset", "final_acc", "run", "csv_column"]
    pd.testing.assert_frame_equal(again[columns], df[columns])


def test_published_export_of_nni_rows(experiment: Path) -> None:
    df = read_experiment(experiment)
    table = to_published_table(df)
    assert list(table.columns) == ["Random darts"] and table["Random darts"].tolist() == [25.0, 31.0]
    searched = df[df.complete].assign(role="searched", method="DARTS", trial_id=lambda d: d.trial_id + "s")
    both = pd.concat([df, searched], ignore_index=True)
    table = to_published_table(both)
    assert list(table.columns) == ["Random DARTS", "DARTS"]
    assert read_published_csv(io.StringIO(write_published_csv(both)), "cifar10").final_acc.tolist() == \
        [25.0, 31.0, 25.0, 31.0]


def test_published_csv_errors() -> None:
    with pytest.raises(ConfigError, match=r"column 'DARTS': not a number: '97\.1%'"):
        read_published_csv(io.StringIO("Random DARTS,DARTS\n96.0,97.1%\n"), "cifar10")
    with pytest.raises(ConfigError, match="cannot read published results"):
        read_published_csv(io.StringIO(""), "cifar10")
    two = pd.concat([read_published_csv(io.StringIO(PUBLISHED), d) for d in ("cifar10", "sport8")])
    with pytest.raises(ConfigError, match="holds one dataset"):
        to_published_table(two)


def test_a_bare_number_final_never_borrows_nni_record(tmp_path: Path) -> None:
    """Issue 17 item 9: a FINAL that is a bare number carries no identity, and NNI's record may be another
    trial's (#5726). The row keeps only what the trial itself printed, and without that it is not counted."""
    from analysis.synthetic import FakeTrial, write_trial_db
    from nni_nas_bench.contract import parameters_line

    theirs = {"role": "random", "method": "random", "dataset": "cifar10", "space": "darts", "arch_index": 7,
              "arch_seed": 0, "genotype": "someone-else's", "protocol": {"name": "darts", "seed": 0}}
    own = {**theirs, "arch_index": 1, "genotype": "mine"}
    db = write_trial_db(tmp_path / "exp", [FakeTrial("A", theirs, 93.5, [90.0, 93.5]),   # type: ignore[arg-type]
                                           FakeTrial("B", theirs, 94.0, [91.0, 94.0])])  # type: ignore[arg-type]
    log = tmp_path / "exp" / "environments" / "local-env" / "trials" / "B" / "trial.log"
    log.parent.mkdir(parents=True)
    log.write_text(parameters_line(own) + "\n")
    df = read_experiment(db).set_index("trial_id")
    a, b = df.loc["A"], df.loc["B"]
    assert pd.isna(a.genotype) and pd.isna(a.arch_index) and pd.isna(a.identity_from)
    assert not a.complete and a.failed and "cannot be proven" in a.error and a.final_acc == 93.5
    assert b.genotype == "mine" and b.arch_index == 1 and b.identity_from == "own_line" and b.complete
    assert a.recorded_parameters["genotype"] == "someone-else's"  # NNI's record is kept, for inspection only


def test_report_keeps_the_good_trials_when_some_metric_rows_are_corrupt(tmp_path: Path) -> None:
    """Issue 17 item 10: 5 corrupt rows of 38 made `nas-bench report` refuse everything."""
    from analysis.report import report_command

    trials = [FakeTrial(f"T{i:04d}", _params(i), _final(i, [50.0 + i, 60.0 + i]), [50.0 + i, 60.0 + i], parameter_id=i)
              for i in range(38)]
    db = write_trial_db(tmp_path / "e", trials)
    with sqlite3.connect(db) as conn:
        for i in range(5):
            conn.execute("UPDATE MetricData SET data = '\"{broken' WHERE trialJobId = ? AND type = 'FINAL'",
                         (f"T{i:04d}",))
    report_command([str(tmp_path / "e")], tmp_path / "report", n_boot=100, progress=False)
    text = (tmp_path / "report" / "report.md").read_text()
    assert "38 trials, 33 complete, 5 failed" in text
    assert text.count("undecodable metric") == 5
