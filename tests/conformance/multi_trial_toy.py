"""A tiny product-of-categoricals space for the multi-trial conformance tests (tpe, weaknas, evolution,
reinforce, random_search): small enough to enumerate and to compute reference values by hand."""

from __future__ import annotations

from typing import Any

import numpy as np
from nni.mutable import Categorical, MutableDict


class ToySpace:
    """``{label: values}`` as NNI ``Categorical`` decisions, with the space protocol the strategies use."""

    def __init__(self, decisions: dict[str, list[Any]]):
        self.mutables = MutableDict({label: Categorical(list(values), label=label)
                                     for label, values in decisions.items()})

    def random_sample(self, random_state: np.random.RandomState) -> dict[str, Any]:
        return self.mutables.random(random_state=random_state)

    def to_genotype(self, sample: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(sample[label] for label in self.mutables)
