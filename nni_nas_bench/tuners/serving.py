"""What every tuner of a search experiment shares: NNI's request protocol, owed parameter ids, resume, and
the parameters of the trials every method's experiment has (searched, random). This is the NNI adapter;
the state itself (trials handed out, reported, failed, lost) is the pure ledger of typed events in
:mod:`nni_nas_bench.tuners.ledger`, which this module journals and replays.

A search experiment's trials depend on results: a search's final training can only be submitted once
the search reported, a multi-trial search's next candidate once it has learnt from the last ones.

How the tuner waits (NNI 3.0, read from ``nni/runtime/msg_dispatcher.py`` and
``nni_node/core/nnimanager.js``): the manager asks the tuner for trials (``REQUEST_TRIAL_JOBS``) only at
the start (``trialConcurrency`` of them) and then one per trial that ends. A tuner that has nothing to
give yet must not raise ``NoMoreTrialError`` and forget the request: the dispatcher then answers
``NO_MORE_TRIAL_JOBS``, the manager shows ``TUNER_NO_MORE_TRIAL`` and never asks for that slot again.
That status is not final, though: the manager still accepts a ``NEW_TRIAL_JOB`` afterwards (it logs a
warning and goes back to ``RUNNING``), and it only ends the experiment (``DONE``) when ``maxTrialNumber``
trials were submitted and all of them ended. So the tuner keeps the parameter ids it could not serve
("owed" ids) and serves them later through the ``st_callback`` that NNI's dispatcher passes to
``generate_multiple_parameters`` (it sends ``NEW_TRIAL_JOB`` with that id), as soon as a result makes a
trial ready. ``maxTrialNumber`` must equal the tuner's ``num_trials``: the manager ends the experiment
only when that many trials were submitted.

Which trial failed: ``trial_end`` names a parameter id taken from the manager's record of the trial,
and NNI 3.0's local training service hands parameters to trials from a shared queue, so with several
trials at once that record can be another trial's (upstream #5726). The tuner therefore never trusts
that id. Every successful trial reports a FINAL metric (by its true parameter id) and a failed one
does not, so when all submitted trials are accounted for as "reported" or "failed" (counted, not
identified), the trials that never reported are the failed ones (:meth:`ServingTuner._on_silent`).
With one trial at a time that is at once; with several, a failure is known when the trials running
beside it have ended. A trial that reported FINAL and then exited non-zero counts twice and may make a
running trial look failed; that costs one result, whereas not counting would risk a hang.

NNI's manager gives the tuner process 10 seconds to connect (``tuner_command_channel.js``), counted
from its start, and NNI's dispatcher builds the tuner before it connects. Importing torch and
``nni.nas`` for a space and its strategies can take longer on a busy machine, so a tuner may build
them in a thread (:meth:`ServingTuner._build_in_background`): every NNI callback and ``num_trials``
wait for it and re-raise its error, so a bad classArg still fails the experiment at its first request
(and ``nas-bench check``, which reads ``num_trials``, at once).

The tuner runs its callbacks on two dispatcher threads (metrics and requests on one, trial ends on the
other); a lock guards its state. NNI's websocket channel is thread-safe, so either thread may send.

Resume (``nnictl resume``; NNI 3.0's ``nnimanager.js`` ``resumeExperiment`` and the dispatcher). The
manager starts a fresh tuner process and calls :meth:`ServingTuner.load_checkpoint`; then it hands back
every finished trial with a FINAL metric (``import_data``), re-runs by itself every trial that was
waiting or running at the stop (same parameters and parameter id; each continues from its checkpoint),
and asks for ``trialConcurrency`` new trials at once, although the re-run trials fill the slots. The
re-run trials' FINAL metrics reach the tuner through ``import_data`` too (unless a re-run ends before the
fresh dispatcher knows it as one: then the dispatcher drops its metric, and the tuner takes it from NNI's
DB, :meth:`ServingTuner._import_dropped`), and their ends never do (the dispatcher drops ends of
previous-run parameter ids); parameter ids start again near 0, so ids of the two
runs collide. The tuner therefore keys everything by its own trial number (the n-th trial it handed
out) and by the trial's identity (role, seeds, indices: :func:`~nni_nas_bench.tuners.journal.trial_key`,
read from the trial's own metrics first because the manager's record may be another trial's, #5726):

- every state change is a line of its journal in the checkpoint folder, written before a trial leaves
  (:mod:`nni_nas_bench.tuners.journal`); :meth:`load_checkpoint` replays it into the fresh tuner, which
  repeats every decision (strategies are seeded) and checks that each replayed trial is the recorded
  one. So no search seed, candidate or random architecture is handed out twice, finished searches keep
  their genotypes and their final trainings are served once, and a multi-trial search continues with
  the proposals an uninterrupted run would have made;
- trials that were pending at the stop are NNI's to re-run: the tuner waits for their results. NNI's
  trial DB (read-only, :func:`~nni_nas_bench.tuners.journal.read_trial_record`) tells it what NNI does
  not: trials that ended without a FINAL metric (failures whose end was lost at the stop, and re-run
  trials that fail), and pending trials NNI does not re-run: never submitted (the manager keeps waiting
  trials in memory only), or recorded with another trial's parameters (#5726), so that NNI re-runs a
  trial that already ran instead. Those are served again, once, and the tuner raises ``maxTrialNumber``
  by the slots NNI spends on such duplicates (:func:`raise_max_trial_number`; kept as ``extra_trials``,
  which NNI's start-up check of ``maxTrialNumber`` adds at later resumes);
- in the resumed run the tuner keeps at most ``trialConcurrency`` trials pending (the size of the
  manager's first request): the extra request the manager makes at resume is held until a re-run trial
  ends, as the uninterrupted run would have asked only then;
- without a journal (deleted, or written by an older version) while NNI's DB or ``import_data`` shows
  trials, the tuner cannot know what it handed out and stops the experiment naming the fix.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from pathlib import Path
from typing import Any, Callable

from nni import NoMoreTrialError
from nni.tuner import Tuner

from nni_nas_bench.contract import Role, TrialParams
from nni_nas_bench.errors import ConfigError, mapping_arg
from nni_nas_bench.training import from_dict
from nni_nas_bench.tuners.journal import Journal, TrialRecord, read_trial_record, reported_key, trial_key
from nni_nas_bench.tuners.ledger import Again, Event, Fail, Floor, Ledger, Lost, ReplayMismatch, Result, Resume, Wasted
from nni_nas_bench.tuners.random_baseline import random_trial_parameters
from nni_nas_bench.tuners.validators import BuildsInBackground, ends_dispatcher_on_error

_logger = logging.getLogger(__name__)
SendTrial = Callable[[int, dict[str, Any]], None]


def raise_max_trial_number(to: int) -> int | None:
    """Raise the running experiment's maxTrialNumber to ``to`` (never lower it) through the manager's REST
    API, as ``nnictl update trialnum`` does (``PUT /experiment?update_type=MAX_TRIAL_NUM``, with NNI's own
    REST helpers, ``nni.experiment.rest``; the REST server shares the port and URL prefix of the tuner
    channel, ``nnimanager.js`` ``setupTuner``). Returns the slots added (0: it was at least ``to``), None
    outside NNI or on refusal."""
    from urllib.parse import urlsplit

    from nni.experiment import rest

    channel = urlsplit(os.environ.get("NNI_TUNER_COMMAND_CHANNEL", ""))
    try:
        port = channel.port
    except ValueError:
        port = None
    if channel.scheme != "ws" or port is None or not channel.path.endswith("/tuner"):
        return None
    prefix = channel.path[: -len("/tuner")].strip("/") or None
    try:
        profile = rest.get(port, "/experiment", prefix)
        current = int(profile["params"]["maxTrialNumber"])
        if current >= to:
            return 0
        profile["params"]["maxTrialNumber"] = to
        rest.put(port, "/experiment?update_type=MAX_TRIAL_NUM", profile, prefix)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # requests' errors are OSErrors
        _logger.warning("could not raise maxTrialNumber through the manager at port %s: %s", port, exc)
        return None
    _logger.warning("maxTrialNumber raised from %d to %d for them", current, to)
    return to - current


def _extra_trials(directory: str | None, tuner: str) -> int:
    """Slots added by :func:`raise_max_trial_number` in earlier runs (the journal's ``wasted`` events); read
    when the tuner is built, before NNI's checks compare maxTrialNumber with the tuner's trials."""
    if directory is None:
        return 0
    try:
        events = Journal(directory, tuner).load() or []
    except ConfigError:
        return 0  # a damaged journal: load_checkpoint refuses it with its reason, once NNI asks for it
    return sum(event.slots for event in events if isinstance(event, Wasted))


def count_arg(name: str, value: Any, minimum: int) -> int:
    """``value`` if it is an integer >= ``minimum``, else a ConfigError naming the classArg."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class ServingTuner(BuildsInBackground, Tuner):
    """Base of tuners whose trials become ready over time (see the module docstring).

    Subclasses implement :meth:`_next_trial` (the parameters of trial number ``n``, or None when nothing
    is ready), :meth:`_on_result` (a FINAL metric of a trial number), :meth:`_on_silent` (the submitted
    trials that never reported once every trial is accounted for: they failed) and ``num_trials``; each
    must decide from its classArgs and these calls only (seeded), so that a replayed journal rebuilds it.
    Common classArgs (dataset, searches, random trials, space, final protocol) are validated by
    :meth:`_setup`.
    """

    # The manager ends the experiment after maxTrialNumber trials; this tuner submits exactly num_trials and
    # then owes nothing, so a larger maxTrialNumber would never reach DONE (nas-bench check rejects it).
    exact_trials = True

    def __init__(self) -> None:
        self._lock = threading.RLock()
        # What was handed out, reported, failed, lost: the pure state, rebuilt at resume from the journal.
        self._ledger = Ledger(self._next_trial, self._on_result, self._on_silent)
        self._ids: dict[int, int] = {}           # parameter id of this run -> trial number
        self._owed: deque[int] = deque()         # requested parameter ids (this run) not served yet
        self._send: SendTrial | None = None
        self._journal: Journal | None = None     # None: not opened yet, or no checkpoint folder
        self._journal_opened = False
        self._resumed = False                    # this run continues a journal
        self._slots: int | None = None           # resumed run: trialConcurrency (see the module docstring)
        # Slots of maxTrialNumber this tuner added for NNI's duplicate re-runs (#5726): the experiment's
        # maxTrialNumber is num_trials + extra_trials (validators.check_trial_count reads it at each start).
        self.extra_trials = _extra_trials(self.get_checkpoint_path(), type(self).__name__)
        self._rerun: set[int] = set()            # resumed run: trials pending at the stop (NNI re-runs them)

    def _setup(self, method: str, dataset: str, num_searches: int, num_random: int, search_seed: int,
               arch_seed: int, space: str, space_args: dict[str, Any] | None, protocol: Any,
               train_seed: int | None) -> None:
        """Validate and keep the classArgs every search experiment has (a bad YAML fails at start)."""
        from nni_nas_bench.data import get_dataset_info
        from search_spaces import create_space

        self.method = method
        self.dataset = get_dataset_info(dataset).name
        self.num_searches = count_arg("num_searches", num_searches, 1)
        self.num_random = count_arg("num_random", num_random, 0)
        self.search_seed = count_arg("search_seed", search_seed, 0)
        self.arch_seed = count_arg("arch_seed", arch_seed, 0)
        self.space_name, self.space_args = space, mapping_arg("space_args", space_args)
        self.space = create_space(space, **self.space_args)
        final = from_dict(protocol)
        if train_seed is not None:
            final = final.replace(seed=train_seed)
        self.protocol = final.to_dict()

    @property
    def num_trials(self) -> int:
        """Trials of the experiment (= maxTrialNumber)."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------ parameters
    def _common(self, role: Role) -> TrialParams:
        return {"role": role.value, "method": self.method, "dataset": self.dataset, "space": self.space_name,
                "space_args": self.space_args}

    def _random_params(self, k: int) -> dict[str, Any]:
        # The random baseline's own parameters: its rows pool with any random baseline of the same space,
        # dataset and protocol, and the analysis pairs them with the searched rows of this experiment.
        return random_trial_parameters(self.space, self.space_name, self.space_args, self.dataset, self.arch_seed, k,
                                       self.protocol)

    def _searched_params(self, search_seed: int, genotype: str, source_trial: str | None) -> dict[str, Any]:
        params = {**self._common(Role.SEARCHED), "search_seed": search_seed, "genotype": genotype,
                  "protocol": self.protocol}
        if source_trial is not None:
            params["source_trial"] = source_trial
        return params

    def _stand_in_params(self, search_seed: int, reason: str) -> dict[str, Any]:
        """A searched trial for a search that found nothing: the trial ends FAILED at once, naming why."""
        return {**self._common(Role.SEARCHED), "search_seed": search_seed, "protocol": self.protocol,
                "search_failed": reason}

    # ------------------------------------------------------------------------------ NNI callbacks
    @ends_dispatcher_on_error
    def generate_multiple_parameters(self, parameter_id_list: list[int], **kwargs: Any) -> list[dict[str, Any]]:
        """Serve what is ready; keep the other ids to serve later (see the module docstring)."""
        self._wait_built()
        with self._lock:
            if kwargs.get("st_callback") is not None:
                self._send = kwargs["st_callback"]
            if self._resumed and self._slots is None:
                self._slots = len(parameter_id_list)  # the manager's first request: trialConcurrency
            self._refresh_failures()
            served = []
            for position, parameter_id in enumerate(parameter_id_list):
                taken = None if self._full() else self._take()
                if taken is None:
                    # Keep only as many ids as trials are still to come; the rest are not needed.
                    room = self._ledger.to_come(self.num_trials) - len(self._owed)
                    self._owed.extend(parameter_id_list[position: position + max(room, 0)])
                    break
                self._ids[parameter_id] = taken[0]
                served.append(taken[1])
            if self._owed:
                _logger.info("nothing ready for parameter ids %s: waiting for results", list(self._owed))
            return served

    @ends_dispatcher_on_error
    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict[str, Any]:
        """One trial, if one is ready (NNI calls :meth:`generate_multiple_parameters`; this is for direct use)."""
        self._wait_built()
        with self._lock:
            taken = self._take()
            if taken is None:
                raise NoMoreTrialError("nothing ready: all trials submitted, or waiting for results")
            self._ids[parameter_id] = taken[0]
            return taken[1]

    @ends_dispatcher_on_error
    def receive_trial_result(self, parameter_id: int, parameters: dict[str, Any], value: Any, **kwargs: Any) -> None:
        """A FINAL metric, under the parameter id the trial really ran."""
        self._wait_built()
        with self._lock:
            number = self._ids.get(parameter_id)
            if number is not None and number not in self._ledger.reported:
                self._record(Result(number, value, kwargs.get("trial_job_id")))
            self._after_event()

    @ends_dispatcher_on_error
    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        """Count failed trials (their parameter id may be another trial's, so it is not used)."""
        self._wait_built()
        with self._lock:
            if not success:
                self._record(Fail())
            self._after_event()

    def update_search_space(self, search_space: dict[str, Any]) -> None:
        """The space comes from classArgs; NNI's searchSpace field is unused."""

    # ------------------------------------------------------------------------------ resume
    @ends_dispatcher_on_error
    def load_checkpoint(self) -> None:
        """``nnictl resume``: replay the journal into this fresh tuner, then learn from NNI's trial DB what
        changed without the tuner's knowledge (see the module docstring)."""
        self._wait_built()
        self._load_checkpoint()  # a refusal ends the dispatcher with its line (ends_dispatcher_on_error)

    def _load_checkpoint(self) -> None:
        with self._lock:
            directory = self.get_checkpoint_path()  # NNI_CHECKPOINT_DIRECTORY, set by the manager
            if directory is None:
                return  # no checkpoint folder: import_data refuses finished trials
            self._journal = Journal(directory, type(self).__name__)
            events = self._journal.load()
            record = self._trial_record()
            if events is None:
                if record is not None and record.trials:
                    raise self._cannot_resume(f"NNI's trial DB holds {record.trials} trials but "
                                              f"{self._journal.path} is missing")
                return  # nothing ran before the stop: a fresh start
            for event in events:
                try:
                    self._ledger.apply(event)
                except ReplayMismatch as exc:
                    raise self._journal.damaged(f"{exc}: the classArgs or the code changed since the experiment "
                                                "started") from None
            self._journal_opened, self._resumed = True, True
            self._write(Resume(len(self._ledger.served)))
            if record is not None:
                self._raise_floor(record.failed)
                self._find_lost(record)
            self._rerun = set(self._ledger.pending())
            if record is not None:
                self._import_dropped(record)
            ledger = self._ledger
            _logger.info("resumed: %d trials handed out, %d reported, %d pending (NNI re-runs them), %d lost",
                         len(ledger.served), len(ledger.reported), len(ledger.pending()), len(ledger.lost))

    @ends_dispatcher_on_error
    def import_data(self, data: list[dict[str, Any]]) -> None:
        """Finished trials NNI hands back on resume, and later the FINAL metrics of the trials it re-runs:
        each is matched to the trial this tuner handed out by its identity and taken as that trial's result.

        Without a journal, finished trials cannot be placed: the experiment stops with the fix (see
        :meth:`_cannot_resume`) instead of handing out seeds that already ran.
        """
        self._wait_built()
        with self._lock:
            if data and not self._resumed:
                raise self._cannot_resume(f"{len(data)} finished trials were handed back but no journal of "
                                          "this tuner was loaded from NNI's checkpoint folder")
            record = None
            for entry in data:
                number = self._number_of(entry)
                if number is None:
                    _logger.warning("imported trial %s is none of this tuner's trials: ignored", entry.get("value"))
                    continue
                if number in self._ledger.reported:
                    continue
                job = entry.get("trialJobId")
                if job is None:  # a re-run trial's metric: the dispatcher passes no trial job id, NNI's DB has it
                    record = record or self._trial_record()
                    job = record.jobs.get(trial_key(self._ledger.served[number])) if record is not None else None
                self._record(Result(number, entry.get("value"), job))
            self._after_event()

    def _find_lost(self, record: TrialRecord) -> None:
        """Pending trials NNI does not re-run are served again: handed out but never submitted (the manager
        keeps waiting trials in memory), or re-run under another trial's parameters (#5726). Each of the
        latter costs a slot of maxTrialNumber (NNI re-runs a trial that already ran instead): say how to
        give it back, or the last trials never run."""
        served = self._ledger.served
        lost = [n for n in self._ledger.pending() if trial_key(served[n]) not in record.rerun]
        if lost:  # the trials that ended without reporting are the pending ones that failed, not lost ones
            ended = record.ended()
            lost = [n for n in lost if trial_key(served[n]) not in ended]
        if not lost:
            return
        _logger.warning("trials %s are not re-run by NNI: served again", [trial_key(served[n]) for n in lost])
        self._record(Lost(tuple(lost)))
        # NNI ends the experiment once maxTrialNumber trial jobs ran, counting the jobs of earlier runs; a re-run
        # fills its job's old slot. So it needs the jobs its DB holds plus one per trial still to hand out, the
        # lost ones included. A lost trial that had a job lost it to a re-run of a trial that already ran
        # (#5726; a trial whose FINAL metric came just before the stop is re-run in its own slot, costing none).
        needed = record.trials + self._ledger.to_come(self.num_trials)
        wasted = needed - (self.num_trials + self.extra_trials)
        if wasted <= 0:
            return
        _logger.warning("NNI 3.0 spent %d trial slot(s) on re-runs of trials that already ran (the manager recorded "
                        "another trial's parameters for them, upstream #5726)", wasted)
        added = raise_max_trial_number(needed)
        if added:
            self._write(Wasted(added))
            self.extra_trials += added
        elif added is None:
            _logger.warning("raise maxTrialNumber to %d, or the last trials never run: nnictl update trialnum %s "
                            "--value %d", needed, os.environ.get("NNI_EXP_ID", "<id>"), needed)

    def _cannot_resume(self, why: str) -> ConfigError:
        return ConfigError(
            f"{type(self).__name__} cannot resume this experiment: {why}, so it cannot know which search seeds, "
            "candidates and architectures it handed out. Start a new experiment with other search_seed/arch_seed "
            "values; re-submit the stopped experiment's interrupted trials by hand if needed (web UI 'Customized "
            "trial'; they continue from their checkpoints)")

    def _number_of(self, entry: dict[str, Any]) -> int | None:
        """The trial number of an imported trial (its metrics name it; see :func:`reported_key`)."""
        return self._ledger.number_of(reported_key(entry.get("parameter"), entry.get("value")))

    # ------------------------------------------------------------------------------ journal
    def _write(self, event: Event) -> None:
        """Journal ``event`` (the journal is started by the first event of a new experiment)."""
        if not self._journal_opened:
            # A new experiment: start the journal (overwriting any file a reused folder may hold).
            self._journal_opened = True
            directory = self.get_checkpoint_path()
            if directory is not None:
                self._journal = Journal(directory, type(self).__name__)
                self._journal.start()
        if self._journal is not None:
            self._journal.append(event)

    def _record(self, event: Event) -> None:
        """Journal one state change, then make it (the replay makes it the same way)."""
        self._write(event)
        self._ledger.apply(event)

    # ------------------------------------------------------------------------------ bookkeeping
    def _take(self) -> tuple[int, dict[str, Any]] | None:
        """The next trial number and its parameters: a lost trial first, else a new one (journaled before it
        leaves: write-ahead)."""
        ledger = self._ledger
        if ledger.lost:
            number = ledger.lost[0]
            self._record(Again(number))
        else:
            number = len(ledger.served)
            take = ledger.take()
            self._write(take)
            if take.params is None:
                return None
        params = ledger.served[number]
        _logger.info("trial %s -> %s %s seed %s", number, params["role"], params["method"],
                     params.get("search_seed", params.get("arch_index")))
        return number, params

    def _full(self) -> bool:
        """A resumed run holds requests while ``trialConcurrency`` trials are pending (module docstring)."""
        return self._slots is not None and self._ledger.unaccounted() >= self._slots

    def _raise_floor(self, failed: int) -> None:
        if failed > self._ledger.failures():
            self._record(Floor(failed))

    def _refresh_failures(self) -> None:
        """A resumed run: re-run trials that fail, and results NNI's dispatcher dropped, are known from NNI's DB
        only (module docstring)."""
        if self._rerun - self._ledger.reported and self._ledger.unaccounted() > 0:
            record = self._trial_record()
            if record is not None:
                self._import_dropped(record)
                self._raise_floor(record.failed)

    def _import_dropped(self, record: TrialRecord) -> None:
        """Take the FINAL metrics NNI's DB holds for re-run trials that never reached this tuner.

        NNI 3.0's dispatcher drops them when a re-run trial ends before it has processed the manager's list of
        re-run trials (``ADD_CUSTOMIZED_TRIAL_JOB``): the metric's parameter id is then neither a previous-run
        one nor one of this run (``nni/runtime/msg_dispatcher.py``: "Find unknown job parameter id"). Seen on a
        loaded machine, where the fresh dispatcher took 20 s to start and tabular re-runs took 4 s; the tuner
        then waited forever for a result the manager had stored.
        """
        for number in sorted(self._rerun - self._ledger.reported):
            key = trial_key(self._ledger.served[number])
            if key in record.finals:
                _logger.warning("the result of re-run trial %s reached NNI's DB but not this tuner: taken from the DB",
                                key)
                self._record(Result(number, record.finals[key], record.jobs.get(key)))

    def _trial_record(self) -> TrialRecord | None:
        """What NNI's trial DB (the checkpoint folder's sibling ``db/nni.sqlite``) says, if it is there."""
        directory = self.get_checkpoint_path()
        return read_trial_record(Path(directory).parent / "db" / "nni.sqlite") if directory is not None else None

    def _after_event(self) -> None:
        self._refresh_failures()
        self._serve_owed()

    def _serve_owed(self) -> None:
        while self._owed and self._send is not None and not self._full():
            taken = self._take()
            if taken is None:
                return
            parameter_id = self._owed.popleft()
            self._ids[parameter_id] = taken[0]
            self._send(parameter_id, taken[1])

    # ------------------------------------------------------------------------------ subclass hooks
    def _next_trial(self, number: int) -> dict[str, Any] | None:
        raise NotImplementedError

    def _on_result(self, number: int, params: dict[str, Any], value: Any, trial_job_id: str | None) -> None:
        raise NotImplementedError

    def _on_silent(self, silent: dict[int, dict[str, Any]]) -> None:
        """``silent``: trial number -> parameters of submitted trials that never reported (they failed).

        Called again at later accountings with the same trials: handle each one once.
        """
        raise NotImplementedError
