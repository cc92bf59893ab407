"""nni-nas-bench: fair evaluation of NAS methods on top of Microsoft NNI.

The package is split by concern: ``search_spaces`` (what can be searched), ``nni_nas_bench.data``
(datasets), ``nni_nas_bench.training`` (the final-training protocol), ``nni_nas_bench.tuners``
(NNI tuners that turn a benchmark into trials), ``nni_nas_bench.trial`` (what one trial runs) and
``analysis`` (NNI trial databases to statistics).
"""

from nni_nas_bench._version import __version__

__all__ = ["__version__"]
