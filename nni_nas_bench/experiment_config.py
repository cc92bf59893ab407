"""Check an experiment YAML before NNI runs it: NNI's own validation, then the tuner's settings.

``nnictl create`` validates NNI's fields but only starts the tuner afterwards, in a background
process whose errors land in ``dispatcher.log`` (why NNI 3.0 cannot do more at create time, and what
the tuner checks when nnictl starts it: ``nni_nas_bench/tuners/validators.py``). ``check_experiment``
runs both checks in the foreground, so a bad method, dataset, space or protocol is one clear message
before anything starts.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from nni_nas_bench.errors import ConfigError, NasBenchError, construct
from nni_nas_bench.training_services import check_training_service
from nni_nas_bench.tuners.validators import check_trial_count
from nni_nas_bench.yaml_file import read_yaml


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The YAML mapping of an experiment file, or a ConfigError naming the file and the line."""
    data = read_yaml(path, "experiment file")
    if not isinstance(data, dict):
        raise ConfigError(f"experiment file {path} must be a mapping of NNI config fields")
    return data


SUITE_TUNERS: tuple[str, ...] = ("BenchmarkTuner", "MultiTrialTuner", "RandomBaselineTuner")


def suite_tuner_class(class_name: str) -> type | None:
    """The suite's tuner class named ``class_name`` (``nni_nas_bench.tuners[.module].Name``); None for a
    tuner outside the suite's package; a ConfigError for a name in it that is none of its tuners.

    Resolved from the installed package only, never from the YAML's ``codeDirectory``: a folder there
    named ``nni_nas_bench`` cannot shadow the suite, and no module outside the suite is imported.
    """
    module_name, _, attr = class_name.rpartition(".")
    if module_name.split(".")[0] != "nni_nas_bench":
        return None
    if attr not in SUITE_TUNERS or not (module_name == "nni_nas_bench.tuners"
                                        or module_name.startswith("nni_nas_bench.tuners.")):
        import difflib

        close = difflib.get_close_matches(attr, SUITE_TUNERS, n=1)
        hint = f"did you mean nni_nas_bench.tuners.{close[0]}?" if close else \
            f"the suite's tuners are nni_nas_bench.tuners.{{{', '.join(SUITE_TUNERS)}}}"
        raise ConfigError(f"tuner.className {class_name!r} cannot be imported: {hint}")
    from nni_nas_bench import tuners

    return getattr(tuners, attr)


_PLATFORMS = ("local", "remote", "openpai", "aml", "kubeflow", "frameworkcontroller", "adl", "dlc", "hybrid")


def _nni_reason(exc: BaseException, data: dict[str, Any]) -> str:
    """One line saying why NNI refused the config; NNI's bare asserts and attribute errors say nothing.

    ``maxTrialNumber: 0`` fails an ``assert`` without a message, and an unknown platform fails deep in
    NNI's config classes with ``'dict' object has no attribute 'platform'``: name the field instead, or at
    least the check of NNI's that failed.
    """
    service = data.get("trainingService")
    services = service if isinstance(service, list) else [service]
    for item in services:
        platform = item.get("platform") if isinstance(item, dict) else None
        if platform not in _PLATFORMS:
            return (f"trainingService.platform {platform!r} is not one of NNI's platforms "
                    f"({', '.join(_PLATFORMS)})")
    for key in ("maxTrialNumber", "trialConcurrency"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            return f"{key} must be a positive whole number, got {value!r}"
    for key in ("tuner", "assessor", "advisor"):
        algorithm = data.get(key)
        if isinstance(algorithm, dict) and not algorithm.get("name") and not algorithm.get("className"):
            return (f"{key} needs className (the suite's: nni_nas_bench.tuners.BenchmarkTuner, ...) or name "
                    "(one of NNI's built-in algorithms)")
    duration = data.get("maxExperimentDuration")
    if duration is not None and not re.fullmatch(r"\s*\d+(\.\d+)?\s*[smhd]?\s*", str(duration)):
        return f"maxExperimentDuration must be a number with a unit s, m, h or d (e.g. 12h), got {duration!r}"
    text = " ".join(str(exc).split())
    if text:
        return text
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    failed = frames[-1].line if frames else ""
    return f"{type(exc).__name__} in NNI's check `{failed}`" if failed else type(exc).__name__


def check_trial_command(command: Any) -> None:
    """Options of the suite's trial in ``trialCommand`` must be ones it takes: a misspelt ``--data-rot``
    would otherwise fail every trial at start, after ``nnictl create`` said the experiment started."""
    import shlex

    from nni_nas_bench.trial import argument_parser

    if not isinstance(command, str) or "nni_nas_bench.trial" not in command:
        return
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"trialCommand cannot be split into words ({exc}): {command!r}") from None
    if "nni_nas_bench.trial" not in words:
        return
    args = words[words.index("nni_nas_bench.trial") + 1:]
    for i, word in enumerate(args):
        if word in ("&&", "||", ";", "|", ">", "2>", ">>"):  # the shell's, not the trial's
            args = args[:i]
            break
    try:
        argument_parser().check(args)
    except ConfigError as exc:
        raise ConfigError(f"trialCommand: {exc}") from None


def check_experiment(path: str | Path) -> Any:
    """Validate ``path`` with NNI's ``ExperimentConfig`` and build its tuner; return the tuner, or None
    for a tuner that is not the suite's (not imported, so not checked beyond NNI's own fields)."""
    from nni.experiment.config import ExperimentConfig

    path = Path(path).resolve()
    data = load_yaml(path)
    from nni.experiment.config.utils.internal import unset_base_path

    try:
        config = ExperimentConfig.load(str(path))
        config.validate()
    except Exception as exc:  # NNI raises ValueError, AssertionError, TypeError, ...
        # NNI's load() sets a module-global base path and leaves it set when a field is refused: the next
        # file checked in this process would then fail NNI's `assert _current_base_path is None`.
        unset_base_path()
        raise ConfigError(f"{path}: NNI rejects this config: {_nni_reason(exc, data)}") from None
    try:
        check_training_service(config.canonical_copy())
        check_trial_command(data.get("trialCommand"))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    tuner = data.get("tuner") or {}
    class_name = tuner.get("className")
    if not class_name:
        raise ConfigError(f"{path}: tuner.className is missing (e.g. nni_nas_bench.tuners.RandomBaselineTuner)")
    try:
        cls = suite_tuner_class(class_name)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if cls is None:
        # Importing a foreign tuner would run its module's code (and anything beside it in codeDirectory)
        # just to validate a file: `check` must never execute user code, so that tuner is not checked.
        print(f"note {path}: tuner.className {class_name!r} is not one of the suite's tuners "
              f"({', '.join(SUITE_TUNERS)}); NNI's fields were checked, its classArgs are not", file=sys.stderr)
        return None
    try:  # only the YAML's mistakes are "bad settings"; a TypeError inside the tuner is a bug
        instance = construct(cls, tuner.get("classArgs") or {}, f"tuner.classArgs of {class_name}")
    except NasBenchError as exc:  # ConfigError, or a GenotypeError of the space's settings
        raise ConfigError(f"{path}: {exc}") from None
    try:
        check_trial_count(data.get("maxTrialNumber"), instance)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return instance
