"""Per-epoch checkpoints, so a killed trial resumes where it stopped instead of at epoch 0.

A restarted NNI trial is a new trial job with a new id and output folder, so checkpoints are keyed by
what the trial *trains* (experiment id + a hash of its parameters), not by the trial id: the re-run of
the same (architecture, protocol, seed) finds the previous run's last epoch.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from nni_nas_bench.errors import ConfigError


def default_checkpoint_root() -> Path:
    """``$NNB_CHECKPOINT_DIR`` or ``~/.cache/nni_nas_bench/checkpoints``."""
    env = os.environ.get("NNB_CHECKPOINT_DIR")
    return Path(env) if env else Path.home() / ".cache" / "nni_nas_bench" / "checkpoints"


def _canonical(value: Any) -> Any:
    """``value`` with every number as a float: NNI's manager (JavaScript) writes the tuner's ``5.0`` back
    as ``5``, so a trial re-submitted from the web UI or the REST API must hash like the original."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def checkpoint_key(params: dict[str, Any], experiment_id: str | None = None) -> str:
    """Stable name for the run of ``params`` (canonical JSON: key order and 5 vs 5.0 do not matter)."""
    text = json.dumps(_canonical(params), sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode()).hexdigest()[:20]
    return f"{experiment_id or 'standalone'}-{digest}"


class CheckpointStore:
    """One file per run; writes are atomic (temp file + rename) so a kill mid-write loses nothing."""

    def __init__(self, root: str | Path, key: str):
        self.path = Path(root) / f"{key}.pt"

    def load(self) -> dict[str, Any] | None:
        """The last saved state, or None when this run never saved one.

        ``weights_only=True``: a checkpoint is tensors, numbers, strings and containers, nothing else, so
        unpickling arbitrary objects is refused. A crafted file (``__reduce__`` calling a shell) is then an
        unreadable checkpoint, never code run on load.
        """
        if not self.path.exists():
            return None
        try:
            return torch.load(self.path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            # torch's own message suggests weights_only=False, i.e. running the file's code: not here.
            raise ConfigError(
                f"checkpoint {self.path} is unreadable (it holds objects other than tensors and plain data, "
                "refused since loading them could run code); delete it to retrain this run from epoch 0"
            ) from None
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"checkpoint {self.path} is unreadable ({reason}); delete it to retrain this run from epoch 0"
            ) from None

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        torch.save(state, tmp)
        os.replace(tmp, self.path)
