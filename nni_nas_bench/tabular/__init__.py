"""Tabular mode: NAS-Bench-201's trained accuracies instead of training (Dong & Yang, ICLR 2020).

- :mod:`~nni_nas_bench.tabular.table`: the tables as arrays (``load_table``), clear errors when missing;
- :mod:`~nni_nas_bench.tabular.evaluator`: ``TabularEvaluator``, the ``evaluate(sample)`` of in-process
  searches, with seeded seed-noise and a simulated GPU clock;
- :mod:`~nni_nas_bench.tabular.runner`: every multi-trial strategy × dataset × R seeded runs → tidy curves,
  final picks and RI (``nas-bench tabular``);
- :mod:`~nni_nas_bench.tabular.trial`: the table lookup an nnictl trial does when its parameters hold ``tabular``.
"""

from nni_nas_bench.tabular.evaluator import TabularEvaluator
from nni_nas_bench.tabular.table import DATASETS, NB201Table, load_table

__all__ = ["DATASETS", "NB201Table", "TabularEvaluator", "load_table"]
