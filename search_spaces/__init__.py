"""Search spaces shared by every strategy, with one registry.

A space object owns its decisions (NNI mutables with stable labels), its uniform sampler, the mapping
between NNI samples and readable genotypes, and the builder of child networks. ``create_space(name,
**settings)`` is the one entry point; :class:`search_spaces.model_space.CellModelSpace` wraps any of
them as an NNI ``ModelSpace`` for NNI's own strategies and experiment API.

Spaces are registered as import paths and loaded on first use, so importing this package pulls in
neither nni nor a space that is not used.
"""

from __future__ import annotations

import importlib
from typing import Any

from nni_nas_bench.errors import construct, unknown_name_error

SPACES: dict[str, str] = {
    "darts": "search_spaces.darts:DartsCellSpace",
    "mobilenet_sp": "search_spaces.mobilenet:MobileNetSpace",
    "enas": "search_spaces.enas:EnasCellSpace",
    "nao": "search_spaces.nao:NaoCellSpace",
    "nsganet": "search_spaces.nsganet:NsgaNetCellSpace",
    "nb201": "search_spaces.nb201:NB201Space",
}


def list_spaces() -> list[str]:
    """Names accepted by :func:`create_space`."""
    return sorted(SPACES)


def create_space(name: str, **settings: Any) -> Any:
    """Build a registered space; unknown names and unknown settings get one clear error."""
    try:
        module_name, class_name = SPACES[name].split(":")
    except KeyError:
        raise unknown_name_error("search space", name, list(SPACES)) from None
    return construct(getattr(importlib.import_module(module_name), class_name), settings, f"search space {name!r}")
