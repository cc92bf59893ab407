"""NAS methods as strategies, registered by name (one module per method).

``create_strategy(name, **settings)`` is the one entry point, used alike by notebooks, tests and the
search trial of a benchmark experiment::

    strategy = create_strategy("darts", order=2, epochs=50, seed=3)
    result = strategy.search(create_space("darts"), data_root=..., dataset="cifar10")
    result.genotype

Methods are registered in ONE place, :data:`STRATEGIES` (name -> import path), and loaded on first use (as
the spaces are), so listing or validating names does not import torch, NNI's NAS package or a method
that is not used. A method is the module ``nni_nas_bench/strategies/<name>.py`` whose class says
``name = "<name>"``; loading checks both (``tests/test_architecture.py`` checks every entry).
"""

from __future__ import annotations

import importlib
from typing import Any

from nni_nas_bench.errors import construct, unknown_name_error

# name -> "module:Class": the one registration of a method.
STRATEGIES: dict[str, str] = {
    "cnas": "nni_nas_bench.strategies.cnas:CnasStrategy",
    "darts": "nni_nas_bench.strategies.darts:DartsStrategy",
    "darts_pt": "nni_nas_bench.strategies.darts_pt:DartsPtStrategy",
    "enas": "nni_nas_bench.strategies.enas:EnasStrategy",
    "evolution": "nni_nas_bench.strategies.evolution:RegularizedEvolutionStrategy",
    "gdas": "nni_nas_bench.strategies.gdas:GdasStrategy",
    "manas": "nni_nas_bench.strategies.manas:ManasStrategy",
    "nao": "nni_nas_bench.strategies.nao:NaoStrategy",
    "nni_tpe": "nni_nas_bench.strategies.nni_tpe:NniTpeStrategy",
    "nsganet": "nni_nas_bench.strategies.nsganet:NsgaNetStrategy",
    "pdarts": "nni_nas_bench.strategies.pdarts:PdartsStrategy",
    "random_search": "nni_nas_bench.strategies.random_search:RandomSearchStrategy",
    "reinforce": "nni_nas_bench.strategies.reinforce:ReinforceStrategy",
    "single_path": "nni_nas_bench.strategies.single_path:SinglePathStrategy",
    "stacnas": "nni_nas_bench.strategies.stacnas:StacNasStrategy",
    "tpe": "nni_nas_bench.strategies.tpe:TpeStrategy",
    "weaknas": "nni_nas_bench.strategies.weaknas:WeakNasStrategy",
    "zero_cost": "nni_nas_bench.strategies.zero_cost:ZeroCostStrategy",
}
_LOADED: dict[str, type] = {}


def list_strategies() -> list[str]:
    """Names accepted by :func:`create_strategy`."""
    return sorted(STRATEGIES)


def get_strategy_class(name: str) -> type:
    """The class registered as ``name`` (imports its module on first use)."""
    if name not in STRATEGIES:
        raise unknown_name_error("strategy", name, list(STRATEGIES))
    if name not in _LOADED:
        module_name, _, class_name = STRATEGIES[name].partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        if getattr(cls, "name", None) != name or module_name.rpartition(".")[2] != name:
            raise TypeError(f"strategy {name!r} is {STRATEGIES[name]}, whose module and class attribute `name` "
                            f"must both be {name!r} (got {module_name!r}, {getattr(cls, 'name', None)!r})")
        _LOADED[name] = cls
    return _LOADED[name]


def create_strategy(name: str, **settings: Any) -> Any:
    """Build the strategy ``name`` with keyword ``settings``; unknown names or settings get one clear error."""
    return construct(get_strategy_class(name), settings, f"strategy {name!r}")
