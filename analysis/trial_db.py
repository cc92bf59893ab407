"""Read NNI trial databases (``<experiment>/db/nni.sqlite``) into one tidy DataFrame.

The SQLite file is read directly: NNI's own read APIs need a running manager and inherit NNI 3.0's
bug where, with several concurrent trials, the parameters recorded for a trial belong to another one
(upstream #5726). Here every row's identity (role, method, genotype, seeds, protocol) comes from the
trial's own FINAL metric dict, which the trial writes itself; the parameters the manager recorded are
kept beside it, joined on ``MetricData.parameterId`` (what the trial really ran), and a
``params_mismatch`` column says where the manager's record disagreed. A trial that never reported a
FINAL metric (failed, killed, still running) or whose FINAL metric is a bare number takes its identity
from the parameter line it printed; only an incomplete trial without one falls back to the manager's
record (``identity_from``), and a SUCCEEDED trial with neither is not counted as complete.

Sources (:func:`find_dbs`): an experiment folder (holding ``db/nni.sqlite``), the ``nni.sqlite`` file
itself, an experiment id (looked up under NNI's experiments folder), or a folder of experiment folders
(``~/nni-experiments`` or a copy of it taken from another machine).

Schema (one row per trial, failed and unfinished trials included and flagged by ``status``,
``complete`` and ``failed``):

===================  ==========================================================================
experiment_id        NNI experiment id
trial_id             NNI trial job id
status               last trial event: SUCCEEDED, FAILED, RUNNING, WAITING, USER_CANCELED, ...
parameter_id         the parameter id the trial reported its metrics under (else the one NNI recorded)
role, method         'random' / 'searched' / 'search' / 'candidate' (one evaluation of a multi-trial
                     search; statistics of found architectures use 'searched' and 'random' only); the
                     NAS method ('random' for the baseline)
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
experiment_name      ``experimentName`` of the experiment's config
db_path              the ``nni.sqlite`` the row was read from (provenance)
origin               'nni' for rows read here ('published' for imported CSV numbers)
search_seed          seed of the search run that found a searched architecture
source_trial         the search trial a searched architecture came from
search_seconds       wall time of a search (role 'search' trials that report it), else empty
epochs               epochs trained (the trial's own count, else the length of ``curve``)
layers, channels     cells and initial channels of the trained network (from ``protocol``)
op_set               the space's operation set (from ``space_args``: 'darts', 'poor', ...)
complete             SUCCEEDED with a FINAL metric: the rows statistics use
failed               FAILED / SYS_CANCELED, or ended without reporting a FINAL metric
error                for trials that did not complete: last line of the trial's stderr, when the
                     experiment folder holds it
study, variant       the ablation study a trial belongs to ('tricks', 'seeds', 'depth', ...) and its
                     variant within it ('seed1', 'cells8', ...); empty for the main experiments
latency_ms           predicted latency (ms) of the architecture, for spaces with a latency model
                     (Single-Path NAS's ``mobilenet_sp``: the space's per-layer table); else empty
candidate_index      which evaluation of its search a 'candidate' trial was (0, 1, ...); else empty
identity_from        where role, genotype and seeds come from: 'metrics' (the trial's FINAL dict),
                     'own_line' (the parameter line the trial printed), 'nni_record' (NNI's record: only
                     for a trial that did not complete; it may be another trial's) or empty (nothing
                     proves it: such a row is never complete)
===================  ==========================================================================
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from nni_nas_bench.contract import IDENTITY, read_parameters
from nni_nas_bench.errors import NasBenchError

COLUMNS = [
    "experiment_id", "trial_id", "status", "parameter_id", "role", "method", "dataset", "space", "space_args",
    "genotype", "arch_index", "arch_seed", "train_seed", "protocol_name", "protocol", "final_acc", "best_acc",
    "best_epoch", "curve", "params_m", "mflops", "train_seconds", "device", "code_version", "start_time",
    "end_time", "recorded_parameters", "params_mismatch",
]
# Appended after the original columns, so code indexing the original ones keeps working.
EXTRA_COLUMNS = [
    "experiment_name", "db_path", "origin", "search_seed", "source_trial", "search_seconds", "epochs", "layers",
    "channels", "op_set", "complete", "failed", "error", "study", "variant", "latency_ms",
    "candidate_index", "identity_from",
]
ALL_COLUMNS = COLUMNS + EXTRA_COLUMNS
_ENDED = ("SUCCEEDED", "FAILED", "USER_CANCELED", "SYS_CANCELED", "EARLY_STOPPED")
_FAILED = ("FAILED", "SYS_CANCELED")
# Events that are not a trial's status: a user's cancel request (its USER_CANCELED follows) and NNI's note
# that `nnictl resume` re-runs the trial.
_NOT_STATUS = ("USER_TO_CANCEL", "ADD_RESUMED")
# NNI 3.0 records a trial that died from a signal (SIGKILL by the OOM killer or a preempted node) as
# USER_CANCELED, the status of a real cancel; only a cancel asked for by the user leaves USER_TO_CANCEL.
_KILLED = "killed by a signal (NNI records it as USER_CANCELED, but no user cancelled it)"

_UNPROVEN = ("its FINAL metric carries no identity (not the suite's metric dict) and its own parameter line "
             "is missing: which architecture it trained cannot be proven (NNI's record may be another trial's, "
             "upstream #5726), so it is not counted")


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
    hint = ""
    if path.is_dir() and any(path.glob("*/db/nni.sqlite")):
        hint = " It holds several experiments: read them with read_experiments()."
    raise TrialDBError(
        f"no NNI trial database for {str(source)!r}; looked at: {', '.join(str(c) for c in candidates)}. "
        f"Pass an experiment folder (holding db/nni.sqlite), the nni.sqlite file, or an experiment id.{hint}"
    )


def find_dbs(source: str | Path, experiments_dir: str | Path | None = None) -> list[Path]:
    """Every ``nni.sqlite`` a source names: one for an experiment, all of them for a folder of experiments.

    A folder of experiments is what NNI writes (``~/nni-experiments/<id>/db/nni.sqlite``) and what a
    researcher copies back from a remote machine, so it is accepted as it is; the DBs come sorted by
    path so reports list experiments in a stable order.
    """
    path = Path(source).expanduser()
    if path.is_dir() and not (path / "db" / "nni.sqlite").is_file():
        # NNI keeps a `_latest` symlink to the newest experiment: skip links, read every folder once.
        found = sorted(p for p in path.glob("*/db/nni.sqlite") if p.is_file() and not p.parent.parent.is_symlink())
        if found:
            return found
    return [find_db(source, experiments_dir)]


def _loads_twice(text: str) -> Any:
    """NNI stores metric data JSON-encoded twice."""
    value = json.loads(text)
    return json.loads(value) if isinstance(value, str) else value


def _connect(db: Path) -> sqlite3.Connection:
    # Read-only URI: a report must never modify (or create) a DB, even of an experiment still running.
    return sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)


def _unreadable(db: Path, exc: sqlite3.DatabaseError) -> TrialDBError:
    """The one message for a DB file SQLite cannot read (damaged, truncated, not NNI's)."""
    return TrialDBError(f"{db} is not a readable NNI trial database ({exc}); copy the whole experiment folder "
                        "again from the machine that ran it")


def _carries_identity(final: dict[str, Any]) -> bool:
    """Whether a FINAL metric is the suite's dict, which repeats the trial's identity (role, genotype, seeds)."""
    return "role" in final


def _query(db: Path, sql: str, conn: sqlite3.Connection | None = None, args: tuple = ()) -> list[tuple]:
    try:
        if conn is not None:
            return conn.execute(sql, args).fetchall()
        with _connect(db) as own:
            return own.execute(sql, args).fetchall()
    except sqlite3.DatabaseError as exc:
        raise _unreadable(db, exc) from None


# Reading curves fast matters: a full benchmark is 10,000 trials x 600 epochs = 6 million PERIODICAL
# rows, and decoding each row's doubly encoded JSON in Python (or with SQLite's json_extract) takes
# tens of seconds. So SQLite concatenates each trial's rows (walking the trialJobId index, which avoids
# a sort) and one regular expression picks every "default" value out of the text NNI wrote. A trial whose
# rows do not all match that form (a plain number reported, nested dicts, damaged text) is decoded row by
# row in Python instead, which also names the trial when the text really is broken. Row order is checked
# against rowid (insertion order), not assumed from group_concat.
_CURVE_SQL = """
SELECT trialJobId, count(*), max(parameterId), group_concat(rowid, ' '), group_concat(data, char(30))
FROM MetricData {hint} WHERE type = 'PERIODICAL' {where} GROUP BY trialJobId
"""
_DEFAULT_RE = re.compile(r'\\"default\\":\s*([^,}\s]+)')
# Threads that read curves at once, each over its own range of trial ids with its own connection: SQLite
# runs without the GIL, so two threads halve a 10,000-trial read on two cores (more gain nothing there).
CURVE_THREADS = max(1, min(4, os.cpu_count() or 1))


def _slow_curve(db: Path, conn: sqlite3.Connection, trial_id: str) -> list[float]:
    rows = _query(db, "SELECT data FROM MetricData WHERE type = 'PERIODICAL' AND trialJobId = ? ORDER BY rowid",
                  conn, (trial_id,))
    curve = []
    for (data,) in rows:
        try:
            value = _loads_twice(data)
        except (json.JSONDecodeError, TypeError):
            raise TrialDBError(f"{db}: trial {trial_id} has an undecodable metric {str(data)[:80]!r}") from None
        value = value.get("default") if isinstance(value, dict) else value
        curve.append(float("nan") if value is None else float(value))
    return curve


def _curve_rows(db: Path, conn: sqlite3.Connection, where: str, args: tuple) -> Iterable[tuple]:
    """The grouped curve rows of the trials ``where`` selects, streamed (never all texts at once)."""
    try:
        return conn.execute(_CURVE_SQL.format(hint="INDEXED BY MetricData_trialJobId", where=where), args)
    except sqlite3.DatabaseError:
        # No such index (a DB not written by NNI) or a damaged file: the plain query works without the
        # index, or raises TrialDBError naming the file.
        return _query(db, _CURVE_SQL.format(hint="", where=where), conn, args)


def _curves_between(db: Path, low: str | None, high: str | None) -> Curves:
    """Curves of the trials with ``low <= trialJobId < high`` (None: unbounded), on a connection of its own,
    with the parameter id each reported under and why a trial's rows could not be read (its curve empty)."""
    where = "".join(clause for clause, bound in (("AND trialJobId >= ? ", low), ("AND trialJobId < ? ", high))
                    if bound is not None)
    args = tuple(bound for bound in (low, high) if bound is not None)
    curves, parameters, unreadable = {}, {}, {}
    conn = _connect(db)
    try:
        try:
            for trial_id, count, parameter_id, rowids, data in _curve_rows(db, conn, where, args):
                parameters[trial_id] = parameter_id
                values = _DEFAULT_RE.findall(data or "")
                try:
                    if len(values) != count:
                        raise ValueError
                    acc = np.array(values, dtype=float)
                except ValueError:
                    try:
                        curves[trial_id] = _slow_curve(db, conn, trial_id)
                    except TrialDBError as exc:  # this trial's rows are damaged: the others still count
                        curves[trial_id], unreadable[trial_id] = [], str(exc)
                    continue
                order = np.array(rowids.split(" "), dtype=np.int64)
                if np.any(np.diff(order) < 0):
                    acc = acc[np.argsort(order, kind="stable")]
                curves[trial_id] = acc.tolist()
        except sqlite3.DatabaseError as exc:  # damage found while streaming
            raise _unreadable(db, exc) from None
    finally:
        conn.close()
    return curves, parameters, unreadable


Curves = tuple[dict[str, list[float]], dict[str, Any], dict[str, str]]


def _curves(db: Path, conn: sqlite3.Connection) -> Curves:
    """Per-trial accuracy curves (in report order), the parameter id each trial reported under, and the
    trials whose metric rows are damaged (a message each; their curves are empty).

    Large DBs are read by :data:`CURVE_THREADS` threads, each over a contiguous range of trial ids.
    """
    threads = CURVE_THREADS
    if threads > 1:
        rows = _query(db, "SELECT max(rowid) FROM MetricData", conn)[0][0] or 0  # ~ the row count, at once
        threads = 1 if rows < 100_000 else threads  # a small DB: one query is faster than starting threads
    if threads == 1:
        return _curves_between(db, None, None)
    # Split points from the small TrialJobEvent table (0.03 s on 10,000 trials; the same over MetricData's
    # 6 million rows took 0.8 s). They only balance the threads: the first and last ranges are open, so every
    # metric row is read whatever trial ids the events list.
    ids = [row[0] for row in _query(db, "SELECT DISTINCT trialJobId FROM TrialJobEvent ORDER BY trialJobId", conn)]
    if len(ids) < threads:
        return _curves_between(db, None, None)
    bounds = [None, *(ids[len(ids) * k // threads] for k in range(1, threads)), None]
    from concurrent.futures import ThreadPoolExecutor

    curves: dict[str, list[float]] = {}
    parameters: dict[str, Any] = {}
    unreadable: dict[str, str] = {}
    with ThreadPoolExecutor(threads, thread_name_prefix="curves") as pool:
        for part in pool.map(_curves_between, [db] * threads, bounds[:-1], bounds[1:]):
            curves.update(part[0])
            parameters.update(part[1])
            unreadable.update(part[2])
    return curves, parameters, unreadable


def _last_stderr_line(experiment_dir: Path, trial_id: str) -> str | None:
    """Why a trial did not finish, from its stderr, when the experiment folder was copied whole.

    The trial entry point prints one clear line last (``nni-nas-bench: trial failed: ...``); for a crash
    the last line of a traceback is the exception. Only the file's tail is read.
    """
    patterns = (f"environments/*/trials/{trial_id}/trial.stderr", f"trials/{trial_id}/stderr")
    for pattern in patterns:
        for path in experiment_dir.glob(pattern):
            try:
                with path.open("rb") as fh:
                    fh.seek(max(0, path.stat().st_size - 8192))
                    lines = fh.read().decode("utf-8", "replace").splitlines()
            except OSError:
                continue
            lines = [line.strip() for line in lines if line.strip()]
            if lines:
                return lines[-1][:300]
    return None


def read_experiment(source: str | Path, experiments_dir: str | Path | None = None) -> pd.DataFrame:
    """One experiment's trials as a DataFrame with :data:`ALL_COLUMNS` (see the module docstring)."""
    return _read_db(find_db(source, experiments_dir))


def _read_db(db: Path) -> pd.DataFrame:
    try:
        conn = _connect(db)
    except sqlite3.Error as exc:
        raise TrialDBError(f"{db} cannot be opened as an NNI trial database ({exc})") from None
    try:
        profiles = _query(db, "SELECT id, params FROM ExperimentProfile ORDER BY revision DESC LIMIT 1", conn)
        events = _query(db, "SELECT timestamp, trialJobId, event, data FROM TrialJobEvent "
                            "ORDER BY timestamp, rowid", conn)
        finals = _query(db, "SELECT trialJobId, parameterId, data FROM MetricData WHERE type = 'FINAL' "
                            "ORDER BY timestamp, rowid", conn)
        curves, curve_parameter, unreadable = _curves(db, conn)
    finally:
        conn.close()
    experiment_id = profiles[0][0] if profiles else db.parent.parent.name
    try:
        experiment_name = json.loads(profiles[0][1]).get("experimentName") if profiles else None
    except (json.JSONDecodeError, TypeError, AttributeError):
        experiment_name = None

    trials: dict[str, dict[str, Any]] = {}

    def trial(trial_id: str) -> dict[str, Any]:
        return trials.setdefault(trial_id, {"trial_id": trial_id, "status": "UNKNOWN", "start_time": None,
                                            "end_time": None})

    for timestamp, trial_id, event, data in events:
        if not trial_id:
            continue  # experiment-level events (ADD_CUSTOMIZED, IMPORT_DATA) name no trial
        row = trial(trial_id)
        if event in _NOT_STATUS:
            row["user_cancel"] = row.get("user_cancel") or event == "USER_TO_CANCEL"
            continue
        row["status"] = event
        if data and "recorded_parameters" not in row:
            try:
                recorded = json.loads(data)
                row["recorded_parameters"] = recorded.get("parameters")
                # What the manager recorded; a trial's own metrics override it below.
                if recorded.get("parameter_id") is not None:
                    row["parameter_id"] = str(recorded["parameter_id"])  # MetricData stores it as text
            except (json.JSONDecodeError, AttributeError):
                row["recorded_parameters"] = None
        # Epoch milliseconds here; converted to timestamps once per column below (per-row conversion
        # is the slowest step of a 10,000-trial read).
        if event == "RUNNING" and row["start_time"] is None:
            row["start_time"] = timestamp
        if event in _ENDED:
            row["end_time"] = timestamp
    for trial_id, parameter_id in curve_parameter.items():
        trial(trial_id)["parameter_id"] = parameter_id
    for trial_id, parameter_id, data in finals:
        row = trial(trial_id)
        row["parameter_id"] = parameter_id
        try:
            value = _loads_twice(data)
        except (json.JSONDecodeError, TypeError):  # this trial only: the report keeps the others
            unreadable[trial_id] = f"{db}: trial {trial_id} has an undecodable metric {str(data)[:80]!r}"
            row.pop("final", None)
            continue
        row["final"] = value if isinstance(value, dict) else {"default": value}
    experiment_dir = db.parent.parent
    for row in trials.values():
        if not _carries_identity(row.get("final", {})):  # no FINAL metric, or a bare number
            row["own_parameters"] = read_parameters(experiment_dir, row["trial_id"])
    rows = []
    db_path = str(db.resolve())
    for row in trials.values():
        row["curve"] = curves.get(row["trial_id"], [])
        tidy = _tidy(experiment_id, row)
        tidy.update(experiment_name=experiment_name, db_path=db_path)
        if row["trial_id"] in unreadable:  # damaged metric rows: listed with the reason, never counted
            tidy.update(complete=False, failed=True,
                        error=f"unreadable metrics ({unreadable[row['trial_id']]}); the trial is not counted")
        elif not tidy["complete"]:
            tidy["error"] = _last_stderr_line(experiment_dir, row["trial_id"])
            if tidy["status"] == "USER_CANCELED" and not row.get("user_cancel"):
                tidy["error"] = _KILLED + (f"; last output: {tidy['error']}" if tidy["error"] else "")
            elif tidy["status"] == "SUCCEEDED" and tidy["identity_from"] is None:
                tidy["error"] = _UNPROVEN
        rows.append(tidy)
    frame = pd.DataFrame(rows, columns=ALL_COLUMNS)
    for column in ("start_time", "end_time"):
        frame[column] = pd.to_datetime(pd.to_numeric(frame[column]), unit="ms", utc=True)
    return frame


def _tidy(experiment_id: str, row: dict[str, Any]) -> dict[str, Any]:
    final = row.get("final", {})
    own = row.get("own_parameters") or {}
    nni_record = row.get("recorded_parameters") or {}
    # Who the trial is, from what the trial itself wrote: its metrics (the suite's repeat the identity),
    # else the parameter line it printed (trial.stdout). NNI's record may be another trial's (#5726): it
    # names only a trial that did not complete, flagged by identity_from, and never a completed one.
    if _carries_identity(final):
        identity_from = "metrics"
    elif own:
        identity_from = "own_line"
    elif not final or row.get("status") != "SUCCEEDED":
        identity_from = "nni_record" if nni_record else None
    else:
        identity_from = None  # a bare final number and no parameter line: nothing proves who it is
    recorded = own if identity_from == "own_line" else nni_record if identity_from == "nni_record" else {}
    identity = {k: final.get(k, recorded.get(k)) for k in (*IDENTITY, "genotype")}
    protocol = final.get("protocol", recorded.get("protocol"))
    if isinstance(protocol, str):
        protocol = json.loads(protocol)
    space_args = final.get("space_args", json.dumps(recorded.get("space_args", {}), sort_keys=True))
    try:
        op_set = json.loads(space_args).get("op_set") if isinstance(space_args, str) else None
    except (json.JSONDecodeError, AttributeError):
        op_set = None
    mismatch = bool(final) and any(
        k in nni_record and k in final and str(nni_record[k]) != str(final[k])
        for k in ("genotype", "arch_index", "role")
    )
    status = row.get("status", "UNKNOWN")
    complete = status == "SUCCEEDED" and final.get("default") is not None and identity_from in ("metrics", "own_line")
    return {
        "experiment_id": experiment_id,
        "trial_id": row["trial_id"],
        "status": status,
        "parameter_id": row.get("parameter_id"),
        **identity,
        "space_args": space_args,
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
        "recorded_parameters": nni_record or None,
        "params_mismatch": mismatch,
        "origin": "nni",
        "search_seconds": final.get("search_seconds"),
        "epochs": final.get("epochs", len(row["curve"])),
        "layers": (protocol or {}).get("layers"),
        "channels": (protocol or {}).get("channels"),
        "op_set": op_set,
        "complete": complete,
        "failed": status in _FAILED or (status == "SUCCEEDED" and not complete)
        or (status == "USER_CANCELED" and not row.get("user_cancel")),
        "error": None,
        "latency_ms": final.get("latency_ms"),
        "identity_from": identity_from,
    }


class _Progress:
    """A one-line progress report on stderr for reads that take long enough to need one.

    Nothing is printed for reads that finish within ``delay`` seconds, so tests and small reports stay
    quiet; on a terminal the line is redrawn in place, in a log file one line per update.
    """

    def __init__(self, total: int, enabled: bool | None, delay: float = 1.0,
                 write: Callable[[str], Any] | None = None):
        self.total, self.enabled, self.delay = total, enabled, delay
        self.start = self.last = time.perf_counter()
        self.write = write or sys.stderr.write
        self.tty = write is None and sys.stderr.isatty()
        self.shown = False

    def update(self, done: int, trials: int, name: str) -> None:
        now = time.perf_counter()
        if self.enabled is False or (self.enabled is None and now - self.start < self.delay):
            return
        if done < self.total and self.shown and now - self.last < 0.5:
            return
        self.last, self.shown = now, True
        line = f"reading NNI trial DBs: {done}/{self.total} experiments, {trials} trials ({name})"
        self.write(f"\r{line}\x1b[K" if self.tty else f"{line}\n")
        if done == self.total and self.tty:
            self.write("\n")


def read_experiments(sources: Iterable[str | Path] | str | Path, experiments_dir: str | Path | None = None, *,
                     progress: bool | None = None) -> pd.DataFrame:
    """Several experiments in one DataFrame (same columns as :func:`read_experiment`).

    Each source is an experiment folder, a DB path, an experiment id or a folder of experiments (see
    :func:`find_dbs`); a DB named twice is read once. ``progress``: None shows a progress line on
    stderr only when the read takes over a second, True always, False never.
    """
    if isinstance(sources, (str, Path)):
        sources = [sources]
    dbs: list[Path] = []
    seen: set[Path] = set()
    for source in sources:
        for db in find_dbs(source, experiments_dir):
            if db.resolve() not in seen:
                seen.add(db.resolve())
                dbs.append(db)
    bar = _Progress(len(dbs), progress)
    frames, trials = [], 0
    for i, db in enumerate(dbs, 1):
        frame = _read_db(db)
        frames.append(frame)
        trials += len(frame)
        bar.update(i, trials, db.parent.parent.name)
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ALL_COLUMNS)
