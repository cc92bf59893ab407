"""The serving tuner's ledger (``nni_nas_bench.tuners.ledger``) alone: no NNI, no files, no database."""

from __future__ import annotations

from typing import Any

import pytest

from nni_nas_bench.contract import trial_key
from nni_nas_bench.tuners.ledger import (
    Again,
    Fail,
    Floor,
    Ledger,
    Lost,
    ReplayMismatch,
    Result,
    Resume,
    Take,
    Wasted,
    from_json,
    to_json,
)


class Method:
    """A stand-in method with a queue of trials: records what the ledger tells it."""

    def __init__(self, trials: int = 3):
        self.trials = [{"role": "random", "method": "m", "dataset": "cifar10", "space": "nb201", "arch_index": k}
                       for k in range(trials)]
        self.results: list[tuple[int, Any]] = []
        self.silent: list[list[int]] = []

    def next_trial(self, number: int) -> dict[str, Any] | None:
        return self.trials[number] if number < len(self.trials) else None

    def on_result(self, number: int, params: dict[str, Any], value: Any, job: str | None) -> None:
        self.results.append((number, value))

    def on_silent(self, silent: dict[int, dict[str, Any]]) -> None:
        self.silent.append(sorted(silent))

    def ledger(self) -> Ledger:
        return Ledger(self.next_trial, self.on_result, self.on_silent)


EVENTS = [Take({"role": "random", "arch_index": 1}), Take(None), Result(2, {"default": 91.5}, "AbC12"),
          Result(0, 3.0), Fail(), Floor(2), Lost((1, 3)), Again(3), Resume(4), Wasted(1)]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_survives_its_journal_line(event: Any) -> None:
    assert from_json(to_json(event)) == event


@pytest.mark.parametrize("line", [{}, [], 3, {"unknown": 1}, {"result": "0"}, {"lost": [-1]}, {"floor": True},
                                  {"again": None}])
def test_a_line_that_is_no_event_is_refused(line: Any) -> None:
    with pytest.raises(ValueError, match="not an event"):
        from_json(line)


def test_journal_lines_keep_the_format_of_version_1() -> None:
    # Experiments started by earlier versions resume from these lines: their shape must not change.
    assert [to_json(e) for e in EVENTS[:5]] == [{"take": {"role": "random", "arch_index": 1}}, {"take": None},
                                                 {"result": 2, "value": {"default": 91.5}, "job": "AbC12"},
                                                 {"result": 0, "value": 3.0, "job": None}, {"fail": 1}]


def test_take_numbers_trials_and_stops_when_the_method_has_nothing() -> None:
    method = Method(trials=2)
    ledger = method.ledger()
    assert [ledger.take().params["arch_index"] for _ in range(2)] == [0, 1]
    assert ledger.take() == Take(None)
    assert len(ledger.served) == 2 and ledger.to_come(num_trials=2) == 0
    assert ledger.number_of(trial_key(method.trials[1])) == 1
    assert ledger.number_of(None) is None


def test_a_result_is_taken_once_and_reaches_the_method() -> None:
    method = Method()
    ledger = method.ledger()
    ledger.take()
    ledger.apply(Result(0, 90.0))
    ledger.apply(Result(0, 10.0))  # a duplicate (re-run trial reporting again): ignored
    assert method.results == [(0, 90.0)] and ledger.pending() == []


def test_failures_are_counted_and_the_silent_trials_named_when_all_are_accounted() -> None:
    method = Method()
    ledger = method.ledger()
    for _ in range(3):
        ledger.take()
    ledger.apply(Fail())  # one of three failed; which one is not known yet
    assert method.silent == [] and ledger.unaccounted() == 2
    ledger.apply(Result(0, 90.0))
    ledger.apply(Result(2, 80.0))
    assert method.silent == [[1]] and ledger.unaccounted() == 0


def test_the_db_floor_counts_failures_whose_ends_were_lost() -> None:
    method = Method()
    ledger = method.ledger()
    ledger.take()
    ledger.take()
    ledger.apply(Floor(1))
    ledger.apply(Floor(0))  # a floor never lowers
    ledger.apply(Result(1, 70.0))
    assert ledger.failures() == 1 and method.silent == [[0]]


def test_lost_trials_are_not_pending_until_handed_out_again() -> None:
    method = Method()
    ledger = method.ledger()
    for _ in range(3):
        ledger.take()
    ledger.apply(Lost((1,)))
    assert ledger.pending() == [0, 2] and ledger.to_come(num_trials=3) == 1
    ledger.apply(Again(1))
    assert ledger.pending() == [0, 1, 2] and ledger.lost == []


def test_replay_rebuilds_the_state_and_refuses_a_changed_method() -> None:
    method = Method()
    live = method.ledger()
    events = [live.take(), live.take()]
    for event in (Result(0, 90.0), Fail()):
        live.apply(event)
        events.append(event)
    replayed_method = Method()
    replayed = replayed_method.ledger()
    for event in events:
        replayed.apply(event)
    assert (replayed.served, replayed.reported, replayed.failures()) == (live.served, live.reported, live.failures())
    assert replayed_method.results == method.results and replayed_method.silent == method.silent == [[1]]
    changed = Method()
    changed.trials.reverse()
    with pytest.raises(ReplayMismatch, match=r"replaying it gives .* where it recorded"):
        changed.ledger().apply(events[0])
