"""Multi-trial NAS: a strategy proposes architectures one at a time and learns from their evaluations.

Every multi-trial method of the suite (random search, regularized evolution, NSGA-Net, WeakNAS,
REINFORCE, TPE) is the same loop — ask for a sample, evaluate it, tell the result — over any space that
is a product of categorical decisions (``space.mutables``; see ``/work/coord/MULTI_TRIAL.md``). This
module holds what they share, so each method writes only its proposal rule (``_propose``) and what it
learns from a result (``_observe``):

- the generic operators on samples: mutation resamples ONE decision to a different value, crossover
  picks each decision from one of two parents, and the predictor encoding is one-hot per decision;
  random samples always come from the space's own uniform sampler (SPEC: never a private sampler);
- the bookkeeping: budget of asks, pending samples, history with best-so-far, the final pick;
- three drivers of the same ask/tell core: :meth:`MultiTrialStrategy.search` (in-process, for tests,
  notebooks and tabular benchmarks), :meth:`MultiTrialStrategy._run` (NNI's engine: each sample becomes a
  frozen model submitted to the engine), and :class:`nni_nas_bench.tuners.MultiTrialTuner` (each sample
  becomes an NNI trial of an ``nnictl`` experiment).

A failed evaluation (metrics None, or ``default`` missing / NaN) still spends its ask: a method is
told ``None`` and must not count it as a result. All randomness comes from ``self.rng``, created from
``seed`` by :meth:`start`, so the same seed and the same evaluations give the same history.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from nni.nas.strategy.base import Strategy

from nni_nas_bench.errors import ConfigError, TrialFailedError
from nni_nas_bench.strategies.checks import check_int

_logger = logging.getLogger(__name__)
Sample = dict[str, Any]
Metrics = dict[str, Any]


def accuracy_of(metrics: Metrics | None) -> float | None:
    """The accuracy (``default``) of an evaluation, or None when it failed (no metrics, None or NaN)."""
    if not isinstance(metrics, dict):
        return None
    value = metrics.get("default")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


@dataclass
class MultiTrialResult:
    """The outcome of one search: the final pick and every evaluation in the order it was told."""

    best_sample: Sample
    best_metrics: Metrics
    genotype: Any
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def num_queries(self) -> int:
        """Evaluations told to the strategy (failed ones included)."""
        return len(self.history)


class MultiTrialStrategy(Strategy):
    """Base of the multi-trial methods: ask/tell core, generic operators on samples, three drivers.

    Subclasses override ``_reset`` (state from ``self.rng``), ``_propose`` (the next sample, or None to
    wait for pending results) and ``_observe`` (a result; ``metrics`` is None for a failure), and
    optionally ``_pick`` (the final pick; default: best ``default`` accuracy) and ``_settings``.
    """

    kind = "multi_trial"
    name = "multi_trial"
    # True for NNI's own implementation of a method the suite also implements (``nni_tpe``): measured
    # against the suite's in benchmarks, left out of the default tabular table so a method counts once.
    nni_reference = False

    def __init__(self, *, budget: int = 100, seed: int = 0, wait_timeout: float = 24 * 3600.0,
                 poll_interval: float = 1.0):
        super().__init__()
        self.budget = check_int(self.name, "budget", budget)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"{self.name}.seed must be an integer, got {seed!r}")
        self.seed = seed
        if not isinstance(wait_timeout, (int, float)) or wait_timeout <= 0:
            raise ConfigError(f"{self.name}.wait_timeout must be a positive number of seconds, got {wait_timeout!r}")
        self.wait_timeout, self.poll_interval = float(wait_timeout), float(poll_interval)
        self.space: Any = None
        self.rng = np.random.RandomState(seed)
        self.labels: list[str] = []
        self.choices: list[list[Any]] = []
        self._asked = 0
        self._pending: list[Sample] = []
        self._history: list[dict[str, Any]] = []
        self._best_acc: float | None = None

    # ------------------------------------------------------------------------------ description
    @property
    def settings(self) -> dict[str, Any]:
        """Everything that changes the search (seed included), JSON-ready."""
        return {"budget": self.budget, "seed": self.seed, **self._settings()}

    def _settings(self) -> dict[str, Any]:
        return {}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.settings.items())

    # ------------------------------------------------------------------------------ ask / tell
    def start(self, space: Any) -> None:
        """Begin a search of ``space``: every piece of state is reset from ``self.seed``."""
        from nni.mutable import Categorical

        decisions = space.mutables.simplify()
        bad = [label for label, m in decisions.items() if not isinstance(m, Categorical)]
        if bad:
            raise ConfigError(f"multi-trial strategies search products of categorical decisions; {bad} are not")
        self.space = space
        self.labels = list(decisions)
        self.choices = [list(decisions[label].values) for label in self.labels]
        self.rng = np.random.RandomState(self.seed)
        self._asked, self._pending, self._history, self._best_acc = 0, [], [], None
        self._reset()

    def ask(self) -> Sample | None:
        """The next sample to evaluate; None when the budget is spent or the method waits for results."""
        self._require_started()
        if self.done():
            return None
        sample = self._propose()
        if sample is None:
            return None
        sample = dict(sample)
        self._asked += 1
        self._pending.append(sample)
        return sample

    def tell(self, sample: Sample, metrics: Metrics | None) -> None:
        """The evaluation of an asked ``sample``; ``metrics`` None (or without a finite ``default``) = failed."""
        self._require_started()
        for i, pending in enumerate(self._pending):
            if pending == sample:
                del self._pending[i]
                break
        else:
            raise ValueError(f"{self.name}: told a sample that was not asked (or told twice): {sample}")
        accuracy = accuracy_of(metrics)
        kept = dict(metrics) if accuracy is not None else None
        if accuracy is not None and (self._best_acc is None or accuracy > self._best_acc):
            self._best_acc = accuracy
        self._history.append({
            "query": len(self._history), "sample": dict(sample), "metrics": kept,
            "best_so_far": math.nan if self._best_acc is None else self._best_acc,
        })
        self._observe(dict(sample), kept)

    def done(self) -> bool:
        """True when the budget of asks is spent (results may still be pending)."""
        return self._asked >= self.budget

    @property
    def num_pending(self) -> int:
        """Asked samples whose result was not told yet."""
        return len(self._pending)

    @property
    def history(self) -> list[dict[str, Any]]:
        """Told evaluations in order: ``{query, sample, metrics (None = failed), best_so_far}``."""
        return list(self._history)

    def best(self) -> tuple[Sample, Metrics]:
        """The final pick ``(sample, metrics)``; TrialFailedError when no evaluation succeeded."""
        self._require_started()
        succeeded = [h for h in self._history if h["metrics"] is not None]
        if not succeeded:
            raise TrialFailedError(f"{self.name} (seed {self.seed}): none of {len(self._history)} evaluations "
                                   "succeeded, there is nothing to pick")
        entry = self._pick(succeeded)
        return dict(entry["sample"]), dict(entry["metrics"])

    def result(self) -> MultiTrialResult:
        """The final pick with its genotype and the history."""
        sample, metrics = self.best()
        return MultiTrialResult(sample, metrics, self.space.to_genotype(sample), self.history)

    # ------------------------------------------------------------------------------ in-process driver
    def search(self, space: Any, evaluate: Callable[[Sample], Metrics | None], *, budget: int | None = None,
               batch_size: int = 1) -> MultiTrialResult:
        """Search ``space`` with ``evaluate(sample) -> metrics`` in this process, ``batch_size`` asks at a time.

        A batch stops early when the method waits for results (a generation, a predictor refit), as it
        would with that many workers. ``evaluate`` returning None or a NaN ``default`` is a failure.
        """
        if budget is not None:
            self.budget = check_int(self.name, "budget", budget)
        check_int(self.name, "batch_size", batch_size)
        self.start(space)
        while not self.done():
            batch = []
            while len(batch) < batch_size:
                sample = self.ask()
                if sample is None:
                    break
                batch.append(sample)
            if not batch:
                raise RuntimeError(f"{self.name} waits for results, but none are pending (a bug of the method)")
            for sample in batch:
                self.tell(sample, evaluate(sample))
        return self.result()

    # ------------------------------------------------------------------------------ NNI engine driver
    def _run(self) -> None:
        """NNI's entry point: submit each sample as a frozen model of the engine's model space.

        Results are polled (model status) rather than awaited with ``engine.wait_models()``, which NNI
        3.0 can leave waiting forever near ``maxTrialNumber``; after ``wait_timeout`` seconds without
        progress the running models are told as failures and the search ends.
        """
        from nni.nas.space import ModelStatus

        executable = self.model_space
        inner = getattr(executable, "model_space", executable)
        space = getattr(inner, "space", None)
        if space is None or not hasattr(space, "mutables"):
            raise ConfigError("multi-trial strategies search a space of search_spaces: use search_spaces.model_space."
                              f"CellModelSpace as the model space (got {type(inner).__name__})")
        self.start(space)
        ended = (ModelStatus.Trained, ModelStatus.Failed, ModelStatus.Interrupted, ModelStatus.Invalid)
        running: list[tuple[Any, Sample]] = []
        progress = time.monotonic()
        while True:
            for model, sample in [r for r in running if r[0].status in ended]:
                running.remove((model, sample))
                trained = model.status == ModelStatus.Trained
                self.tell(sample, self._engine_metrics(model) if trained else None)
                progress = time.monotonic()
            can_submit = self.engine.budget_available()
            if (self.done() or not can_submit) and not running:
                break
            sample = None
            if can_submit and self.engine.idle_worker_available():
                sample = self.ask()
            if sample is not None:
                model = executable.freeze(sample)
                running.append((model, sample))
                self.engine.submit_models(model)
                progress = time.monotonic()
                continue
            if not running:
                raise RuntimeError(f"{self.name} waits for results, but no model is running (a bug of the method)")
            if time.monotonic() - progress > self.wait_timeout:
                _logger.warning("%s: no result for %.0f s; %d running models count as failed", self.name,
                                self.wait_timeout, len(running))
                for _, pending in running:
                    self.tell(pending, None)
                break
            time.sleep(self.poll_interval)

    def state_dict(self) -> dict[str, Any]:
        """Seed and history (the search can be inspected; it is not a mid-search checkpoint)."""
        return {"seed": self.seed, "settings": self.settings, "history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.seed = int(state_dict.get("seed", self.seed))

    # ------------------------------------------------------------------------------ operators on samples
    def random_sample(self) -> Sample:
        """A uniform sample drawn by the space's own sampler from ``self.rng``."""
        return dict(self.space.random_sample(self.rng))

    def indices(self, sample: Sample) -> list[int]:
        """The index of each decision's value (the sample as integers, in ``self.labels`` order)."""
        return [values.index(sample[label]) for label, values in zip(self.labels, self.choices)]

    def from_indices(self, indices: list[int] | np.ndarray) -> Sample:
        """The sample whose decisions take the values at ``indices``."""
        return {label: values[int(i)] for label, values, i in zip(self.labels, self.choices, indices)}

    def mutate(self, sample: Sample) -> Sample:
        """``sample`` with ONE decision (among those with a choice) resampled to a different value."""
        free = [i for i, values in enumerate(self.choices) if len(values) > 1]
        if not free:
            return dict(sample)
        i = free[self.rng.randint(len(free))]
        label, values = self.labels[i], self.choices[i]
        current = values.index(sample[label])
        new = self.rng.randint(len(values) - 1)
        return {**sample, label: values[new + (new >= current)]}

    def crossover(self, first: Sample, second: Sample) -> Sample:
        """Each decision taken from ``first`` or ``second`` with probability 1/2."""
        take = self.rng.rand(len(self.labels)) < 0.5
        return {label: (first if t else second)[label] for label, t in zip(self.labels, take)}

    def encode(self, sample: Sample) -> np.ndarray:
        """One-hot per decision, concatenated (the input of predictors)."""
        return self.encode_indices(np.array([self.indices(sample)]))[0]

    def encode_indices(self, rows: np.ndarray) -> np.ndarray:
        """:meth:`encode` of many samples at once, given as rows of :meth:`indices` (predictors rank
        whole spaces this way)."""
        sizes = [len(values) for values in self.choices]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        out = np.zeros((len(rows), sum(sizes)), dtype=np.float32)
        out[np.arange(len(rows))[:, None], np.asarray(rows, dtype=np.int64) + offsets] = 1.0
        return out

    # ------------------------------------------------------------------------------ hooks
    def candidate_settings(self) -> dict[str, Any]:
        """Keys a candidate trial's parameters get besides its architecture and protocol: how the trial must
        evaluate it when that is not training (``zero_cost``: score with a proxy). Empty for training."""
        return {}

    def _engine_metrics(self, model: Any) -> Metrics | None:
        """The metrics of a model NNI's engine trained: NNI keeps only the number (``default``)."""
        metric = model.metric
        if isinstance(metric, (int, float)) and not isinstance(metric, bool):
            return {"default": float(metric)}
        return None

    def _reset(self) -> None:
        """Reset the method's own state (called by :meth:`start`, after ``self.rng`` was re-seeded)."""

    def _propose(self) -> Sample | None:
        raise NotImplementedError(f"{type(self).__name__} must implement _propose()")

    def _observe(self, sample: Sample, metrics: Metrics | None) -> None:
        """Learn from a result (``metrics`` None: the evaluation failed)."""

    def _pick(self, succeeded: list[dict[str, Any]]) -> dict[str, Any]:
        """The history entry of the final pick among successful ones: the best accuracy, first on ties."""
        return max(succeeded, key=lambda h: (h["metrics"]["default"], -h["query"]))

    def _require_started(self) -> None:
        if self.space is None:
            raise RuntimeError(f"{self.name}: call start(space) (or search(...)) first")

