"""The final-training ("augment") protocol as one config object.

Every trick of SPEC's training-tricks study is a setting here, so each of the paper's 10 protocols is
a preset of a few overrides rather than a code path. A protocol travels inside every trial's NNI
parameters in full (``Protocol.to_dict()``), so each result row in the trial DB records exactly how the
network was trained.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from nni_nas_bench.errors import ConfigError, unknown_name_error
from nni_nas_bench.yaml_file import read_yaml


@dataclass(frozen=True)
class Protocol:
    """How a child network is trained; defaults are the DARTS final-training protocol of SPEC (CIFAR)."""

    name: str = "darts"
    epochs: int = 600
    batch_size: int = 96
    channels: int = 36                 # initial channels C
    layers: int = 20                   # number of cells (20 on CIFAR, 8 on the 224-px datasets)
    lr: float = 0.025
    lr_min: float = 0.0                # cosine annealing floor
    lr_schedule: str = "cosine"        # 'cosine' (per epoch, DARTS) or 'cosine_restarts' (SGDR, ENAS)
    restart_period: int = 10           # SGDR T0 in epochs (cosine_restarts only)
    restart_mult: int = 2              # SGDR Tmul (cosine_restarts only)
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 3e-4
    grad_clip: float = 5.0             # max gradient norm; 0 disables clipping
    cutout: int = 16                   # cutout side in pixels; 0 disables
    drop_path: float = 0.2             # final DropPath probability, ramped linearly from 0 over the epochs
    auxiliary_weight: float = 0.4      # weight of the auxiliary head's loss at cell 2n/3; 0 removes the head
    autoaugment: bool = False          # torchvision AutoAugment (CIFAR10 policy)
    label_smoothing: float = 0.0
    seed: int = 0                      # training seed: weights init, data order, augmentation, DropPath
    subset: int | None = None          # at most this many images per class (quick runs); None = all
    eval_batch_size: int = 500
    precision: str = "auto"            # 'fp32', 'bf16' (autocast), or 'auto' = bf16 on CUDA, fp32 on CPU
    channels_last: bool | None = None  # None = on for CUDA, off for CPU
    cuda_graphs: bool | None = None    # the training step as one CUDA graph; None = on for CUDA, off for CPU

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name), f.type)
        positive = ("epochs", "batch_size", "channels", "layers", "eval_batch_size", "restart_period", "restart_mult")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"protocol.{name} must be > 0, got {getattr(self, name)}")
        if self.layers < 3:
            raise ConfigError(
                f"protocol.layers must be >= 3 (a cell network has two reduction cells), got {self.layers}"
            )
        for name in ("lr", "lr_min", "weight_decay", "grad_clip", "cutout", "auxiliary_weight", "label_smoothing"):
            if getattr(self, name) < 0:
                raise ConfigError(f"protocol.{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.drop_path < 1:
            raise ConfigError(f"protocol.drop_path must be in [0, 1), got {self.drop_path}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"protocol.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.lr_schedule not in ("cosine", "cosine_restarts"):
            raise ConfigError(f"protocol.lr_schedule must be 'cosine' or 'cosine_restarts', got {self.lr_schedule!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"protocol.precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")
        if self.subset is not None and self.subset <= 0:
            raise ConfigError(
                f"protocol.subset must be a positive number of images per class or null, got {self.subset}"
            )

    # --------------------------------------------------------------------------------- conversion
    def to_dict(self) -> dict[str, Any]:
        """Every setting, JSON-serialisable: what a trial's parameters and the result rows carry."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> Protocol:
        """A copy with some settings changed (validated like any protocol)."""
        return from_dict({**self.to_dict(), **changes})

    def lr_at(self, epoch: int) -> float:
        """Learning rate of an epoch (0-based), stepped once per epoch as in DARTS and ENAS."""
        import math

        if self.lr_schedule == "cosine":
            t, period = epoch, self.epochs
        else:  # SGDR: restart after T0, T0*Tmul, ... epochs
            t, period = epoch, self.restart_period
            while t >= period:
                t -= period
                period *= self.restart_mult
        return self.lr_min + 0.5 * (self.lr - self.lr_min) * (1 + math.cos(math.pi * t / period))


_FIELD_NAMES = tuple(f.name for f in fields(Protocol))


def _check_type(name: str, value: Any, annotation: str) -> None:
    """Reject wrongly typed YAML values (``epochs: ten``) with the setting's name."""
    allowed = {
        "int": (int,), "float": (int, float), "str": (str,), "bool": (bool,),
        "int | None": (int, type(None)), "bool | None": (bool, type(None)),
    }[annotation]
    is_bool = isinstance(value, bool)
    if not isinstance(value, allowed) or (is_bool and bool not in allowed):
        raise ConfigError(f"protocol.{name} must be {annotation}, got {value!r} ({type(value).__name__})")
    if isinstance(value, float) and not math.isfinite(value):
        # ``lr: .nan`` passes every comparison (nan < 0 is False) and would train a NaN network.
        raise ConfigError(f"protocol.{name} must be a finite number, got {value!r}")


# Named protocols. SPEC experiment 1's ten protocols are 'base' plus tricks; the method-specific final
# trainings of SPEC's "Per-method differences" are DARTS plus their own changes.
_BASE = {"cutout": 0, "drop_path": 0.0, "auxiliary_weight": 0.0, "autoaugment": False}
PRESETS: dict[str, dict[str, Any]] = {
    "darts": {},
    # SPEC experiment 1 (training tricks), in the paper's order; cutout + DropPath + auxiliary is 'darts'.
    "base": _BASE,
    "auxiliary": {**_BASE, "auxiliary_weight": 0.4},
    "drop_path": {**_BASE, "drop_path": 0.2},
    "cutout": {**_BASE, "cutout": 16},
    "cutout_drop_path": {**_BASE, "cutout": 16, "drop_path": 0.2},
    "channels_50": {"channels": 50},
    "autoaugment": {"autoaugment": True},
    "epochs_1500": {"epochs": 1500},
    "all": {"channels": 50, "autoaugment": True, "epochs": 1500},
    # Per-method final-training differences (SPEC).
    "pdarts": {"batch_size": 128, "drop_path": 0.3},
    "manas": {"batch_size": 128},
    "cnas": {"label_smoothing": 0.1, "drop_path": 0.25},
    # NSGA-Net: 34 ch (its SE and filter increment 4 are settings of the 'nsganet' space); its search
    # trained each candidate 20 epochs, batch 128, 16 ch, 8 cells, without the final-training tricks.
    "nsganet": {"channels": 34},
    "nsganet_search": {**_BASE, "epochs": 20, "batch_size": 128, "channels": 16, "layers": 8},
    # Single-Path NAS's MobileNetV2 chain (space 'mobilenet_sp') with the DARTS recipe: width 1.0 (32 stem
    # channels), its fixed 22 layers, no auxiliary head (the chain has none); DropPath on residual branches.
    "single_path": {"channels": 32, "layers": 22, "auxiliary_weight": 0.0},
    # ENAS: the benchmark's CIFAR command (ENASTF/README.md = melodyguan/enas cifar10_micro_final.sh): 15 + 2
    # cells, 630 epochs, batch 144, SGDR 0.05 -> 0.0001 (T0 10, Tmul 2), Nesterov, l2 2e-4, DropPath keep 0.6,
    # auxiliary head, no cutout (none in the command); its dropout keep 0.8 is the 'enas' space's dropout 0.2.
    "enas": {"layers": 17, "epochs": 630, "batch_size": 144, "lr": 0.05, "lr_min": 0.0001,
             "lr_schedule": "cosine_restarts", "restart_period": 10, "restart_mult": 2, "nesterov": True,
             "weight_decay": 2e-4, "drop_path": 0.4, "cutout": 0},
    # NAO: the benchmark's train_cifar.py command = DARTS's protocol with batch 128; its dropout 0.4 before
    # the classifier is the 'nao' space's 'dropout' setting.
    "nao": {"batch_size": 128},
    # A CPU-sized protocol to see the whole loop work in minutes (not a benchmark result).
    "quick": {"epochs": 3, "batch_size": 64, "channels": 8, "layers": 5, "subset": 100, "cutout": 16,
              "drop_path": 0.1, "auxiliary_weight": 0.4},
}


def from_dict(settings: Mapping[str, Any] | str | None) -> Protocol:
    """Build a protocol from ``{preset: name, <setting>: value, ...}`` or a preset name.

    The preset's name becomes the protocol's ``name`` unless ``name`` is given; unknown settings are
    rejected with the list of valid ones (a typo must not silently train the default protocol).
    """
    if settings is None:
        settings = {}
    if isinstance(settings, str):
        settings = {"preset": settings}
    if not isinstance(settings, Mapping):
        raise ConfigError(f"a protocol must be a preset name or a mapping of settings, got {settings!r}")
    return overlay(Protocol(), settings)


def overlay(protocol: Protocol, changes: Mapping[str, Any] | str | None) -> Protocol:
    """``protocol`` with a preset's settings and/or explicit settings applied on top.

    This is how a study varies one thing: ``overlay(p, 'cutout')`` is ``p`` with the cutout preset's
    settings (and its name); ``overlay(p, {'preset': 'base', 'epochs': 25})`` adds an explicit change.
    Settings the changes do not mention (epochs, subset, seed, ...) stay as in ``protocol``.
    """
    if changes is None:
        return protocol
    if isinstance(changes, str):
        changes = {"preset": changes}
    if not isinstance(changes, Mapping):
        raise ConfigError(f"protocol changes must be a preset name or a mapping of settings, got {changes!r}")
    changes = dict(changes)
    preset = changes.pop("preset", None)
    merged = protocol.to_dict()
    if preset is not None:
        if preset not in PRESETS:
            raise unknown_name_error("protocol preset", str(preset), list(PRESETS))
        merged.update({"name": preset, **PRESETS[preset]})
    unknown = sorted(set(changes) - set(_FIELD_NAMES))
    if unknown:
        raise ConfigError(f"unknown protocol setting(s) {unknown}; valid settings: {', '.join(_FIELD_NAMES)}")
    return Protocol(**{**merged, **changes})


def from_yaml(path: str | Path) -> Protocol:
    """Read a protocol YAML file (a mapping of settings, optionally with ``preset``)."""
    return from_dict(read_yaml(path, "protocol file"))
