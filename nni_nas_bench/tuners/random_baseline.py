"""The random-sampling baseline of SPEC as an NNI tuner.

K architectures drawn uniformly from the space by the space's own sampler, each trained with the same
protocol and training seed: the baseline every NAS method must beat. Architecture ``k`` depends only
on ``(seed, k)``, so the same YAML always trains the same K architectures, whatever order trials
finish in and however many run at once.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from nni import NoMoreTrialError
from nni.tuner import Tuner

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.training import from_dict

_logger = logging.getLogger(__name__)


def architecture_seed(seed: int, index: int) -> np.random.RandomState:
    """The generator of architecture ``index`` under experiment seed ``seed`` (independent streams)."""
    return np.random.RandomState([seed, index])


class RandomBaselineTuner(Tuner):
    """classArgs: ``dataset``, ``num_archs`` (K, default 8), ``space`` (default 'darts'),
    ``space_args`` (e.g. ``{op_set: poor, n_nodes: 5}``), ``protocol`` (a preset name or
    ``{preset: ..., <setting>: ...}``), ``seed`` (architecture sampling seed), ``train_seed``
    (overrides ``protocol.seed``).
    """

    def __init__(self, dataset: str, num_archs: int = 8, space: str = "darts",
                 space_args: dict[str, Any] | None = None, protocol: Any = "darts", seed: int = 0,
                 train_seed: int | None = None):
        from nni_nas_bench.data import get_dataset_info
        from search_spaces import create_space

        # Everything is validated here, so a bad YAML fails when the experiment starts, not in trials.
        self.dataset = get_dataset_info(dataset).name
        if not isinstance(num_archs, int) or num_archs <= 0:
            raise ConfigError(f"num_archs must be a positive integer, got {num_archs!r}")
        self.space_name, self.space_args = space, dict(space_args or {})
        self.space = create_space(space, **self.space_args)
        self.protocol = from_dict(protocol)
        if train_seed is not None:
            self.protocol = self.protocol.replace(seed=train_seed)
        self.num_archs, self.seed = num_archs, seed
        self._next_index = 0

    def architecture(self, index: int) -> dict[str, Any]:
        """The trial parameters of architecture ``index`` (flat, readable in the web UI)."""
        genotype = self.space.sample(architecture_seed(self.seed, index))
        return {
            "role": "random",
            "method": "random",
            "dataset": self.dataset,
            "space": self.space_name,
            "space_args": self.space_args,
            "arch_index": index,
            "arch_seed": self.seed,
            "genotype": genotype.to_text(),
            "protocol": self.protocol.to_dict(),
        }

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict[str, Any]:
        if self._next_index >= self.num_archs:
            raise NoMoreTrialError(f"all {self.num_archs} random architectures were submitted")
        params = self.architecture(self._next_index)
        self._next_index += 1
        _logger.info("parameter %s -> random architecture %d", parameter_id, params["arch_index"])
        return params

    def receive_trial_result(self, parameter_id: int, parameters: dict[str, Any], value: Any, **kwargs: Any) -> None:
        """Nothing to learn: the baseline does not adapt to results."""

    def update_search_space(self, search_space: dict[str, Any]) -> None:
        """The space comes from classArgs; NNI's searchSpace field is unused."""
