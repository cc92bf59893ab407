"""NAS methods as strategies, registered by name (one module per method).

``create_strategy(name, **settings)`` is the one entry point, used alike by notebooks, tests and the
search trial of a benchmark experiment::

    strategy = create_strategy("darts", order=2, epochs=50, seed=3)
    result = strategy.search(create_space("darts"), data_root=..., dataset="cifar10")
    result.genotype

Methods are registered as import paths and loaded on first use (as the spaces are), so listing or
validating names does not import torch, NNI's NAS package or a method that is not used. A module that
defines a method decorates its class with :func:`register_strategy` under the same name.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, TypeVar

from nni_nas_bench.errors import construct, unknown_name_error

# name -> "module:Class"; the decorator checks that the class it registers is the one listed here.
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
}
_LOADED: dict[str, type] = {}

T = TypeVar("T", bound=type)


def register_strategy(name: str) -> Callable[[T], T]:
    """Class decorator: make a strategy class available to :func:`create_strategy` as ``name``."""

    def wrap(cls: T) -> T:
        path = f"{cls.__module__}:{cls.__qualname__}"
        listed = STRATEGIES.setdefault(name, path)
        if listed != path or (name in _LOADED and _LOADED[name] is not cls):
            raise ValueError(f"strategy {name!r} is registered twice ({listed} and {path})")
        _LOADED[name] = cls
        cls.name = name  # type: ignore[attr-defined]
        return cls

    return wrap


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
        _LOADED.setdefault(name, cls)
    return _LOADED[name]


def create_strategy(name: str, **settings: Any) -> Any:
    """Build the strategy ``name`` with keyword ``settings``; unknown names or settings get one clear error."""
    return construct(get_strategy_class(name), settings, f"strategy {name!r}")
