"""The tabular evaluator: "train" an NB201 cell by looking it up, and charge its training time to a clock.

``TabularEvaluator(dataset, metric, noise, seed)`` is the ``evaluate(sample) -> metrics`` callable every
multi-trial strategy's in-process ``search`` takes. One query costs a few microseconds: the sample's
base-5 code indexes a lookup array (code → NB201 index) and the metric arrays.

Metrics of a query:

- ``default``: the search signal, the table's ``metric`` (``valid`` by default) of the cell, plus, with
  ``noise=True``, the deviation of one of the cell's training seeds drawn from the evaluator's own
  seeded generator (so asking twice for a cell is like training it twice);
- ``test_acc``: the table's mean test accuracy (noise-free: what a found cell is reported with);
- ``seconds``: the cell's recorded 200-epoch training time, also added to :attr:`clock` (simulated
  GPU-seconds of the search so far); ``flops`` (M multiply-adds) and ``params_m``; ``index`` (NB201's).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.tabular.table import METRICS, NB201Table, load_table
from search_spaces.nb201_arch import LABELS, NB201_OPS, NUM_ARCHS, NB201Arch, nb201_mflops

_OP_CODE = {op: k for k, op in enumerate(NB201_OPS)}
_POWERS = tuple(len(NB201_OPS) ** k for k in range(len(LABELS)))
_FLOPS: np.ndarray | None = None


def flops_by_code() -> np.ndarray:
    """MFLOPs of every cell by base-5 code (computed once per process: 15,625 small sums)."""
    global _FLOPS
    if _FLOPS is None:
        _FLOPS = np.array([nb201_mflops(NB201Arch.from_code(c)) for c in range(NUM_ARCHS)])
    return _FLOPS


def sample_code(sample: Mapping[str, Any]) -> int:
    """The base-5 code of a sample dict ``{edge label: op}`` (a bad sample gets one clear error)."""
    try:
        return sum(_OP_CODE[sample[label]] * p for label, p in zip(LABELS, _POWERS))
    except (KeyError, TypeError):
        raise ConfigError(f"not an NB201 sample (labels {list(LABELS)}, ops {list(NB201_OPS)}): {sample!r}") from None


class TabularEvaluator:
    """``evaluate(sample)`` from NB201's tables, with seeded seed-noise and a simulated GPU clock.

    ``table`` may be given instead of ``dataset``/``root``/``source`` (to share one loaded table).
    """

    def __init__(self, dataset: str = "cifar10-valid", metric: str = "valid", *, noise: bool = True, seed: int = 0,
                 root: str | Path | None = None, source: str = "csv", table: NB201Table | None = None):
        self.table = table if table is not None else load_table(dataset, root, source)
        if metric not in METRICS:
            raise ConfigError(f"unknown NB201 metric {metric!r}; choose one of: {', '.join(METRICS)}")
        self.metric = metric
        self.noise = bool(noise)
        self._signal = self.table.metric(metric)
        self._code_to_index = self.table.code_to_index
        self._flops = flops_by_code()
        # The per-query lookups as Python lists: a query reads six scalars, and a list item is a float
        # already, where a NumPy scalar costs a conversion each (the table makes 1.8 million queries).
        self._lists = {name: values.tolist() for name, values in (
            ("signal", self._signal), ("test", self.table.test), ("seconds", self.table.seconds),
            ("params_m", self.table.params_m), ("seed_count", self.table.seed_count),
            ("code_to_index", self._code_to_index), ("flops", self._flops))}
        self.reset(seed)

    @property
    def dataset(self) -> str:
        return self.table.dataset

    def reset(self, seed: int = 0) -> None:
        """Zero the clock and the query count; restart the noise generator from ``seed``."""
        self.seed = int(seed)
        self._rng = np.random.RandomState(self.seed)
        self.clock = 0.0
        self.queries = 0

    def index(self, sample: Mapping[str, Any]) -> int:
        """NB201's index of a sample."""
        return int(self._code_to_index[sample_code(sample)])

    def value(self, index: int, rng: np.random.RandomState | None = None) -> float:
        """The search signal of one index: the table's mean plus (with noise) one seed's deviation."""
        acc = self._lists["signal"][index]
        if self.noise:
            rng = rng or self._rng
            seed = rng.randint(self._lists["seed_count"][index])
            acc += float(self.table.seed_dev[index, seed])
        return acc

    def __call__(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        lists = self._lists
        code = sample_code(sample)
        index = lists["code_to_index"][code]
        seconds = lists["seconds"][index]
        self.clock += seconds
        self.queries += 1
        return {"default": self.value(index), "test_acc": lists["test"][index], "seconds": seconds,
                "flops": lists["flops"][code], "params_m": lists["params_m"][index], "index": index}

    evaluate = __call__

    # ------------------------------------------------------------------------------ space-wide facts
    def optimum(self) -> int:
        """Index of the best cell by the noise-free search metric (6111 for cifar10-valid / valid)."""
        return int(np.argmax(self._signal))

    def space_mean(self, metric: str = "test") -> float:
        """Mean accuracy of all 15,625 cells (what a uniformly random cell scores on average)."""
        return float(self.table.metric(metric).mean())
