"""The state of a serving tuner as a ledger of typed events: what it handed out, what came back, what failed.

Pure bookkeeping, apart from NNI: no request protocol, no files, no database. The NNI adapter
(:class:`~nni_nas_bench.tuners.serving.ServingTuner`) turns NNI's callbacks into events, writes each one
to its journal (:mod:`nni_nas_bench.tuners.journal`) and applies it here; ``nnictl resume`` replays the
journal's events into a fresh ledger. Because the method's own decisions (the next trial, what a result
teaches it) are seeded functions of these events, the replay rebuilds the stopped tuner exactly, and a
replayed ``Take`` is checked against the trial it recorded.

Trials are numbered in the order the tuner handed them out (NNI's parameter ids are not stable across a
resume). A failed trial is counted, never identified (NNI 3.0's record of which trial ended may be
another trial's, upstream #5726): once every handed-out trial either reported or is counted as failed,
the trials that never reported are the failed ones (``on_silent``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

from nni_nas_bench.contract import trial_key


@dataclass(frozen=True)
class Take:
    """A trial handed out (its parameters), or None: the method had nothing ready."""

    params: dict[str, Any] | None


@dataclass(frozen=True)
class Result:
    """Trial ``number`` reported FINAL ``value`` (``job``: its NNI trial job id, when known)."""

    number: int
    value: Any
    job: str | None = None


@dataclass(frozen=True)
class Fail:
    """A trial ended without success (which one is not known)."""


@dataclass(frozen=True)
class Floor:
    """NNI's trial DB shows ``failed`` trials that ended without a FINAL metric: at least that many failed."""

    failed: int


@dataclass(frozen=True)
class Lost:
    """Handed-out trials NNI will not run (after a resume): to be handed out again, once each."""

    numbers: tuple[int, ...]


@dataclass(frozen=True)
class Again:
    """Lost trial ``number`` handed out again."""

    number: int


@dataclass(frozen=True)
class Resume:
    """A run boundary (``nnictl resume``), after ``served`` trials: for the reader of the journal."""

    served: int


@dataclass(frozen=True)
class Wasted:
    """``slots`` were added to maxTrialNumber for NNI's duplicate re-runs (read when the tuner is built)."""

    slots: int


Event = Union[Take, Result, Fail, Floor, Lost, Again, Resume, Wasted]


def to_json(event: Event) -> dict[str, Any]:
    """The journal line of ``event`` (the format of journal version 1)."""
    if isinstance(event, Take):
        return {"take": event.params}
    if isinstance(event, Result):
        return {"result": event.number, "value": event.value, "job": event.job}
    if isinstance(event, Fail):
        return {"fail": 1}
    if isinstance(event, Floor):
        return {"floor": event.failed}
    if isinstance(event, Lost):
        return {"lost": list(event.numbers)}
    if isinstance(event, Again):
        return {"again": event.number}
    if isinstance(event, Resume):
        return {"resume": event.served}
    if isinstance(event, Wasted):
        return {"wasted": event.slots}
    raise TypeError(f"not a ledger event: {event!r}")


def from_json(line: Any) -> Event:
    """The event of a journal line; ValueError when it is none (the journal is then damaged)."""
    if not isinstance(line, dict) or len(line) == 0:
        raise ValueError(f"not an event: {line!r}")
    try:
        if "take" in line:
            return Take(line["take"])
        if "result" in line:
            return Result(_count(line["result"]), line.get("value"), line.get("job"))
        if "fail" in line:
            return Fail()
        if "floor" in line:
            return Floor(_count(line["floor"]))
        if "lost" in line:
            return Lost(tuple(_count(n) for n in line["lost"]))
        if "again" in line:
            return Again(_count(line["again"]))
        if "resume" in line:
            return Resume(_count(line["resume"]))
        if "wasted" in line:
            return Wasted(_count(line["wasted"]))
    except TypeError:
        pass
    raise ValueError(f"not an event: {line!r}")


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(value)
    return value


def normalized(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists): what a replayed trial is compared to."""
    return json.loads(json.dumps(value))


class ReplayMismatch(Exception):
    """A replayed ``Take`` gave other parameters than the journal recorded."""


class Ledger:
    """Trials handed out, reported, failed and lost; the method's hooks are called as events make them due.

    ``next_trial(number)``: the parameters of trial ``number``, or None when nothing is ready;
    ``on_result(number, params, value, job)``: a FINAL metric; ``on_silent({number: params})``: the trials
    that never reported once every trial is accounted for (they failed; called again at later accountings
    with the same trials, so the method handles each once).
    """

    def __init__(self, next_trial: Callable[[int], dict[str, Any] | None],
                 on_result: Callable[[int, dict[str, Any], Any, str | None], None],
                 on_silent: Callable[[dict[int, dict[str, Any]]], None]):
        self._next_trial, self._on_result, self._on_silent = next_trial, on_result, on_silent
        self.served: list[dict[str, Any]] = []  # trial number -> parameters handed out
        self.numbers: dict[str, int] = {}       # trial key -> trial number
        self.reported: set[int] = set()         # trial numbers that reported a FINAL metric
        self.failed_ends = 0                    # failed trial ends counted (all runs)
        self.failure_floor = 0                  # trials NNI's DB shows ended without a FINAL metric
        self.lost: list[int] = []               # handed out, not run by NNI after a resume: served again

    # ------------------------------------------------------------------------------ events
    def take(self, expected: Take | None = None) -> Take:
        """Ask the method for the next trial and add it. ``expected``: the replayed event it must equal."""
        params = self._next_trial(len(self.served))
        if expected is not None and normalized(params) != expected.params:
            raise ReplayMismatch(f"replaying it gives {trial_key(params)} where it recorded "
                                 f"{trial_key(expected.params)}")
        if params is not None:
            self.numbers[trial_key(params)] = len(self.served)
            self.served.append(params)
        return Take(params)

    def apply(self, event: Event) -> None:
        """Make the state change of ``event`` (a ``Take`` is replayed and checked, see :meth:`take`)."""
        if isinstance(event, Take):
            self.take(event)
            return
        if isinstance(event, Result):
            if event.number in self.reported:
                return
            self.reported.add(event.number)
            self._on_result(event.number, self.served[event.number], event.value, event.job)
        elif isinstance(event, Fail):
            self.failed_ends += 1
        elif isinstance(event, Floor):
            self.failure_floor = max(self.failure_floor, event.failed)
        elif isinstance(event, Lost):
            self.lost.extend(n for n in event.numbers if n not in self.lost)
        elif isinstance(event, Again):
            self.lost.remove(event.number)
            return
        else:
            return  # Resume, Wasted: for the reader and the tuner's start-up
        self._resolve_failures()

    # ------------------------------------------------------------------------------ queries
    def number_of(self, key: str | None) -> int | None:
        """The trial number of the trial with identity ``key`` (None: none of this ledger's trials)."""
        return self.numbers.get(key) if key is not None else None

    def to_come(self, num_trials: int) -> int:
        """Trials still to hand out of ``num_trials`` (lost ones included)."""
        return num_trials - len(self.served) + len(self.lost)

    def failures(self) -> int:
        return max(self.failed_ends, self.failure_floor)

    def unaccounted(self) -> int:
        """Handed-out trials neither reported nor counted as failed (a count: which failed is not known)."""
        return len(self.served) - len(self.lost) - len(self.reported) - self.failures()

    def pending(self) -> list[int]:
        """Trial numbers handed out (and not lost) that have not reported."""
        return [n for n in range(len(self.served)) if n not in self.reported and n not in self.lost]

    def _resolve_failures(self) -> None:
        """When every handed-out trial either reported or failed, the silent ones are the failed ones."""
        if self.unaccounted() > 0:
            return
        silent = {n: self.served[n] for n in self.pending()}
        if silent:
            self._on_silent(silent)
