"""What a serving tuner needs to survive ``nnictl resume``: its journal, and what NNI's trial DB says.

The journal is the tuner's own record, one JSON line per event that changed its state, in order: a trial
it handed out (with its parameters, or ``null`` when nothing was ready), a FINAL metric it took, a failed
trial end it counted, a failure count it read from NNI's DB, trials it found lost and served again, slots
it added to maxTrialNumber for NNI's duplicate re-runs. The
tuner's decisions are deterministic functions of these events (strategies are seeded), so replaying
them in order into a fresh tuner rebuilds exactly the state of the stopped one, strategy internals
included, without each strategy having to serialize itself. Each line is written before the tuner hands
its trial to NNI and is flushed to disk first (write-ahead): NNI never runs a trial the journal lacks.
Appending one line keeps every write O(1) over experiments of thousands of trials (rewriting a whole
state file per event would be O(n) each); a line torn by a crash mid-write is the last one and is
dropped on load (nothing was handed out for it).

NNI's trial DB (``<experiment>/db/nni.sqlite``, the checkpoint folder's sibling) is read, never written,
for what NNI 3.0 does not tell a resumed tuner (``nni/runtime/msg_dispatcher.py``: the ends of trials of
the previous run are dropped before they reach the tuner): how many trials ended without a FINAL metric,
and which parameters the manager ever submitted (a trial the tuner handed out in the seconds before the
stop may never have been submitted; the manager keeps waiting trials in memory only).
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nni_nas_bench.contract import read_parameters, trial_key
from nni_nas_bench.errors import ConfigError
from nni_nas_bench.tuners.ledger import Event, from_json, to_json

_VERSION = 1
_ENDED = ("SUCCEEDED", "FAILED", "USER_CANCELED", "SYS_CANCELED", "EARLY_STOPPED")
_NOT_STATUS = ("USER_TO_CANCEL", "ADD_RESUMED")
__all__ = ["Journal", "TrialRecord", "read_trial_record", "reported_key", "trial_key"]


def reported_key(recorded: Any, metrics: Any) -> str | None:
    """The trial key of a trial that reported ``metrics``: a trial names itself in its metrics (every
    identity field its parameters have, and no other), so they decide whenever they carry a role; the
    manager's record of its parameters (``recorded``) may be another trial's (#5726), so it is only the
    fallback (a bare number reported)."""
    if isinstance(metrics, dict) and isinstance(metrics.get("role"), str):
        return trial_key(metrics)
    return trial_key(recorded)


class Journal:
    """The tuner's event log in NNI's tuner checkpoint folder (see the module docstring)."""

    def __init__(self, directory: str | Path, tuner: str):
        self.path = Path(directory) / f"{tuner}.journal.jsonl"
        self.tuner = tuner

    def load(self) -> list[Event] | None:
        """The events in order; None when there is no journal. A damaged journal is a ConfigError."""
        if not self.path.is_file():
            return None
        lines = self.path.read_bytes().split(b"\n")
        try:
            header = json.loads(lines[0])
        except ValueError:
            header = None
        if header != {"journal": self.tuner, "version": _VERSION}:
            raise self.damaged(f"its first line is not a {self.tuner} journal header")
        # Complete lines end with a newline; what follows the last one is a line torn by a crash mid-write,
        # for which nothing was handed out (write-ahead): dropped.
        events = []
        for number, line in enumerate(lines[1:-1], start=2):
            try:
                line = json.loads(line)
            except ValueError:
                raise self.damaged(f"line {number} is not JSON") from None
            try:
                events.append(from_json(line))
            except ValueError:
                raise self.damaged(f"line {number} is not an event of this journal") from None
        return events

    def start(self) -> None:
        """A fresh journal (a new experiment): the header only, written atomically."""
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"journal": self.tuner, "version": _VERSION}) + "\n")
        os.replace(tmp, self.path)

    def append(self, event: Event) -> None:
        """One event, on disk before the caller goes on (it may hand a trial to NNI next)."""
        line = (json.dumps(to_json(event), separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def damaged(self, why: str) -> ConfigError:
        return ConfigError(
            f"{self.tuner} cannot resume: its journal {self.path} is damaged ({why}), so it cannot know which "
            "trials it handed out. Restore the file from a backup, or start a new experiment with other "
            "search_seed/arch_seed values (re-submit the stopped experiment's interrupted trials by hand: web UI "
            "'Customized trial'; they continue from their checkpoints)")


@dataclass
class TrialRecord:
    """What NNI's trial DB says about an experiment (see the module docstring)."""

    trials: int           # trial jobs the manager submitted
    rerun: set[str]       # trial keys of the parameters NNI re-runs after this resume
    failed: int           # trials that ended without a FINAL metric
    jobs: dict[str, str]  # trial key -> trial job id, of the trials that reported a FINAL metric
    experiment: Path
    silent: dict[str, dict[str, Any]] = field(default_factory=dict)  # job -> recorded parameters, no FINAL
    finals: dict[str, Any] = field(default_factory=dict)  # trial key -> its FINAL metric, as the tuner gets it

    def ended(self) -> set[str]:
        """Trial keys of the trials that ended: what each really ran, as far as known (reads trial logs)."""
        keys = {trial_key(read_parameters(self.experiment, job) or recorded) for job, recorded in self.silent.items()}
        return (keys | set(self.jobs)) - {None}


def read_trial_record(db: Path) -> TrialRecord | None:
    """Read ``db`` (NNI's nni.sqlite) read-only; None when it is missing or unreadable (a resume then relies
    on the journal alone: see the README's failures section).

    NNI re-runs the trials whose status was WAITING or RUNNING at the stop, with the parameters it recorded
    for them (which, with several trials at once, may be another trial's: #5726), and marks each with an
    ``ADD_RESUMED`` event, all in one batch before the tuner starts. A re-run may even have ended by the time
    the tuner reads, so both say which keys NNI re-runs: the latest batch of ``ADD_RESUMED`` events, and the
    trials still waiting or running.
    """
    if not db.is_file():
        return None
    try:
        with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as conn:
            events = conn.execute("SELECT trialJobId, event, data FROM TrialJobEvent ORDER BY rowid").fetchall()
            finals = conn.execute("SELECT trialJobId, data FROM MetricData WHERE type = 'FINAL'").fetchall()
    except sqlite3.Error:
        return None
    recorded: dict[str, dict[str, Any]] = {}
    status: dict[str, str] = {}
    resumed: list[str] = []  # the latest batch of ADD_RESUMED events
    previous = None
    for job, event, data in events:
        if event == "ADD_RESUMED":
            resumed = (resumed if previous == "ADD_RESUMED" else []) + [job]
        previous = event
        if not job or event in _NOT_STATUS:
            continue  # experiment-level events name no trial
        status[job] = event
        if data and job not in recorded:
            recorded[job] = _decoded(data).get("parameters") or {}
    rerun = {trial_key(recorded.get(job)) for job in resumed}
    rerun |= {trial_key(recorded.get(job)) for job, event in status.items() if event in ("WAITING", "RUNNING")}
    jobs, values = {}, {}
    for job, data in finals:
        value = _metric(data)
        key = reported_key(recorded.get(job), value)
        if key is not None:
            jobs[key], values[key] = job, value
    reported = {job for job, _ in finals}
    silent = {job: recorded.get(job, {}) for job, event in status.items() if event in _ENDED and job not in reported}
    return TrialRecord(len(recorded), rerun - {None}, len(silent), jobs, db.parent.parent, silent, values)


def _metric(text: str) -> Any:
    """A FINAL metric of the DB as the dispatcher hands it to the tuner (encoded twice there); None if unreadable."""
    try:
        value = json.loads(text)
        return json.loads(value) if isinstance(value, str) else value
    except (ValueError, TypeError):
        return None


def _decoded(text: str) -> dict[str, Any]:
    """A JSON object of the DB (a trial event's data); {} when it is not one."""
    try:
        value = json.loads(text)
    except (ValueError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}
