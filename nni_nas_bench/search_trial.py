"""The search role of a benchmark trial: run one NAS method once (one search seed), report the genotype.

A benchmark experiment (:class:`~nni_nas_bench.tuners.benchmark.BenchmarkTuner`) gives a search trial
parameters like::

    {"role": "search", "method": "darts", "dataset": "cifar10", "space": "darts",
     "space_args": {"op_set": "darts", "n_nodes": 4}, "search_seed": 3, "search": {"order": 2, ...}}

``search`` holds the method's settings (its protocol); the seed is always ``search_seed``. The trial
entry point (:mod:`nni_nas_bench.trial`) sends ``role: search`` here. The final metrics carry the
found genotype, the supernet's validation accuracy (``default``), the search time and the trial's
identity, because the tuner learns each genotype from these metrics (NNI 3.0 may record another
trial's parameters for a trial when several run at once; the metrics are what the trial really did).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from nni_nas_bench.contract import Role, identity, with_arch_id
from nni_nas_bench.errors import ConfigError, mapping_arg
from nni_nas_bench.provenance import code_version

REQUIRED = ("method", "dataset", "space", "search_seed")


def run_search(params: dict[str, Any], *, data_root: str | Path, device: str = "auto",
               output_dir: str | Path | None = None,
               report_epoch: Callable[[dict[str, Any]], None] | None = None,
               log: Callable[[str], None] = print, checkpoint_dir: str | Path | None = None) -> dict[str, Any]:
    """Run the search of ``params``; return its final metrics (identity included).

    ``output_dir`` receives the method's per-epoch history (α and genotype per epoch for DARTS);
    ``report_epoch`` gets one dict per epoch (``default`` = the supernet's validation accuracy).
    ``checkpoint_dir`` holds per-epoch search checkpoints for strategies that keep them (the DARTS
    family): a search restarted with the same directory resumes where it stopped.
    """
    from nni_nas_bench.data import get_dataset_info
    from nni_nas_bench.strategies import create_strategy
    from search_spaces import create_space

    missing = [k for k in REQUIRED if k not in params]
    if missing:
        raise ConfigError(f"search trial parameters miss {missing}; got keys {sorted(params)}")
    settings = mapping_arg("search", params.get("search"))
    if "seed" in settings:
        raise ConfigError("search settings must not hold 'seed': the search seed is the parameter 'search_seed'")
    info = get_dataset_info(params["dataset"])
    space = create_space(params["space"], **mapping_arg("space_args", params.get("space_args")))
    strategy = create_strategy(params["method"], seed=int(params["search_seed"]), **settings)
    if checkpoint_dir is not None and hasattr(strategy, "checkpoint_dir"):
        strategy.checkpoint_dir = checkpoint_dir  # a place, not a setting: not part of the recorded protocol
    log(f"search trial: {params['method']} seed {params['search_seed']} on {info.name}, {space}")
    result = strategy.search(space, data_root=data_root, dataset=info.name, device=device, output_dir=output_dir,
                             log=log, report_epoch=report_epoch)
    return with_arch_id({
        **identity(params),
        "role": Role.SEARCH.value,
        "default": result.valid_acc,
        "genotype": result.genotype.to_text(),
        "search_seconds": result.search_seconds,
        **({"latency_ms": space.latency_ms(result.genotype)} if hasattr(space, "latency_ms") else {}),
        "epochs": len(result.alpha_history),
        # JSON text, not nested dicts: NNI's web UI shows flat metric values only.
        "search": json.dumps(strategy.settings, sort_keys=True),
        "space_args": json.dumps(space.settings, sort_keys=True),
        "code_version": code_version(),
    })
