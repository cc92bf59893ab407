"""Final training of child networks: the protocol object, the trainer, checkpoints, cost counters."""

from nni_nas_bench.training.protocol import PRESETS, Protocol, from_dict, from_yaml, overlay

__all__ = ["PRESETS", "Protocol", "from_dict", "from_yaml", "overlay"]
