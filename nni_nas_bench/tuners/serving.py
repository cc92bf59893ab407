"""What every tuner of a search experiment shares: NNI's request protocol, owed parameter ids, failure
accounting, and the parameters of the trials every method's experiment has (searched, random).

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
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any, Callable

from nni import NoMoreTrialError
from nni.tuner import Tuner

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.training import from_dict
from nni_nas_bench.tuners.random_baseline import random_trial_parameters

_logger = logging.getLogger(__name__)
SendTrial = Callable[[int, dict[str, Any]], None]


def count_arg(name: str, value: Any, minimum: int) -> int:
    """``value`` if it is an integer >= ``minimum``, else a ConfigError naming the classArg."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class ServingTuner(Tuner):
    """Base of tuners whose trials become ready over time (see the module docstring).

    Subclasses implement :meth:`_next_trial` (the parameters for a parameter id, or None when nothing is
    ready), :meth:`_on_result` (a FINAL metric, by its true parameter id), :meth:`_on_silent` (the
    submitted trials that never reported once every trial is accounted for: they failed) and
    ``num_trials``. Common classArgs (dataset, searches, random trials, space, final protocol) are
    validated by :meth:`_setup`.
    """

    # The manager ends the experiment after maxTrialNumber trials; this tuner submits exactly num_trials and
    # then owes nothing, so a larger maxTrialNumber would never reach DONE (nas-bench check rejects it).
    exact_trials = True

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._params: dict[int, dict[str, Any]] = {}  # parameter id -> parameters served
        self._reported: set[int] = set()              # parameter ids that reported a FINAL metric
        self._failed_ends = 0
        self._owed: deque[int] = deque()              # requested parameter ids not served yet
        self._send: SendTrial | None = None
        self._builder: threading.Thread | None = None
        self._build_error: BaseException | None = None

    def _build_in_background(self, build: Callable[[], None]) -> None:
        """Run ``build`` (the heavy part of ``__init__``) in a thread; see the module docstring."""

        def run() -> None:
            try:
                build()
            except BaseException as exc:  # re-raised by _wait_built in the caller's thread
                self._build_error = exc

        self._builder = threading.Thread(target=run, name=f"{type(self).__name__} setup", daemon=True)
        self._builder.start()

    def _wait_built(self) -> None:
        """Wait for :meth:`_build_in_background`'s work; raise its error, if any."""
        if self._builder is not None:
            self._builder.join()
        if self._build_error is not None:
            raise self._build_error

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
        self.space_name, self.space_args = space, dict(space_args or {})
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
    def _common(self, role: str) -> dict[str, Any]:
        return {"role": role, "method": self.method, "dataset": self.dataset, "space": self.space_name,
                "space_args": self.space_args}

    def _random_params(self, k: int) -> dict[str, Any]:
        # The random baseline's own parameters: its rows pool with any random baseline of the same space,
        # dataset and protocol, and the analysis pairs them with the searched rows of this experiment.
        return random_trial_parameters(self.space, self.space_name, self.space_args, self.dataset, self.arch_seed, k,
                                       self.protocol)

    def _searched_params(self, search_seed: int, genotype: str, source_trial: str | None) -> dict[str, Any]:
        params = {**self._common("searched"), "search_seed": search_seed, "genotype": genotype,
                  "protocol": self.protocol}
        if source_trial is not None:
            params["source_trial"] = source_trial
        return params

    def _stand_in_params(self, search_seed: int, reason: str) -> dict[str, Any]:
        """A searched trial for a search that found nothing: the trial ends FAILED at once, naming why."""
        return {**self._common("searched"), "search_seed": search_seed, "protocol": self.protocol,
                "search_failed": reason}

    # ------------------------------------------------------------------------------ NNI callbacks
    def generate_multiple_parameters(self, parameter_id_list: list[int], **kwargs: Any) -> list[dict[str, Any]]:
        """Serve what is ready; keep the other ids to serve later (see the module docstring)."""
        self._wait_built()
        with self._lock:
            if kwargs.get("st_callback") is not None:
                self._send = kwargs["st_callback"]
            served = []
            for position, parameter_id in enumerate(parameter_id_list):
                params = self._take(parameter_id)
                if params is None:
                    # Keep only as many ids as trials are still to come; the rest are not needed.
                    room = self.num_trials - len(self._params) - len(self._owed)
                    self._owed.extend(parameter_id_list[position: position + max(room, 0)])
                    break
                served.append(params)
            if self._owed:
                _logger.info("nothing ready for parameter ids %s: waiting for results", list(self._owed))
            return served

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict[str, Any]:
        """One trial, if one is ready (NNI calls :meth:`generate_multiple_parameters`; this is for direct use)."""
        self._wait_built()
        with self._lock:
            params = self._take(parameter_id)
            if params is None:
                raise NoMoreTrialError("nothing ready: all trials submitted, or waiting for results")
            return params

    def receive_trial_result(self, parameter_id: int, parameters: dict[str, Any], value: Any, **kwargs: Any) -> None:
        """A FINAL metric, under the parameter id the trial really ran."""
        self._wait_built()
        with self._lock:
            if parameter_id in self._reported:
                return
            self._reported.add(parameter_id)
            if parameter_id in self._params:
                self._on_result(parameter_id, self._params[parameter_id], value, kwargs.get("trial_job_id"))
            self._resolve_failures()
            self._serve_owed()

    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        """Count failed trials (their parameter id may be another trial's, so it is not used)."""
        self._wait_built()
        with self._lock:
            if not success:
                self._failed_ends += 1
                self._resolve_failures()
                self._serve_owed()

    def update_search_space(self, search_space: dict[str, Any]) -> None:
        """The space comes from classArgs; NNI's searchSpace field is unused."""

    def import_data(self, data: list[dict[str, Any]]) -> None:
        """Refuse finished trials from an earlier run (``nnictl resume`` / ``experiment import``), loudly.

        This tuner does not rebuild its searches' state from them yet, so going on would start every
        search again with the seeds that already ran: duplicate rows and days of wasted GPU time, silently.
        An error ends the experiment with the reason in ``dispatcher.log``; re-submitting the interrupted
        trials (each resumes from its checkpoint) is what works today.
        """
        if data:
            raise ConfigError(
                f"{type(self).__name__} cannot resume an experiment yet ({len(data)} finished trials were handed "
                "back): it would re-run searches with seeds that already ran. Re-submit the interrupted trials "
                "of the stopped experiment instead (web UI or REST; they continue from their checkpoints), or "
                "start a new experiment with other search_seed/arch_seed values.")

    # ------------------------------------------------------------------------------ bookkeeping
    def _take(self, parameter_id: int) -> dict[str, Any] | None:
        params = self._next_trial(parameter_id)
        if params is not None:
            self._params[parameter_id] = params
            _logger.info("parameter %s -> %s %s seed %s", parameter_id, params["role"], params["method"],
                         params.get("search_seed", params.get("arch_index")))
        return params

    def _resolve_failures(self) -> None:
        """When every submitted trial either reported or failed, the silent ones are the failed ones."""
        if len(self._params) - len(self._reported) - self._failed_ends > 0:
            return
        silent = {pid: p for pid, p in self._params.items() if pid not in self._reported}
        if silent:
            self._on_silent(silent)

    def _serve_owed(self) -> None:
        while self._owed and self._send is not None:
            params = self._take(self._owed[0])
            if params is None:
                return
            self._send(self._owed.popleft(), params)

    # ------------------------------------------------------------------------------ subclass hooks
    def _next_trial(self, parameter_id: int) -> dict[str, Any] | None:
        raise NotImplementedError

    def _on_result(self, parameter_id: int, params: dict[str, Any], value: Any, trial_job_id: str | None) -> None:
        raise NotImplementedError

    def _on_silent(self, silent: dict[int, dict[str, Any]]) -> None:
        """``silent``: parameter id -> parameters of submitted trials that never reported (they failed).

        Called again at later accountings with the same trials: handle each one once.
        """
        raise NotImplementedError
