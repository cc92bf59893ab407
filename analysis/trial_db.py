"""Read NNI trial databases (``<experiment>/db/nni.sqlite``) into one tidy DataFrame.

The SQLite file is read directly: NNI's own read APIs need a running manager and inherit NNI 3.0's
bug where, with several concurrent trials, the parameters recorded for a trial belong to another one
(upstream #5726). Here every row's identity (role, method, genotype, seeds, protocol) comes from the
trial's own FINAL metric dict, which the trial writes itself; the parameters the manager recorded are
kept beside it, joined on ``MetricData.parameterId`` (what the trial really ran), and a
``params_mismatch`` column says where the manager's record disagreed.

Schema (one row per trial, failed and unfinished trials included and flagged by ``status``):

===================  ==========================================================================
experiment_id        NNI experiment id
trial_id             NNI trial job id
status               last trial event: SUCCEEDED, FAILED, RUNNING, WAITING, USER_CANCELED, ...
parameter_id         the parameter id the trial reported its metrics under
role, method         'random' / 'searched' / 'search'; the NAS method ('random' for the baseline)
dataset, space       dataset name; space name (``space_args`` JSON beside it)
genotype             the architecture in DARTS notation
arch_index           index of a random architecture within its experiment
arch_seed            sampling seed of random architectures
train_seed           training seed
protocol_name        name of the training protocol; ``protocol`` holds every setting (dict)
final_acc            evaluation accuracy of the last epoch (NNI's ``default``), percent
best_acc, best_epoch best epoch's accuracy and its 1-based index
curve                list of per-epoch accuracies (intermediate results in order)
params_m, mflops     test-time parameters (millions) and multiply-adds (millions)
train_seconds        training wall time; device: where it trained
code_version         package version + git commit of the code that trained it
start_time, end_time trial start / end (pandas timestamps, UTC)
recorded_parameters  the parameters NNI recorded for the trial (may be another trial's, see above)
params_mismatch      True when recorded_parameters disagree with the trial's own identity
===================  ==========================================================================
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from nni_nas_bench.errors import NasBenchError

COLUMNS = [
    "experiment_id", "trial_id", "status", "parameter_id", "role", "method", "dataset", "space", "space_args",
    "genotype", "arch_index", "arch_seed", "train_seed", "protocol_name", "protocol", "final_acc", "best_acc",
    "best_epoch", "curve", "params_m", "mflops", "train_seconds", "device", "code_version", "start_time",
    "end_time", "recorded_parameters", "params_mismatch",
]
_IDENTITY = ("role", "method", "dataset", "space", "genotype", "arch_index", "arch_seed")


class TrialDBError(NasBenchError):
    """A trial DB that is missing, not an NNI database, or unreadable."""


def default_experiments_dir() -> Path:
    """NNI's default experiment folder (``~/nni-experiments``), or ``$NNI_EXPERIMENTS_DIR``."""
    return Path(os.environ.get("NNI_EXPERIMENTS_DIR", Path.home() / "nni-experiments"))


def find_db(source: str | Path, experiments_dir: str | Path | None = None) -> Path:
    """The ``nni.sqlite`` of an experiment folder, a DB path, or an experiment id."""
    path = Path(source).expanduser()
    candidates = [path, path / "db" / "nni.sqlite"]
    if not path.exists() and os.sep not in str(source):
        candidates.append(Path(experiments_dir or default_experiments_dir()) / str(source) / "db" / "nni.sqlite")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise TrialDBError(
        f"no NNI trial database for {str(source)!r}; looked at: {', '.join(str(c) for c in candidates)}. "
        "Pass an experiment folder (holding db/nni.sqlite), the nni.sqlite file, or an experiment id."
    )


def _loads_twice(text: str) -> Any:
    """NNI stores metric data JSON-encoded twice."""
    value = json.loads(text)
    return json.loads(value) if isinstance(value, str) else value


def _query(db: Path, sql: str) -> list[tuple]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.DatabaseError as exc:
        raise TrialDBError(
            f"{db} is not a readable NNI trial database ({exc}); copy the whole experiment folder again "
            "from the machine that ran it"
        ) from None


def read_experiment(source: str | Path, experiments_dir: str | Path | None = None) -> pd.DataFrame:
    """One experiment's trials as a DataFrame with :data:`COLUMNS` (see the module docstring)."""
    db = find_db(source, experiments_dir)
    profiles = _query(db, "SELECT id, revision FROM ExperimentProfile ORDER BY revision DESC LIMIT 1")
    experiment_id = profiles[0][0] if profiles else db.parent.parent.name
    events = _query(db, "SELECT timestamp, trialJobId, event, data FROM TrialJobEvent ORDER BY timestamp, rowid")
    metrics = _query(db, "SELECT trialJobId, parameterId, type, sequence, data FROM MetricData "
                         "ORDER BY timestamp, rowid")
    trials: dict[str, dict[str, Any]] = {}
    for timestamp, trial_id, event, data in events:
        row = trials.setdefault(trial_id, {"trial_id": trial_id, "curve": [], "start_time": None, "end_time": None})
        row["status"] = event
        if data and "recorded_parameters" not in row:
            try:
                row["recorded_parameters"] = json.loads(data).get("parameters")
            except (json.JSONDecodeError, AttributeError):
                row["recorded_parameters"] = None
        if event == "RUNNING" and row["start_time"] is None:
            row["start_time"] = pd.to_datetime(timestamp, unit="ms", utc=True)
        if event in ("SUCCEEDED", "FAILED", "USER_CANCELED", "SYS_CANCELED", "EARLY_STOPPED"):
            row["end_time"] = pd.to_datetime(timestamp, unit="ms", utc=True)
    for trial_id, parameter_id, kind, _sequence, data in metrics:
        row = trials.setdefault(trial_id, {"trial_id": trial_id, "curve": [], "status": "UNKNOWN"})
        row["parameter_id"] = parameter_id
        try:
            value = _loads_twice(data)
        except json.JSONDecodeError:
            raise TrialDBError(f"{db}: trial {trial_id} has an undecodable metric {data[:80]!r}") from None
        if kind == "PERIODICAL":
            row["curve"].append(value["default"] if isinstance(value, dict) else value)
        elif kind == "FINAL":
            row["final"] = value if isinstance(value, dict) else {"default": value}
    rows = [_tidy(experiment_id, row) for row in trials.values()]
    return pd.DataFrame(rows, columns=COLUMNS)


def _tidy(experiment_id: str, row: dict[str, Any]) -> dict[str, Any]:
    final = row.get("final", {})
    recorded = row.get("recorded_parameters") or {}
    identity = {k: final.get(k, recorded.get(k)) for k in _IDENTITY}
    protocol = final.get("protocol", recorded.get("protocol"))
    if isinstance(protocol, str):
        protocol = json.loads(protocol)
    mismatch = bool(final) and any(
        k in recorded and k in final and str(recorded[k]) != str(final[k]) for k in ("genotype", "arch_index", "role")
    )
    return {
        "experiment_id": experiment_id,
        "trial_id": row["trial_id"],
        "status": row.get("status", "UNKNOWN"),
        "parameter_id": row.get("parameter_id"),
        **identity,
        "space_args": final.get("space_args", json.dumps(recorded.get("space_args", {}), sort_keys=True)),
        "train_seed": final.get("train_seed", (protocol or {}).get("seed")),
        "protocol_name": final.get("protocol_name", (protocol or {}).get("name")),
        "protocol": protocol,
        "final_acc": final.get("default"),
        "best_acc": final.get("best_acc"),
        "best_epoch": final.get("best_epoch"),
        "curve": row["curve"],
        "params_m": final.get("params"),
        "mflops": final.get("flops"),
        "train_seconds": final.get("train_seconds"),
        "device": final.get("device"),
        "code_version": final.get("code_version"),
        "start_time": row.get("start_time"),
        "end_time": row.get("end_time"),
        "recorded_parameters": recorded or None,
        "params_mismatch": mismatch,
    }


def read_experiments(sources: Iterable[str | Path], experiments_dir: str | Path | None = None) -> pd.DataFrame:
    """Several experiments in one DataFrame (same columns)."""
    frames = [read_experiment(s, experiments_dir) for s in sources]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
