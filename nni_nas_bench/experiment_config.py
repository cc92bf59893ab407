"""Check an experiment YAML before NNI runs it: NNI's own validation, then the tuner's settings.

``nnictl create`` validates NNI's fields but only starts the tuner afterwards, in a background
process whose errors land in ``dispatcher.log`` (why NNI 3.0 cannot do more at create time, and what
the tuner checks when nnictl starts it: ``nni_nas_bench/tuners/validators.py``). ``check_experiment``
runs both checks in the foreground, so a bad method, dataset, space or protocol is one clear message
before anything starts.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.training_services import check_training_service
from nni_nas_bench.tuners.validators import check_trial_count
from nni_nas_bench.yaml_file import read_yaml


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The YAML mapping of an experiment file, or a ConfigError naming the file and the line."""
    data = read_yaml(path, "experiment file")
    if not isinstance(data, dict):
        raise ConfigError(f"experiment file {path} must be a mapping of NNI config fields")
    return data


def check_experiment(path: str | Path) -> Any:
    """Validate ``path`` with NNI's ``ExperimentConfig`` and build its tuner; return the tuner."""
    from nni.experiment.config import ExperimentConfig

    path = Path(path).resolve()
    data = load_yaml(path)
    try:
        config = ExperimentConfig.load(str(path))
        config.validate()
    except Exception as exc:  # NNI raises ValueError, AssertionError, TypeError, ...
        raise ConfigError(f"{path}: NNI rejects this config: {exc}") from None
    try:
        check_training_service(config.canonical_copy())
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    tuner = data.get("tuner") or {}
    class_name = tuner.get("className")
    if not class_name:
        raise ConfigError(f"{path}: tuner.className is missing (e.g. nni_nas_bench.tuners.RandomBaselineTuner)")
    code_dir = (path.parent / tuner.get("codeDirectory", ".")).resolve()
    module_name, _, attr = class_name.rpartition(".")
    sys.path.insert(0, str(code_dir))
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{path}: tuner.className {class_name!r} cannot be imported ({exc})") from None
    finally:
        sys.path.remove(str(code_dir))
    try:
        instance = cls(**(tuner.get("classArgs") or {}))
    except TypeError as exc:
        raise ConfigError(f"{path}: bad tuner.classArgs for {class_name}: {exc}") from None
    try:
        check_trial_count(data.get("maxTrialNumber"), instance)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return instance
