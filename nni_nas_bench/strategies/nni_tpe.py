"""TPE (Bergstra et al. 2011) by NNI's own tuner, ``nni.algorithms.hpo.tpe_tuner.TpeTuner``: the reference.

The suite's own ``tpe`` (:mod:`nni_nas_bench.strategies.tpe`) is what the benchmarks use; this one is kept
so that its speed and search quality are measured against NNI's in the same run (``benchmarks/tabular.py``).
On NAS-Bench-201 NNI's TPE costs about 2 ms per proposal, and it scores BELOW random search: once its model
concentrates it proposes cells it has already evaluated, and NNI's ``Deduplicator``
(``nni/common/hpo_utils/dedup.py``) replaces every such repeat with the next point of a grid search over
the space, i.e. the next cell in enumeration order, not a model-guided one. The longer the search, the
more of its queries are these grid points (measured in ``benchmarks/results/tabular-cpu-2core.json``).

NNI's TPE works on hyper-parameter search spaces, so each decision becomes a ``choice`` over the
INDICES of its values (values such as DARTS input pairs are tuples, which NNI's search-space format does
not carry), named ``d0, d1, ...`` (labels like ``normal/op_2_0`` are not needed by TPE). The tuner is
driven ask/tell with the strategy's own parameter ids; its seed comes from ``self.rng``, so the search
is reproducible. Concurrent asks are handled by NNI's constant liar; a failed evaluation ends the
tuner's trial without a result.
"""

from __future__ import annotations

from typing import Any

from nni_nas_bench.strategies.multi_trial import Metrics, MultiTrialStrategy, Sample


class NniTpeStrategy(MultiTrialStrategy):
    """NNI's TPE tuner over the decisions; ``tpe_args`` go to it (e.g. ``{n_startup_jobs: 20}``)."""

    name = "nni_tpe"

    nni_reference = True

    def __init__(self, *, tpe_args: dict[str, Any] | None = None, **settings: Any):
        super().__init__(**settings)
        self.tpe_args = dict(tpe_args or {})

    def _settings(self) -> dict[str, Any]:
        return {"tpe_args": self.tpe_args}

    def _reset(self) -> None:
        from nni.algorithms.hpo.tpe_tuner import TpeTuner

        self._tuner = TpeTuner(optimize_mode="maximize", seed=int(self.rng.randint(2**31)),
                               tpe_args=self.tpe_args or None)
        self._tuner.update_search_space({f"d{i}": {"_type": "choice", "_value": list(range(len(values)))}
                                         for i, values in enumerate(self.choices)})
        self._ids: dict[tuple[int, ...], list[int]] = {}  # sample (as indices) -> pending tuner ids
        self._next_id = 0

    def _propose(self) -> Sample:
        parameter_id, self._next_id = self._next_id, self._next_id + 1
        params = self._tuner.generate_parameters(parameter_id)
        indices = [int(params[f"d{i}"]) for i in range(len(self.choices))]
        self._ids.setdefault(tuple(indices), []).append(parameter_id)
        return self.from_indices(indices)

    def _observe(self, sample: Sample, metrics: Metrics | None) -> None:
        parameter_id = self._ids[tuple(self.indices(sample))].pop(0)
        if metrics is None:
            self._tuner.trial_end(parameter_id, False)
        else:
            self._tuner.receive_trial_result(parameter_id, None, float(metrics["default"]))
