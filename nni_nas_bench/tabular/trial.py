"""The tabular trial: an nnictl trial whose parameters hold ``tabular`` looks its cell up instead of training.

The trial entry point (:mod:`nni_nas_bench.trial`) sends such parameters here, so an experiment of
``experiments/nb201/*.yml`` runs the same tuner, trials, DB and report path as a trained one, in seconds::

    {"role": "candidate", "method": "evolution", "space": "nb201", "genotype": "|nor_conv_3x3~0|+...",
     "search_seed": 0, "candidate_index": 17,
     "tabular": {"dataset": "cifar10-valid", "metric": "valid", "noise": true}}

``tabular`` settings: ``dataset`` (an NB201 setting, default ``cifar10-valid``), ``metric`` (the search
signal of ``candidate`` trials, default ``valid``), ``noise`` (a seeded draw of one training seed,
default true), ``final_metric`` (what ``searched`` and ``random`` trials report, default ``test``: the
table's noise-free mean, the accuracy a found cell is judged by), ``source`` (``csv`` or ``nni``).

A candidate's noise seed is derived from (dataset, search seed, candidate index), so rerunning an
experiment gives the same values. The metrics carry the trial's identity like a trained trial's do, the
recorded training time as ``train_seconds`` (the search's simulated cost) and ``protocol`` = the lookup
settings, so searched and random rows of one experiment pair up in the RI analysis.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nni_nas_bench.contract import Role, identity, with_arch_id
from nni_nas_bench.errors import ConfigError

SETTINGS = {"dataset": "cifar10-valid", "metric": "valid", "noise": True, "final_metric": "test", "source": "csv"}


def tabular_settings(tabular: Any) -> dict[str, Any]:
    """The lookup settings with defaults filled in; unknown keys get one clear error."""
    if not isinstance(tabular, dict):
        raise ConfigError(f"'tabular' must be a mapping like {SETTINGS}, got {tabular!r}")
    unknown = sorted(set(tabular) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"unknown tabular settings {unknown}; known: {', '.join(SETTINGS)}")
    return {**SETTINGS, **tabular}


def run_tabular_trial(params: dict[str, Any], *, data_root: str | Path | None = None) -> dict[str, Any]:
    """Look up the cell of ``params`` in NB201's table; return the trial's final metrics."""
    from nni_nas_bench.data._seeding import derive_seed
    from nni_nas_bench.provenance import code_version
    from nni_nas_bench.tabular.evaluator import TabularEvaluator
    from search_spaces.nb201_arch import NB201Arch  # the cell as data: a lookup never builds the space (torch)

    settings = tabular_settings(params.get("tabular"))
    if params.get("space") != "nb201":
        raise ConfigError(f"tabular trials look cells up in NAS-Bench-201: space must be 'nb201', "
                          f"got {params.get('space')!r}")
    if "genotype" not in params:
        raise ConfigError(f"tabular trial parameters miss 'genotype'; got keys {sorted(params)}")
    arch = NB201Arch.from_text(params["genotype"])
    candidate = params.get("role") == Role.CANDIDATE
    metric = settings["metric"] if candidate else settings["final_metric"]
    evaluator = TabularEvaluator(settings["dataset"], metric, noise=bool(settings["noise"]) and candidate,
                                 root=data_root, source=settings["source"])
    if candidate:
        evaluator.reset(derive_seed("tabular-trial", evaluator.dataset, params.get("search_seed"),
                                    params.get("candidate_index")) % 2**32)
    metrics = evaluator(arch.to_sample())
    lookup = {"name": "nb201-table", "dataset": evaluator.dataset, "metric": metric,
              "noise": evaluator.noise, "source": settings["source"]}
    return with_arch_id({
        **identity(params),
        "default": metrics["default"],
        "test_acc": metrics["test_acc"],
        "nb201_index": metrics["index"],
        "nb201_dataset": evaluator.dataset,
        "train_seconds": metrics["seconds"],
        "flops": metrics["flops"],
        "params": metrics["params_m"],
        "genotype": arch.to_text(),
        "protocol_name": "nb201-table",
        # JSON text, not a nested dict: NNI's web UI shows flat metric values only.
        "protocol": json.dumps(lookup, sort_keys=True),
        "space_args": "{}",  # NB201's space has no settings (NB201Space.settings)
        "code_version": code_version(),
    })
