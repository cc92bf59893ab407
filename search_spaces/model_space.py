"""Any space of this package as an NNI 3.0 ``ModelSpace``.

NNI's strategies and experiment API need a ``ModelSpace`` whose ``__init__`` registers labelled
mutables and builds the network under NNI's frozen context. :class:`CellModelSpace` does that for every
space of :mod:`search_spaces`: it registers the space's own mutables (so NNI's ``random()``,
``simplify()`` and ``freeze()`` see exactly the decisions the space's sampler draws) and builds the
child network with the space's own builder — no second description of the space.

Outside a frozen context NNI builds a "dry-run" instance with every decision at its first value, as NNI
documents for all model spaces; ``space.freeze(sample)`` gives the real child network.
"""

from __future__ import annotations

from typing import Any

from nni.mutable import ensure_frozen
from nni.nas.nn.pytorch import ModelSpace
from nni.nas.space import model_context

from search_spaces import create_space


class CellModelSpace(ModelSpace):
    """NNI model space over ``create_space(space, **space_args)``; ``network_args`` go to its builder."""

    def __init__(self, space: str = "darts", space_args: dict[str, Any] | None = None, **network_args: Any):
        super().__init__()
        self._init_args = {"space": space, "space_args": dict(space_args or {}), **network_args}
        self.space = create_space(space, **(space_args or {}))
        sample = {
            label: ensure_frozen(self.add_mutable(mutable), strict=False)
            for label, mutable in self.space.mutables.items()
        }
        self.genotype = self.space.to_genotype(sample)
        self.network = self.space.build_network(self.genotype, **network_args)

    def forward(self, x):
        return self.network(x)

    def freeze(self, sample: dict[str, Any]) -> CellModelSpace:
        """The child network of ``sample``: rebuilt under NNI's frozen context, as NNI's hub spaces do."""
        self.space.mutables.check_contains(dict(sample))
        with model_context(sample):
            return CellModelSpace(**self._init_args)
