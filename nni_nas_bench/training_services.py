"""Checks of an experiment's training-service settings that NNI 3.0 itself does not make.

NNI validates the shape of ``trainingService`` but accepts settings its scheduler can never satisfy, and
the experiment then waits forever instead of failing. Each rule below comes from NNI 3.0's own code
(``nni_node/common/trial_keeper/task_scheduler/scheduler.js`` and ``training_service/*_v3``), read, not
guessed:

- every trial asks for ``trialGpuNumber / maxTrialNumberPerGpu`` GPUs (local and remote alike);
- a request ``>=`` the number of GPUs of a machine is refused (logged as "Only have N GPUs") and the
  trial is never placed: ``trialGpuNumber: 1`` on a 1-GPU machine hangs unless ``maxTrialNumberPerGpu``
  makes it a fraction;
- a fractional request goes to the least-used GPU among those that are not "active", and "active" means
  any process on the GPU, *including this experiment's own trials*: with ``useActiveGpu: false`` the
  second trial meant to share a GPU finds none, so packing (``maxTrialNumberPerGpu > 1``) needs
  ``useActiveGpu: true``;
- a relative ``--data-root`` / ``--checkpoint-dir`` in ``trialCommand`` is resolved on each worker inside
  NNI's uploaded copy of ``trialCodeDirectory``, never next to the submitting checkout.
"""

from __future__ import annotations

import shlex
from typing import Any

from nni_nas_bench.errors import ConfigError

_PATH_FLAGS = ("--data-root", "--checkpoint-dir")


def _local_gpu_count() -> int:
    """GPUs of this machine (the local training service runs trials here)."""
    import torch

    return torch.cuda.device_count()


def _machines(service: Any) -> list[tuple[str, Any]]:
    """(name, settings) of every machine whose GPUs the service schedules."""
    if service.platform == "local":
        return [("this machine", service)]
    if service.platform == "remote":
        return [(f"machine {m.host}:{m.port}", m) for m in service.machine_list]
    return []


def check_gpu_settings(service: Any) -> None:
    """Raise :class:`ConfigError` for GPU settings NNI 3.0 accepts but can never schedule (see module doc)."""
    wanted = service.trial_gpu_number or 0
    for name, machine in _machines(service):
        per_gpu = machine.max_trial_number_per_gpu
        if not wanted:
            continue  # NNI itself rejects maxTrialNumberPerGpu without trialGpuNumber
        indices = machine.gpu_indices
        gpus = len(indices) if indices is not None else (_local_gpu_count() if service.platform == "local" else None)
        request = wanted / per_gpu
        if gpus == 0:
            raise ConfigError(
                f"trialGpuNumber is {wanted} but {name} has no GPU: set trialGpuNumber: 0 to train on its CPU, "
                "or run the experiment on a machine with GPUs"
            )
        if gpus is not None and request >= gpus:
            raise ConfigError(
                f"{name}: each trial asks for trialGpuNumber / maxTrialNumberPerGpu = {wanted}/{per_gpu} = "
                f"{request:g} GPU(s) but it offers {gpus}; NNI 3.0 never places a request >= the GPU count "
                f"(the experiment would wait forever): set maxTrialNumberPerGpu: 2 (half a GPU per trial) or a "
                f"trialGpuNumber below {gpus}"
            )
        if request < 1 and not machine.use_active_gpu:
            raise ConfigError(
                f"{name}: maxTrialNumberPerGpu: {per_gpu} packs trials on a GPU, but useActiveGpu is false and "
                "NNI 3.0 counts its own running trials as 'active', so no second trial is ever placed: "
                "set useActiveGpu: true (and keep other jobs off these GPUs, or list the free ones in gpuIndices)"
            )


def check_trial_command_paths(service: Any, trial_command: str) -> None:
    """Raise :class:`ConfigError` for relative data/checkpoint paths in a non-local trial command."""
    if service.platform == "local":
        return
    try:
        words = shlex.split(trial_command)
    except ValueError:
        return  # NNI runs it through a shell anyway; nothing reliable to check
    for i, word in enumerate(words):
        flag, _, value = word.partition("=")
        if flag in _PATH_FLAGS and not value and i + 1 < len(words):
            value = words[i + 1]
        if flag in _PATH_FLAGS and value and not value.startswith(("/", "~", "$")):
            raise ConfigError(
                f"trialCommand passes {flag} {value}, a relative path: on a {service.platform} worker it is "
                "resolved inside NNI's uploaded copy of trialCodeDirectory, not next to your checkout. Drop the "
                f"flag and set NNB_DATA_ROOT / NNB_CHECKPOINT_DIR on each worker, or pass an absolute path that "
                "exists there (experiments/remote/README.md)"
            )


def check_training_service(config: Any) -> None:
    """All checks of this module on a canonical NNI ``ExperimentConfig``."""
    services = config.training_service if isinstance(config.training_service, list) else [config.training_service]
    for service in services:
        check_gpu_settings(service)
        check_trial_command_paths(service, service.trial_command or config.trial_command or "")
