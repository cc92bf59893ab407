"""``nnictl resume`` of the serving tuners (BenchmarkTuner, MultiTrialTuner) against a simulated NNI 3.0.

The simulation follows NNI 3.0's resume (``nni_node/core/nnimanager.js`` ``resumeExperiment``,
``nni/runtime/msg_dispatcher.py``): a fresh tuner, ``load_checkpoint``, ``import_data`` of the finished
trials (with their trial job ids), the trials that were waiting or running re-run by the manager under
their old parameter ids (their FINAL metrics reach the tuner through ``import_data``, their ends never
do), parameter ids starting again after the highest re-run one, and a first request of
``trialConcurrency`` trials. Trials the tuner handed out that the manager had not submitted yet are lost
with the manager's memory. NNI's trial DB is written in NNI's own schema (``sqlDatabase.js``), so the
tuner reads it as it reads the real one. Trials end first-in first-out, so an interrupted run and an
uninterrupted one see their results in the same order and must hand out the same trials, in the same
order, each once.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Callable

import pytest

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.tuners import BenchmarkTuner, MultiTrialTuner
from tests.support import TINY_MULTI_TRIAL_SEARCH, found_genotype, synthetic_accuracy

Params = dict[str, Any]
_SCHEMA = """
create table TrialJobEvent (timestamp integer, trialJobId text, event text, data text, logPath text,
    sequenceId integer, message text, environmentId text);
create table MetricData (timestamp integer, trialJobId text, parameterId text, type text, sequence integer, data text);
"""


def _normal(value: Any) -> Any:
    return json.loads(json.dumps(value))


class Nni:
    """One experiment: manager, dispatcher and trial DB around a tuner made by ``make``."""

    def __init__(self, make: Callable[[], Any], folder: Path, concurrency: int, fails: Callable[[Params], bool]):
        self.make, self.concurrency, self.fails = make, concurrency, fails
        self.checkpoint = folder / "checkpoint"
        self.checkpoint.mkdir(parents=True)
        (folder / "db").mkdir()
        self.db = sqlite3.connect(folder / "db" / "nni.sqlite", isolation_level=None)
        self.db.executescript(_SCHEMA)
        self.jobs: dict[str, dict[str, Any]] = {}  # trial job id -> pid, params, status, final
        self.order: list[Params] = []              # parameters of every trial job, in submission order
        self.ran: list[Params] = []                # parameters of every run that ended (re-runs included)
        self.waiting: list[tuple[int, Params, str | None]] = []  # the manager's memory: (pid, params, job)
        self.running: list[str] = []
        self.next_id, self.previous_max = 0, -1
        self.submitted = 0
        self.tuner = make()
        self.num_trials = self.tuner.num_trials
        self._request(concurrency)

    # ---------------------------------------------------------------- NNI's dispatcher
    def _request(self, n: int) -> None:
        ids = list(range(self.next_id, self.next_id + n))
        self.next_id += n
        served = self.tuner.generate_multiple_parameters(
            ids, st_callback=lambda pid, p: self.waiting.append((pid, _normal(p), None)))
        self.waiting.extend((pid, _normal(p), None) for pid, p in zip(ids, served))

    def _event(self, job: str, event: str, data: str | None = None) -> None:
        self.db.execute("INSERT INTO TrialJobEvent (trialJobId, event, data) VALUES (?, ?, ?)", (job, event, data))

    # ---------------------------------------------------------------- NNI's manager
    def submit(self) -> None:
        """Submit the waiting trials that fit (free slots, maxTrialNumber)."""
        while self.waiting and len(self.running) < self.concurrency and self.submitted < self.num_trials:
            pid, params, job = self.waiting.pop(0)
            if job is None:
                job = f"T{len(self.jobs)}"
                self.jobs[job] = {"pid": pid, "params": params}
                self.order.append(params)
            packed = {"parameter_id": pid, "parameter_source": "algorithm", "parameters": params}
            self._event(job, "WAITING", json.dumps(packed))
            self._event(job, "RUNNING")
            self.running.append(job)
            self.submitted += 1

    def step(self, deliver: bool = True) -> bool:
        """Submit what fits, end the oldest running trial; False when the experiment is DONE. ``deliver``
        False: the manager stops right after recording the end (the tuner never hears of it)."""
        self.submit()
        if not self.running:
            return False
        job = self.running.pop(0)
        trial = self.jobs[job]
        self.ran.append(trial["params"])
        ok = not self.fails(trial["params"])
        previous = trial["pid"] <= self.previous_max
        if ok:
            trial["final"] = self._metrics(trial["params"])
            self.db.execute("INSERT INTO MetricData (trialJobId, parameterId, type, data) VALUES (?, ?, 'FINAL', ?)",
                            (job, str(trial["pid"]), json.dumps(json.dumps(trial["final"]))))
        self._event(job, "SUCCEEDED" if ok else "FAILED")
        if not deliver:
            return True
        if ok and previous:  # a re-run trial of the previous run: its metric goes to import_data
            self.tuner.import_data([{"parameter": trial["params"], "value": _normal(trial["final"])}])
        elif ok:
            self.tuner.receive_trial_result(trial["pid"], trial["params"], _normal(trial["final"]), trial_job_id=job)
        if not previous:  # the dispatcher drops ends of previous-run parameter ids
            self.tuner.trial_end(trial["pid"], ok)
        if self.submitted < self.num_trials:
            self._request(1)
        return True

    def _end_unheard(self, jobs: list[str]) -> None:
        """Re-run ``jobs`` to their ends; NNI's DB records them, the tuner hears of none (see stop_and_resume)."""
        for job in jobs:
            trial = self.jobs[job]
            self._event(job, "RUNNING")
            self.submitted += 1
            self.ran.append(trial["params"])
            if self.fails(trial["params"]):
                self._event(job, "FAILED")
                continue
            trial["final"] = self._metrics(trial["params"])
            self.db.execute("INSERT INTO MetricData (trialJobId, parameterId, type, data) VALUES (?, ?, 'FINAL', ?)",
                            (job, str(trial["pid"]), json.dumps(json.dumps(trial["final"]))))
            self._event(job, "SUCCEEDED")

    def _metrics(self, params: Params) -> Params:
        """What the real trials report: their identity and, for searches, the genotype they found."""
        found = {"default": 50.0, "role": params["role"], "search_seed": params.get("search_seed")}
        if params["role"] == "candidate":
            found.update(default=synthetic_accuracy(params["genotype"]), candidate_index=params["candidate_index"],
                         flops=float(len(params["genotype"])))
        elif params["role"] == "search":
            found["genotype"] = found_genotype(params["search_seed"])
        elif params["role"] == "random":
            found["arch_index"] = params["arch_index"]
        return found

    def run(self) -> list[Params]:
        while self.step():
            pass
        assert not self.waiting and self.submitted == self.num_trials, (self.waiting, self.submitted)
        return self.order

    def swap_records(self) -> tuple[str, str]:
        """NNI's #5726: the manager's record of a running trial holds the parameters of one that ended
        (with its FINAL metric), and the other way round; a re-run gets what the record says."""
        running, ended = self.running[0], next(j for j in reversed(list(self.jobs)) if "final" in self.jobs[j])
        rows = {job: self.db.execute("SELECT rowid, data FROM TrialJobEvent WHERE trialJobId = ? AND data IS NOT NULL",
                                     (job,)).fetchone() for job in (running, ended)}
        for job, other in ((running, ended), (ended, running)):
            self.db.execute("UPDATE TrialJobEvent SET data = ? WHERE rowid = ?", (rows[other][1], rows[job][0]))
        self.jobs[running]["params"] = self.jobs[ended]["params"]
        return running, ended

    def stop_and_resume(self, early_ends: str | None = None) -> None:
        """``nnictl stop`` (tuner process and the manager's waiting trials gone), then ``nnictl resume``.

        ``early_ends`` ('before_load' / 'after_load'): the re-run trials end, with their FINAL metrics in the DB,
        before the fresh dispatcher has processed the manager's list of re-run trials, so NNI's dispatcher
        drops their metrics ("Find unknown job parameter id") and their ends; seen on a loaded machine, with
        tabular trials of seconds and a dispatcher that took 20 s to start."""
        self.waiting = []
        rerun = list(self.running)
        for job in rerun:  # the manager marks them before the new tuner process has started
            self._event(job, "ADD_RESUMED", "")
        # The manager lists the finished trials for import_data when it resumes, before any re-run ends.
        finished = [{"parameter": t["params"], "value": _normal(t["final"]), "trialJobId": job}
                    for job, t in self.jobs.items() if "final" in t]
        self.tuner = self.make()
        self.submitted = len(self.order) - len(rerun)
        self.running = []
        if early_ends == "before_load":
            self._end_unheard(rerun)
        self.tuner.load_checkpoint()
        if early_ends == "after_load":
            self._end_unheard(rerun)
        self.waiting = [(self.jobs[job]["pid"], self.jobs[job]["params"], job) for job in rerun if not early_ends]
        self.previous_max = max((self.jobs[job]["pid"] for job in rerun), default=-1)
        self.next_id = self.previous_max + 1
        self.tuner.import_data(finished)
        self._request(self.concurrency)


def _multi_trial() -> MultiTrialTuner:
    return MultiTrialTuner(method="evolution", dataset="cifar10", num_searches=2, num_random=2,
                           search={"budget": 6, "population": 3, "sample_size": 2}, candidate_protocol="quick",
                           protocol="quick")


def _benchmark() -> BenchmarkTuner:
    return BenchmarkTuner(method="darts", dataset="cifar10", num_searches=3, num_random=2,
                          search={"order": 1, "epochs": 1, "channels": 4, "layers": 3})


def _fails(params: Params) -> bool:
    """Candidate 1 of search seed 0, search seed 1 and every stand-in fail."""
    return (bool(params.get("search_failed")) or (params["role"] == "search" and params["search_seed"] == 1)
            or (params["role"] == "candidate" and (params["search_seed"], params["candidate_index"]) == (0, 1)))


def _interrupted(make: Callable[[], Any], folder: Path, concurrency: int, stops: dict[int, bool],
                 fails: Callable[[Params], bool] = _fails) -> list[Params]:
    """Run with a stop and resume after each step number in ``stops`` (value: whether the manager told
    the tuner about that step's trial end before stopping)."""
    nni = Nni(make, folder, concurrency, fails)
    step = 0
    while True:
        step += 1
        if not nni.step(deliver=stops.get(step, True)):
            break
        if step in stops:
            nni.stop_and_resume()
    nni.run()
    assert nni.ran == nni.order
    return nni.order


def _key(params: Params) -> str:
    return json.dumps(params, sort_keys=True)


@pytest.fixture
def checkpoint_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str], Path]:
    """A fresh experiment folder per call, its checkpoint folder in NNI_CHECKPOINT_DIRECTORY."""

    def folder(name: str) -> Path:
        monkeypatch.setenv("NNI_CHECKPOINT_DIRECTORY", str(tmp_path / name / "checkpoint"))
        return tmp_path / name

    return folder


@pytest.mark.parametrize("concurrency", [1, 3])
def test_multi_trial_resume_continues_exactly_as_an_uninterrupted_run(concurrency: int, checkpoint_env) -> None:
    """Stops: with candidates running (re-run by NNI) and one handed out but not yet submitted (lost);
    after a failed candidate; and once before the tuner heard of a trial end. The resumed searches hand
    out the same trials in the same order as the uninterrupted run: replayed asks and tells."""
    reference = Nni(_multi_trial, checkpoint_env("reference"), concurrency, _fails).run()
    assert len({_key(p) for p in reference}) == len(reference) == _multi_trial().num_trials
    stops = {3: True, 6: False, 11: True}
    resumed = _interrupted(_multi_trial, checkpoint_env("resumed"), concurrency, stops)
    assert [_key(p) for p in resumed] == [_key(p) for p in reference]


@pytest.mark.parametrize("method", ["random_search", "reinforce", "tpe", "nni_tpe", "nsganet", "weaknas"])
def test_every_multi_trial_method_resumes_as_it_would_have_gone_on(method: str, checkpoint_env) -> None:
    """Each method's state (populations, predictors, controllers, TPE models, random streams) is rebuilt by
    the replay alone: its proposals after two resumes are the uninterrupted ones."""
    search = {**TINY_MULTI_TRIAL_SEARCH.get(method, {}), "budget": 6}
    if method == "nsganet":
        search.update(population=2, generations=2, offspring=2)

    def make() -> MultiTrialTuner:
        return MultiTrialTuner(method=method, dataset="cifar10", num_searches=2, num_random=1, search=search,
                               candidate_protocol="quick", protocol="quick")

    reference = Nni(make, checkpoint_env("reference"), 2, _fails).run()
    resumed = _interrupted(make, checkpoint_env("resumed"), 2, {3: True, 7: False})
    assert [_key(p) for p in resumed] == [_key(p) for p in reference]


@pytest.mark.parametrize("concurrency", [2, 4])
def test_benchmark_resume_serves_every_trial_once(concurrency: int, checkpoint_env) -> None:
    """Searches finished, running and failed at the stops: each search seed runs once, each finished
    search's final training once (with its genotype), the failed search's stand-in once."""
    reference = Nni(_benchmark, checkpoint_env("reference"), concurrency, _fails).run()
    resumed = _interrupted(_benchmark, checkpoint_env("resumed"), concurrency, {2: True, 4: False})
    assert sorted(map(_key, resumed)) == sorted(map(_key, reference))
    assert len(set(map(_key, resumed))) == len(resumed) == 8
    searched = {p["search_seed"]: p for p in resumed if p["role"] == "searched"}
    assert searched[1]["search_failed"] and searched[0]["genotype"] == found_genotype(0)


def test_a_rerun_trial_that_fails_after_the_resume_is_counted_from_nni_db(checkpoint_env) -> None:
    """NNI drops the end of a re-run trial: the tuner learns of its failure from NNI's trial DB, tells the
    strategy, and the search still ends (no hang) as the uninterrupted one does."""

    def fails(params: Params) -> bool:
        return params["role"] == "candidate" and (params["search_seed"], params["candidate_index"]) == (1, 2)

    reference = Nni(_multi_trial, checkpoint_env("reference"), 2, fails).run()
    running_at = next(i for i, p in enumerate(reference) if fails(p))  # stop while it runs
    resumed = _interrupted(_multi_trial, checkpoint_env("resumed"), 2, {running_at: True}, fails)
    assert [_key(p) for p in resumed] == [_key(p) for p in reference]


@pytest.mark.parametrize("when", ["before_load", "after_load"])
def test_results_of_rerun_trials_nni_dropped_are_taken_from_its_db(when: str, checkpoint_env) -> None:
    """NNI 3.0's dispatcher drops the FINAL metrics of re-run trials that end before it knows them as re-runs
    (a slow dispatcher start, fast tabular trials): the tuner takes them from NNI's DB and the search goes on
    as the uninterrupted one, instead of waiting forever (seen in tests/test_e2e_failures.py's tabular resume;
    ``nni/runtime/msg_dispatcher.py`` ``_handle_final_metric_data``: "Find unknown job parameter id")."""
    reference = Nni(_multi_trial, checkpoint_env("reference"), 2, _fails).run()
    nni = Nni(_multi_trial, checkpoint_env("resumed"), 2, _fails)
    for _ in range(3):
        nni.step()
    assert nni.running
    nni.stop_and_resume(early_ends=when)
    nni.run()
    # Every trial once; the searches propose the uninterrupted candidates. Only the hand-out order of the last
    # trials may differ: here the re-runs' results are known before the first request, not one per request.
    assert sorted(map(_key, nni.order)) == sorted(map(_key, reference)) and len(set(map(_key, nni.order))) == 16
    candidates = [_key(p) for p in nni.order if p["role"] == "candidate"]
    assert candidates == [_key(p) for p in reference if p["role"] == "candidate"]


@pytest.fixture
def manager_rest(monkeypatch: pytest.MonkeyPatch) -> Any:
    """NNI's REST ``/api/v1/nni/experiment`` (GET the profile, PUT ``?update_type=MAX_TRIAL_NUM``) around a
    simulated manager, reached as a dispatcher reaches it (the tuner channel's address)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    managers: list[Nni] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._reply({"params": {"maxTrialNumber": managers[0].num_trials, "trialConcurrency": 2}})

        def do_PUT(self) -> None:
            assert self.path.endswith("/api/v1/nni/experiment?update_type=MAX_TRIAL_NUM"), self.path
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            managers[0].num_trials = body["params"]["maxTrialNumber"]
            self._reply(None)

        def _reply(self, value: Any) -> None:
            data = json.dumps(value).encode() if value is not None else b""
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("NNI_TUNER_COMMAND_CHANNEL", f"ws://127.0.0.1:{server.server_address[1]}/tuner")
    yield managers
    server.shutdown()


def test_a_trial_nni_re_runs_with_another_trials_parameters_is_served_again(checkpoint_env, manager_rest,
                                                                            caplog) -> None:
    """NNI's #5726 at a stop: NNI re-runs a running trial with the parameters of one that already ran. The
    tuner serves the running one again and raises maxTrialNumber by the slot NNI wastes (as ``nnictl update
    trialnum``), so every trial runs, only NNI's duplicate twice; a later start accepts the raised number."""
    from nni_nas_bench.tuners.validators import check_trial_count

    reference = Nni(_multi_trial, checkpoint_env("reference"), 2, _fails).run()
    nni = Nni(_multi_trial, checkpoint_env("resumed"), 2, _fails)
    manager_rest.append(nni)
    for _ in range(5):
        nni.step()
    _, ended = nni.swap_records()
    nni.stop_and_resume()
    assert "spent 1 trial slot(s) on re-runs of trials that already ran" in caplog.text
    assert nni.num_trials == _multi_trial().num_trials + 1
    nni.run()

    def key(params: Params) -> str:  # the re-served trial has a new trial job id: another source_trial maybe
        return _key({k: v for k, v in params.items() if k != "source_trial"})

    runs = [key(p) for p in nni.ran]
    assert sorted(set(runs)) == sorted(map(key, reference))
    assert [k for k in set(runs) if runs.count(k) > 1] == [key(nni.jobs[ended]["params"])]
    later = _multi_trial()  # the next ``nnictl resume`` checks maxTrialNumber before anything else
    assert later.extra_trials == 1
    check_trial_count(nni.num_trials, later)


def test_a_re_run_of_a_trial_that_reported_just_before_the_stop_costs_no_slot(checkpoint_env, manager_rest) -> None:
    """#5726 beside a trial whose FINAL metric reached the tuner just before the stop, while NNI still had it
    running: NNI re-runs that one in its own job's slot, so only the trial whose record was swapped needs a new
    slot. Seen in tests/test_e2e_failures.py (tabular resume): counting both as wasted raised maxTrialNumber
    by 2, and the experiment then waited for a trial that never came (TUNER_NO_MORE_TRIAL, never DONE)."""
    nni = Nni(_multi_trial, checkpoint_env("resumed"), 2, _fails)
    manager_rest.append(nni)
    for _ in range(5):
        nni.step()
    nni.submit()  # two trials running
    nni.swap_records()
    reported = nni.running[1]  # its FINAL metric is in the DB and reached the tuner; its end did not
    trial = nni.jobs[reported]
    trial["final"] = nni._metrics(trial["params"])
    nni.db.execute("INSERT INTO MetricData (trialJobId, parameterId, type, data) VALUES (?, ?, 'FINAL', ?)",
                   (reported, str(trial["pid"]), json.dumps(json.dumps(trial["final"]))))
    nni.tuner.receive_trial_result(trial["pid"], trial["params"], _normal(trial["final"]), trial_job_id=reported)
    nni.stop_and_resume()
    assert nni.num_trials == _multi_trial().num_trials + 1
    nni.run()  # asserts that the manager submitted exactly maxTrialNumber trials: the experiment reaches DONE
    assert len({_key(p) for p in nni.ran}) == _multi_trial().num_trials  # each of the tuner's trials ran


def test_a_finished_trial_handed_back_under_another_trials_record_is_still_placed(checkpoint_env) -> None:
    """``nnictl resume`` hands back finished trials with the manager's record of their parameters, which may
    be another trial's (#5726): a search's genotype recorded under a random trial still yields its final
    training (a record's arch_index must not leak into the search's identity)."""
    checkpoint_env("swapped").joinpath("checkpoint").mkdir(parents=True)
    tuner = _benchmark()
    served = tuner.generate_multiple_parameters([0, 1, 2, 3])
    assert [p["role"] for p in served] == ["search", "search", "search", "random"]
    resumed = _benchmark()
    resumed.load_checkpoint()
    found = {"role": "search", "search_seed": 0, "genotype": found_genotype(0), "default": 50.0}
    resumed.import_data([{"parameter": served[3], "value": found, "trialJobId": "T0"}])
    searched = resumed.generate_parameters(4)
    assert searched["role"] == "searched" and searched["genotype"] == found_genotype(0)
    assert searched["source_trial"] == "T0"


def test_journal_torn_last_line_is_dropped_and_damage_elsewhere_stops_with_the_fix(checkpoint_env) -> None:
    folder = checkpoint_env("torn")
    nni = Nni(_benchmark, folder, 2, _fails)
    for _ in range(3):
        nni.step()
    journal = next((folder / "checkpoint").glob("*.journal.jsonl"))
    with journal.open("a") as f:
        f.write('{"take": {"role": "sea')  # a crash mid-write
    nni.stop_and_resume()
    assert len(set(map(_key, nni.run()))) == 8

    lines = journal.read_text().splitlines()
    journal.write_text("\n".join([*lines[:2], "{damaged", *lines[2:]]) + "\n")
    with pytest.raises(ConfigError, match=r"journal .* is damaged \(line 3 is not JSON\).* Restore the file"):
        _benchmark().load_checkpoint()


def test_changed_class_args_are_caught_by_the_replay(checkpoint_env) -> None:
    nni = Nni(_benchmark, checkpoint_env("args"), 2, _fails)
    nni.step()
    other = BenchmarkTuner(method="darts", dataset="cifar10", num_searches=3, num_random=2, search_seed=7,
                           search={"order": 1, "epochs": 1, "channels": 4, "layers": 3})
    with pytest.raises(ConfigError, match=r"replaying it gives search/7/.* where it recorded search/0/.*changed"):
        other.load_checkpoint()


@pytest.mark.parametrize("make", [_multi_trial, _benchmark])
def test_without_a_journal_finished_trials_stop_the_experiment_with_the_fix(make, checkpoint_env) -> None:
    """Nothing to rebuild from: re-running seeds that already ran would duplicate rows silently."""
    folder = checkpoint_env("nojournal")
    nni = Nni(make, folder, 2, _fails)
    nni.step()
    for journal in (folder / "checkpoint").glob("*.journal.jsonl"):
        journal.unlink()
    with pytest.raises(ConfigError, match=r"cannot resume this experiment: NNI's trial DB holds 2 trials but .* is "
                                          r"missing.* Start a new experiment with other search_seed/arch_seed"):
        make().load_checkpoint()
    fresh = make()  # no checkpoint folder at all (e.g. ``nnictl experiment import`` into a new experiment)
    fresh.import_data([])
    with pytest.raises(ConfigError, match=r"1 finished trials were handed back but no journal"):
        fresh.import_data([{"parameter": {"role": "random"}, "value": {"default": 50.0}}])
