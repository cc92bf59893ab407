"""The network a trial's parameters describe, resolved once for every kind of trial that builds one.

A trained trial (:func:`nni_nas_bench.trial.run_trial`) and a zero-cost candidate
(:func:`nni_nas_bench.zero_cost.score_candidate`) must build the same network from the same parameters
(protocol, dataset, space and genotype; the stem from the image size; the weights initialised from the
protocol's seed), or a proxy would score another network than the one a final training trains. This module
is that one reading; it imports torch only when a network is built (a tabular trial never does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nni_nas_bench.errors import mapping_arg
from nni_nas_bench.training import from_dict


@dataclass(frozen=True)
class TrialNetwork:
    """Protocol, dataset info, space and parsed architecture of one trial's parameters."""

    protocol: Any  # nni_nas_bench.training.Protocol
    info: Any      # nni_nas_bench.data.DatasetInfo
    space: Any
    genotype: Any

    @classmethod
    def of(cls, params: dict[str, Any]) -> TrialNetwork:
        """Read ``params`` (a bad protocol, dataset, space or genotype is one ConfigError naming it)."""
        from nni_nas_bench.data import get_dataset_info
        from search_spaces import create_space

        protocol = from_dict(params["protocol"])
        info = get_dataset_info(params["dataset"])
        space = create_space(params["space"], **mapping_arg("space_args", params.get("space_args")))
        return cls(protocol, info, space, space.parse(params["genotype"]))

    def build(self, *, auxiliary: bool = False) -> Any:
        """The network, its weights initialised from the protocol's seed (the same network for every trial
        of these parameters; DropPath masks drawn later follow the same seed)."""
        import torch

        torch.manual_seed(self.protocol.seed)
        return self.space.build_network(self.genotype, C=self.protocol.channels, num_classes=self.info.num_classes,
                                        layers=self.protocol.layers,
                                        stem="cifar" if self.info.image_size == 32 else "imagenet",
                                        auxiliary=auxiliary)
