"""A multi-trial method's cell of the benchmark table as ONE NNI experiment, its search visible trial by trial.

SPEC's protocol for every method: K searches (search seeds), the final training of each found
architecture, and K random architectures trained the same way. For a multi-trial method (random search,
regularized evolution, NSGA-Net, WeakNAS, REINFORCE, TPE) each evaluation of a search is itself a
training, so this tuner makes each one an NNI trial, and the web UI and ``nni.sqlite`` show the searches
as they go:

- ``role: candidate`` — evaluation ``candidate_index`` of search ``search_seed``: the architecture the
  strategy asked for, trained with ``candidate_protocol`` (the method's short search protocol) on the
  search split (train half / validation half of the training set; the split and the training seed are
  the search seed, so each search has its own); it reports the validation accuracy (and FLOPs);
- ``role: searched`` — when a search's budget is spent and all its results are in, its final pick
  (:meth:`~nni_nas_bench.strategies.multi_trial.MultiTrialStrategy.best`) trained with ``protocol``;
  ``source_trial`` is the NNI id of the candidate trial that evaluated it. A search whose candidates
  all failed gets a stand-in that ends FAILED at once (``search_failed``);
- ``role: random`` — the random baseline's architectures (``random_trial_parameters``), same protocol.

The K searches run side by side: a free slot goes first to a searched trial that is ready, then to the
next candidate of the searches in turn (a strategy may have none to give: NSGA-II waits for its
generation, WeakNAS for its batch), then to a random trial. The strategies run in this (the tuner's)
process with the ask/tell interface; results come back as FINAL metrics under their true parameter
id. A failed candidate (see :mod:`nni_nas_bench.tuners.serving` for how a failure is recognised
without trusting NNI's trial-end ids) is told to its strategy as a failure: its ask stays spent, so the
budget, and ``maxTrialNumber = K × budget + K + num_random``, hold.

With ``tabular`` (a mapping) every trial's parameters carry it, and the trial entry point looks the
architecture up in a table instead of training it (NAS-Bench-201 mode); the rest is unchanged.

``nnictl resume``: the strategies' state is not saved as such; the serving journal replays every ask and
tell in the recorded order into freshly seeded strategies, so a resumed search proposes exactly what the
uninterrupted one would have (:mod:`nni_nas_bench.tuners.serving`).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from nni_nas_bench.contract import Role
from nni_nas_bench.errors import ConfigError, TrialFailedError, mapping_arg
from nni_nas_bench.training import from_dict
from nni_nas_bench.tuners.serving import ServingTuner
from nni_nas_bench.tuners.validators import check_in_dispatcher, check_names

_logger = logging.getLogger(__name__)


class MultiTrialTuner(ServingTuner):
    """classArgs:

    - ``method``: a multi-trial strategy (``random_search``, ``evolution``, ``nsganet``, ``weaknas``,
      ``reinforce``, ``tpe``); ``search``: its settings, ``budget`` included (candidates per search);
    - ``dataset``; ``num_searches`` (K, default 8), search ``i`` with seed ``search_seed + i``;
    - ``num_random`` (default 8) and ``arch_seed``: the random baseline's architectures;
    - ``space`` (default 'darts') and ``space_args``;
    - ``candidate_protocol``: how candidates are trained (preset name or ``{preset: ..., <setting>: ...}``;
      its seed is replaced by the search seed; default: NSGA-Net's, ``nsganet_search``);
    - ``candidate_space_args``: space settings that differ for candidates (NSGA-Net's search trained plain
      networks: ``{squeeze_excitation: false, filter_increment: null}``; the decisions, hence the
      genotypes, are the same);
    - ``protocol``: the final training of searched and random trials; ``train_seed`` overrides its seed;
    - ``tabular`` (optional mapping): put into every trial's parameters (table lookup instead of training).
    """

    def __init__(self, method: str, dataset: str, num_searches: int = 8, num_random: int = 8, search_seed: int = 0,
                 arch_seed: int = 0, space: str = "darts", space_args: dict[str, Any] | None = None,
                 search: dict[str, Any] | None = None, candidate_protocol: Any = "nsganet_search",
                 protocol: Any = "darts", train_seed: int | None = None,
                 candidate_space_args: dict[str, Any] | None = None, tabular: dict[str, Any] | None = None):
        super().__init__()
        check_names(method, dataset, space)  # at once: an unknown name ends the dispatcher before it connects
        # The space and the strategies import torch and nni.nas: built in a thread, so that NNI's dispatcher
        # connects within the manager's 10 s (see nni_nas_bench.tuners.serving).
        self._build_in_background(lambda: self._build(
            method, dataset, num_searches, num_random, search_seed, arch_seed, space, space_args, search,
            candidate_protocol, protocol, train_seed, candidate_space_args, tabular))
        check_in_dispatcher(self)  # under nnictl: a build error ends the experiment (NNI would wait forever)

    def _build(self, method: str, dataset: str, num_searches: int, num_random: int, search_seed: int, arch_seed: int,
               space: str, space_args: dict[str, Any] | None, search: dict[str, Any] | None, candidate_protocol: Any,
               protocol: Any, train_seed: int | None, candidate_space_args: dict[str, Any] | None,
               tabular: dict[str, Any] | None) -> None:
        """Validate every classArg and build the K strategies (a bad YAML fails at the first request)."""
        from nni_nas_bench.strategies import create_strategy, get_strategy_class
        from search_spaces import create_space

        if tabular is not None and not isinstance(tabular, dict):
            raise ConfigError(f"tabular must be a mapping of table settings, got {tabular!r}")
        self._setup(method, dataset, num_searches, num_random, search_seed, arch_seed, space, space_args, protocol,
                    train_seed)
        if getattr(get_strategy_class(method), "kind", None) != "multi_trial":
            raise ConfigError(f"{method!r} is not a multi-trial method: use nni_nas_bench.tuners.BenchmarkTuner")
        self.search_settings = mapping_arg("search", search)
        if "seed" in self.search_settings:
            raise ConfigError("search settings must not hold 'seed': use the tuner's search_seed")
        self.candidate_protocol = from_dict(candidate_protocol)
        self.candidate_space_args = {**self.space_args, **mapping_arg("candidate_space_args", candidate_space_args)}
        create_space(space, **self.candidate_space_args)  # raises on bad settings
        self.tabular = tabular
        self.searches = [create_strategy(method, seed=self.search_seed + i, **self.search_settings)
                         for i in range(self.num_searches)]
        for strategy in self.searches:
            strategy.start(self.space)
        self._asked = [0] * self.num_searches          # candidates asked per search (= next candidate_index)
        self._finished = [False] * self.num_searches   # searched trial (or stand-in) queued
        self._turn = 0                                 # the search asked first for the next free slot
        self._candidates: dict[int, tuple[int, dict[str, Any]]] = {}  # pending: trial number -> (search, sample)
        self._ready: deque[dict[str, Any]] = deque()   # searched trials and stand-ins to serve first
        self._random_left = deque(range(self.num_random))

    @property
    def budget(self) -> int:
        """Candidates per search."""
        self._wait_built()
        return self.searches[0].budget

    @property
    def num_trials(self) -> int:
        """K × budget candidates + K searched + the random ones (= maxTrialNumber)."""
        self._wait_built()
        return self.num_searches * (self.budget + 1) + self.num_random

    # ------------------------------------------------------------------------------ parameters
    def _candidate_params(self, i: int, sample: dict[str, Any]) -> dict[str, Any]:
        seed = self.search_seed + i
        return {**self._common(Role.CANDIDATE), "space_args": self.candidate_space_args, "search_seed": seed,
                "candidate_index": self._asked[i],
                "genotype": self.space.to_genotype(sample).to_text(),
                "protocol": self.candidate_protocol.replace(seed=seed).to_dict(),
                **self.searches[i].candidate_settings()}

    # ------------------------------------------------------------------------------ serving hooks
    def _next_trial(self, number: int) -> dict[str, Any] | None:
        params = self._next_params(number)
        if params is not None and self.tabular is not None:
            params["tabular"] = self.tabular
        return params

    def _next_params(self, number: int) -> dict[str, Any] | None:
        if self._ready:
            return self._ready.popleft()
        for step in range(self.num_searches):
            i = (self._turn + step) % self.num_searches
            sample = self.searches[i].ask()
            if sample is not None:
                self._turn = (i + 1) % self.num_searches
                params = self._candidate_params(i, sample)
                self._asked[i] += 1
                self._candidates[number] = (i, sample)
                return params
        if self._random_left:
            return self._random_params(self._random_left.popleft())
        return None

    def _on_result(self, number: int, params: dict[str, Any], value: Any, trial_job_id: str | None) -> None:
        """A candidate's metrics go to its strategy (with the candidate's trial id, for ``source_trial``)."""
        if number not in self._candidates:
            return  # not a candidate, or one already counted as failed
        i, sample = self._candidates.pop(number)
        metrics = dict(value) if isinstance(value, dict) else {"default": value}
        metrics.update(candidate_index=params["candidate_index"], trial_job_id=trial_job_id)
        self.searches[i].tell(sample, metrics)
        self._finish_if_done(i)

    def _on_silent(self, silent: dict[int, dict[str, Any]]) -> None:
        """Candidates that never reported failed: their strategies are told so (the ask stays spent)."""
        for number, params in silent.items():
            if number in self._candidates:
                i, sample = self._candidates.pop(number)
                _logger.warning("candidate %s of search seed %s (trial %s) failed", params["candidate_index"],
                                self.search_seed + i, number)
                self.searches[i].tell(sample, None)
                self._finish_if_done(i)

    def _finish_if_done(self, i: int) -> None:
        """Budget spent and every result in: queue the final training of the search's pick."""
        strategy, seed = self.searches[i], self.search_seed + i
        if self._finished[i] or not strategy.done() or strategy.num_pending:
            return
        self._finished[i] = True
        try:
            sample, metrics = strategy.best()
        except TrialFailedError as exc:
            self._ready.append(self._stand_in_params(seed, str(exc)))
            return
        genotype = self.space.to_genotype(sample).to_text()
        _logger.info("search seed %s done: %s (candidate %s, %.2f)", seed, genotype, metrics.get("candidate_index"),
                     metrics["default"])
        self._ready.append(self._searched_params(seed, genotype, metrics.get("trial_job_id")))
