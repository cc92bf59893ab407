"""One cell of the benchmark's table as ONE NNI experiment: K searches, their final trainings, K random.

SPEC: run a method's search K times (K search seeds), train each found genotype from scratch with the
final-training protocol, and train K architectures sampled uniformly from the same space with the same
protocol and training seed. This tuner turns that into trials of a single experiment, so local or remote
GPUs run them in parallel and one ``nni.sqlite`` holds the whole comparison:

- ``role: search`` — one per search seed ``search_seed + i``; reports the genotype it found;
- ``role: searched`` — the final training of a search trial's genotype, with ``source_trial`` (the
  search trial's NNI id) and ``search_seed``; submitted as soon as that search reports;
- ``role: random`` — architecture ``k`` drawn from ``architecture_seed(arch_seed, k)``, exactly the
  architecture ``k`` of :class:`~nni_nas_bench.tuners.random_baseline.RandomBaselineTuner` with the same
  seed, trained with the same protocol.

How the tuner waits (NNI 3.0, read from ``nni/runtime/msg_dispatcher.py`` and
``nni_node/core/nnimanager.js``): the manager asks the tuner for trials (``REQUEST_TRIAL_JOBS``) only at
the start (``trialConcurrency`` of them) and then one per trial that ends. A tuner that has nothing to
give yet must not raise ``NoMoreTrialError`` and forget the request: the dispatcher then answers
``NO_MORE_TRIAL_JOBS``, the manager shows ``TUNER_NO_MORE_TRIAL`` and never asks for that slot again.
That status is not final, though: the manager still accepts a ``NEW_TRIAL_JOB`` afterwards (it logs a
warning and goes back to ``RUNNING``), and it only ends the experiment (``DONE``) when ``maxTrialNumber``
trials were submitted and all of them ended. So this tuner keeps the parameter ids it could not serve
("owed" ids) and serves them later through the ``st_callback`` that NNI's dispatcher passes to
``generate_multiple_parameters`` (it sends ``NEW_TRIAL_JOB`` with that id), as soon as a search reports
its genotype. ``maxTrialNumber`` must equal :attr:`BenchmarkTuner.num_trials` (2K + K_random): the
manager ends the experiment only when that many trials were submitted.

Which search failed: ``trial_end`` names a parameter id taken from the manager's record of the trial,
and NNI 3.0's local training service hands parameters to trials from a shared queue, so with several
trials at once that record can be another trial's (upstream #5726). The tuner therefore never trusts
that id. Every successful trial reports a FINAL metric (by its true parameter id) and a failed one
does not, so when all submitted trials are accounted for as "reported" or "failed" (counted, not
identified), the searches that never reported are the failed ones. Each gets a stand-in ``searched``
trial with ``search_failed`` set, which the trial entry point ends as FAILED at once: the experiment
reaches ``DONE`` and the DB shows which search seed produced nothing.

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

from nni_nas_bench.errors import ConfigError, NasBenchError
from nni_nas_bench.training import from_dict
from nni_nas_bench.tuners.random_baseline import random_trial_parameters

_logger = logging.getLogger(__name__)
SendTrial = Callable[[int, dict[str, Any]], None]


def _count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class BenchmarkTuner(Tuner):
    """classArgs:

    - ``method``: a registered strategy (``nni_nas_bench.strategies.list_strategies()``);
    - ``dataset``; ``num_searches`` (K, default 8); ``num_random`` (default 8);
    - ``search_seed``: search ``i`` runs with seed ``search_seed + i``;
    - ``arch_seed``: random architecture ``k`` is drawn from ``(arch_seed, k)`` (as the random baseline);
    - ``space`` (default 'darts') and ``space_args``;
    - ``search``: the method's settings (its search protocol), e.g. ``{order: 2, epochs: 50}``;
    - ``protocol``: the final-training protocol of searched and random trials (a preset name or
      ``{preset: ..., <setting>: ...}``); ``train_seed`` overrides its seed.
    """

    def __init__(self, method: str, dataset: str, num_searches: int = 8, num_random: int = 8, search_seed: int = 0,
                 arch_seed: int = 0, space: str = "darts", space_args: dict[str, Any] | None = None,
                 search: dict[str, Any] | None = None, protocol: Any = "darts", train_seed: int | None = None):
        from nni_nas_bench.data import get_dataset_info
        from nni_nas_bench.strategies import create_strategy
        from search_spaces import create_space

        # Everything is validated here, so a bad YAML fails when the experiment starts, not in a trial.
        self.method = method
        self.dataset = get_dataset_info(dataset).name
        self.num_searches = _count("num_searches", num_searches, 1)
        self.num_random = _count("num_random", num_random, 0)
        self.search_seed = _count("search_seed", search_seed, 0)
        self.arch_seed = _count("arch_seed", arch_seed, 0)
        self.space_name, self.space_args = space, dict(space_args or {})
        self.space = create_space(space, **self.space_args)
        self.search_settings = dict(search or {})
        if "seed" in self.search_settings:
            raise ConfigError("search settings must not hold 'seed': use the tuner's search_seed")
        create_strategy(method, seed=self.search_seed, **self.search_settings)  # raises on bad settings
        final = from_dict(protocol)
        if train_seed is not None:
            final = final.replace(seed=train_seed)
        self.protocol = final.to_dict()

        self._lock = threading.RLock()
        self._ready: deque[dict[str, Any]] = deque(self._search_params(i) for i in range(self.num_searches))
        self._ready.extend(self._random_params(k) for k in range(self.num_random))
        self._searches: dict[int, int] = {}      # parameter id of a search trial -> its search seed
        self._answered: set[int] = set()         # search parameter ids with a genotype or a stand-in
        self._reported: set[int] = set()         # parameter ids that reported a FINAL metric
        self._failed_ends = 0
        self._submitted = 0
        self._owed: deque[int] = deque()         # requested parameter ids not served yet
        self._send: SendTrial | None = None

    @property
    def num_trials(self) -> int:
        """Trials of the experiment: K searches + K final trainings + the random ones (= maxTrialNumber)."""
        return 2 * self.num_searches + self.num_random

    # ------------------------------------------------------------------------------ parameters
    def _common(self, role: str) -> dict[str, Any]:
        return {"role": role, "method": self.method, "dataset": self.dataset, "space": self.space_name,
                "space_args": self.space_args}

    def _search_params(self, i: int) -> dict[str, Any]:
        return {**self._common("search"), "search_seed": self.search_seed + i, "search": self.search_settings}

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
        return {**self._common("searched"), "search_seed": search_seed, "protocol": self.protocol,
                "search_failed": reason}

    # ------------------------------------------------------------------------------ NNI callbacks
    def generate_multiple_parameters(self, parameter_id_list: list[int], **kwargs: Any) -> list[dict[str, Any]]:
        """Serve what is ready; keep the other ids to serve later (see the module docstring)."""
        with self._lock:
            if kwargs.get("st_callback") is not None:
                self._send = kwargs["st_callback"]
            served = []
            for position, parameter_id in enumerate(parameter_id_list):
                if not self._ready:
                    # Keep only as many ids as trials are still to come; the rest are not needed.
                    room = self.num_trials - self._submitted - len(self._owed)
                    self._owed.extend(parameter_id_list[position: position + max(room, 0)])
                    break
                served.append(self._take(parameter_id))
            if self._owed:
                _logger.info("nothing ready for parameter ids %s: waiting for searches", list(self._owed))
            return served

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict[str, Any]:
        """One trial, if one is ready (NNI calls :meth:`generate_multiple_parameters`; this is for direct use)."""
        with self._lock:
            if not self._ready:
                raise NoMoreTrialError("nothing ready: all trials submitted, or waiting for searches")
            return self._take(parameter_id)

    def receive_trial_result(self, parameter_id: int, parameters: dict[str, Any], value: Any, **kwargs: Any) -> None:
        """A FINAL metric: a search's genotype becomes the next trial to serve."""
        with self._lock:
            self._reported.add(parameter_id)
            if parameter_id in self._searches and parameter_id not in self._answered:
                seed = self._searches[parameter_id]
                self._answered.add(parameter_id)
                self._ready.appendleft(self._from_search_metrics(seed, value, kwargs.get("trial_job_id")))
            self._resolve_failures()
            self._serve_owed()

    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        """Count failed trials (their parameter id may be another trial's, so it is not used).

        A trial that reported FINAL and then exited non-zero counts twice and may make a running search
        look failed; that costs one search's result, whereas not counting would risk a hang.
        """
        with self._lock:
            if not success:
                self._failed_ends += 1
                self._resolve_failures()
                self._serve_owed()

    def update_search_space(self, search_space: dict[str, Any]) -> None:
        """The space comes from classArgs; NNI's searchSpace field is unused."""

    # ------------------------------------------------------------------------------ bookkeeping
    def _take(self, parameter_id: int) -> dict[str, Any]:
        params = self._ready.popleft()
        self._submitted += 1
        if params["role"] == "search":
            self._searches[parameter_id] = params["search_seed"]
        _logger.info("parameter %s -> %s %s seed %s", parameter_id, params["role"], params["method"],
                     params.get("search_seed", params.get("arch_index")))
        return params

    def _from_search_metrics(self, seed: int, value: Any, trial_job_id: str | None) -> dict[str, Any]:
        """The searched trial of a search's metrics, or a stand-in when they hold no valid genotype."""
        text = value.get("genotype") if isinstance(value, dict) else None
        if not isinstance(text, str):
            return self._stand_in_params(seed, f"search seed {seed} reported no genotype")
        try:
            genotype = self.space.parse(text).to_text()
        except NasBenchError as exc:
            return self._stand_in_params(seed, f"search seed {seed} reported an invalid genotype: {exc}")
        if isinstance(value, dict) and value.get("search_seed", seed) != seed:
            _logger.warning("search trial reported seed %s, tuner submitted %s", value.get("search_seed"), seed)
        return self._searched_params(seed, genotype, trial_job_id)

    def _resolve_failures(self) -> None:
        """When every submitted trial either reported or failed, the silent searches are the failed ones."""
        unaccounted = self._submitted - len(self._reported) - self._failed_ends
        if unaccounted > 0:
            return
        for parameter_id, seed in self._searches.items():
            if parameter_id not in self._answered:
                self._answered.add(parameter_id)
                _logger.warning("search seed %s (parameter %s) failed: a stand-in trial records it", seed,
                                parameter_id)
                self._ready.appendleft(self._stand_in_params(seed, f"search seed {seed} failed"))

    def _serve_owed(self) -> None:
        while self._owed and self._ready and self._send is not None:
            parameter_id = self._owed.popleft()
            self._send(parameter_id, self._take(parameter_id))
