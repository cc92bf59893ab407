"""NNI tuners that turn a benchmark YAML into trials (``tuner.className`` in experiments/*.yml)."""

from nni_nas_bench.tuners.benchmark import BenchmarkTuner
from nni_nas_bench.tuners.multi_trial import MultiTrialTuner
from nni_nas_bench.tuners.random_baseline import RandomBaselineTuner

__all__ = ["BenchmarkTuner", "MultiTrialTuner", "RandomBaselineTuner"]
