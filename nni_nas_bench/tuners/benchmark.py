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

How the tuner waits for searches, serves the trials it owes later, tells failed searches apart
without trusting NNI's trial-end parameter ids (upstream #5726) and continues after ``nnictl resume``
(finished searches keep their genotypes, their final trainings are served once, no seed runs twice) is
:mod:`nni_nas_bench.tuners.serving` (shared with :class:`~nni_nas_bench.tuners.MultiTrialTuner`). A search
that never reported (it failed) gets a stand-in ``searched`` trial with ``search_failed`` set, which the
trial entry point ends as FAILED at once: the experiment reaches ``DONE`` and the DB shows which search
seed produced nothing.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from nni_nas_bench.contract import Role
from nni_nas_bench.errors import ConfigError, NasBenchError, mapping_arg
from nni_nas_bench.tuners.serving import ServingTuner
from nni_nas_bench.tuners.validators import check_in_dispatcher, check_names

_logger = logging.getLogger(__name__)


class BenchmarkTuner(ServingTuner):
    """classArgs:

    - ``method``: a registered strategy (``nni_nas_bench.strategies.list_strategies()``);
    - ``dataset``; ``num_searches`` (K, default 8); ``num_random`` (default 8);
    - ``search_seed``: search ``i`` runs with seed ``search_seed + i``;
    - ``arch_seed``: random architecture ``k`` is drawn from ``(arch_seed, k)`` (as the random baseline);
    - ``space`` (default 'darts') and ``space_args``;
    - ``search``: the method's settings (its search protocol), e.g. ``{order: 2, epochs: 50}``;
    - ``protocol``: the final-training protocol of searched and random trials (a preset name or
      ``{preset: ..., <setting>: ...}``); ``train_seed`` overrides its seed;
    - ``tabular`` (optional mapping): put into the searched and random trials' parameters, which then look
      their architecture up in a table instead of training it (NAS-Bench-201); searches still run for real.
    """

    def __init__(self, method: str, dataset: str, num_searches: int = 8, num_random: int = 8, search_seed: int = 0,
                 arch_seed: int = 0, space: str = "darts", space_args: dict[str, Any] | None = None,
                 search: dict[str, Any] | None = None, protocol: Any = "darts", train_seed: int | None = None,
                 tabular: dict[str, Any] | None = None):
        super().__init__()
        check_names(method, dataset, space)  # at once: an unknown name ends the dispatcher before it connects
        # The space and the strategy import torch: built in a thread, so that NNI's dispatcher connects within
        # the manager's 10 s (see nni_nas_bench.tuners.serving; benchmarks/tuner_connect.py measures it).
        self._build_in_background(lambda: self._build(
            method, dataset, num_searches, num_random, search_seed, arch_seed, space, space_args, search, protocol,
            train_seed, tabular))
        check_in_dispatcher(self)  # under nnictl: maxTrialNumber and GPU settings too; a build error ends it

    def _build(self, method: str, dataset: str, num_searches: int, num_random: int, search_seed: int, arch_seed: int,
               space: str, space_args: dict[str, Any] | None, search: dict[str, Any] | None, protocol: Any,
               train_seed: int | None, tabular: dict[str, Any] | None) -> None:
        """Validate every classArg (a bad YAML fails at the first request, before any trial) and queue the
        searches and random trials."""
        from nni_nas_bench.strategies import create_strategy

        self._setup(method, dataset, num_searches, num_random, search_seed, arch_seed, space, space_args, protocol,
                    train_seed)
        self.search_settings = mapping_arg("search", search)
        if "seed" in self.search_settings:
            raise ConfigError("search settings must not hold 'seed': use the tuner's search_seed")
        strategy = create_strategy(method, seed=self.search_seed, **self.search_settings)  # raises on bad settings
        if getattr(strategy, "kind", None) == "multi_trial":
            raise ConfigError(f"{method!r} is a multi-trial method: use nni_nas_bench.tuners.MultiTrialTuner")
        if hasattr(strategy, "check_space"):
            strategy.check_space(self.space)  # a method/space mismatch fails at nnictl create, not in a search trial
        self._ready: deque[dict[str, Any]] = deque(self._search_params(i) for i in range(self.num_searches))
        self._ready.extend(self._random_params(k) for k in range(self.num_random))
        self._answered: set[int] = set()  # trial numbers of searches with a genotype or a stand-in
        if tabular is not None and not isinstance(tabular, dict):
            raise ConfigError(f"tabular must be a mapping of table settings, got {tabular!r}")
        self.tabular = tabular

    @property
    def num_trials(self) -> int:
        """Trials of the experiment: K searches + K final trainings + the random ones (= maxTrialNumber)."""
        self._wait_built()
        return 2 * self.num_searches + self.num_random

    # ------------------------------------------------------------------------------ parameters
    def _search_params(self, i: int) -> dict[str, Any]:
        return {**self._common(Role.SEARCH), "search_seed": self.search_seed + i, "search": self.search_settings}

    # ------------------------------------------------------------------------------ serving hooks
    def _next_trial(self, number: int) -> dict[str, Any] | None:
        params = self._ready.popleft() if self._ready else None
        if params is not None and self.tabular is not None and params["role"] != Role.SEARCH:
            params = {**params, "tabular": self.tabular}
        return params

    def _on_result(self, number: int, params: dict[str, Any], value: Any, trial_job_id: str | None) -> None:
        """A search's FINAL metric: its genotype becomes the next trial to serve."""
        if params["role"] == Role.SEARCH and number not in self._answered:
            self._answered.add(number)
            self._ready.appendleft(self._from_search_metrics(params["search_seed"], value, trial_job_id))

    def _on_silent(self, silent: dict[int, dict[str, Any]]) -> None:
        """Searches that never reported failed: a stand-in trial records each."""
        for number, params in silent.items():
            if params["role"] == Role.SEARCH and number not in self._answered:
                self._answered.add(number)
                seed = params["search_seed"]
                _logger.warning("search seed %s (trial %s) failed: a stand-in trial records it", seed, number)
                self._ready.appendleft(self._stand_in_params(seed, f"search seed {seed} failed"))

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
