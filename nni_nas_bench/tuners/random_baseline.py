"""Random architectures of a space, trained under one or several settings, as an NNI tuner.

With one setting this is SPEC's random-sampling baseline: K architectures drawn uniformly by the space's
own sampler, each trained with the same protocol and training seed — what every NAS method must beat.
With ``variants`` it is a grid (architecture × variant), which is what the DARTS-space studies are:
the same 8 architectures under 10 training protocols, the same 32 under two seeds or two depths, the
same random draws in two op sets.

Architecture ``k`` depends only on ``(seed, k)`` (and on the space), so the same YAML always trains the
same architectures, whatever order trials finish in and however many run at once. In two op sets of
equal size the same draws give the same cell topology with the ops of the other set.

Failures and resume (what a researcher expects from a benchmark: every trial number is handed out once,
and a failure is a result, not a reason to silently retry):

- a trial that fails (crash, NaN, out of memory, killed) is recorded as FAILED by NNI and the tuner goes
  on with the next trial; it is never handed out again within the run, because NNI 3.0's ``trial_end``
  may name another trial's parameter id (#5726) and because a NaN or a crash under a fixed seed would
  fail again. To retry one, re-submit its parameters (web UI "Customized trial", or ``POST
  /api/v1/nni/trial-jobs``): the re-run continues from the failed run's last per-epoch checkpoint;
- ``nnictl resume`` of a stopped experiment: NNI itself re-runs the trials that were running (they
  continue from their checkpoints), and the tuner continues after the last trial number it handed out
  before the stop, which it keeps in NNI's tuner checkpoint folder (``NNI_CHECKPOINT_DIRECTORY``) and,
  as a second source, learns from the finished trials NNI re-imports (``import_data``). Without this a
  resumed tuner would start again at architecture 0: duplicates, and the last architectures never run.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from nni import NoMoreTrialError
from nni.tuner import Tuner

from nni_nas_bench.contract import Role, TrialParams
from nni_nas_bench.errors import ConfigError, mapping_arg
from nni_nas_bench.training import from_dict, overlay
from nni_nas_bench.tuners.validators import (
    BuildsInBackground,
    check_in_dispatcher,
    check_names,
    ends_dispatcher_on_error,
)

_logger = logging.getLogger(__name__)
_VARIANT_KEYS = ("name", "protocol", "space_args", "train_seed")
_STATE_FILE = "random_baseline_tuner.json"


def architecture_seed(seed: int, index: int) -> np.random.RandomState:
    """The generator of architecture ``index`` under experiment seed ``seed`` (independent streams)."""
    return np.random.RandomState([seed, index])


def random_trial_parameters(space: Any, space_name: str, space_args: dict[str, Any], dataset: str, arch_seed: int,
                            index: int, protocol: dict[str, Any]) -> TrialParams:
    """The parameters of random architecture ``index``: one definition for every tuner that trains them,
    so a benchmark experiment's random trials are, by construction, the random baseline's."""
    return {
        "role": Role.RANDOM.value,
        "method": "random",
        "dataset": dataset,
        "space": space_name,
        "space_args": space_args,
        "arch_index": index,
        "arch_seed": arch_seed,
        "genotype": space.sample(architecture_seed(arch_seed, index)).to_text(),
        "protocol": protocol,
    }


class RandomBaselineTuner(BuildsInBackground, Tuner):
    """classArgs:

    - ``dataset``; ``num_archs`` (K, default 8); ``seed`` (architecture sampling seed);
    - ``space`` (default 'darts') and ``space_args`` (e.g. ``{op_set: poor, n_nodes: 5}``);
    - ``protocol``: a preset name or ``{preset: ..., <setting>: ...}``; ``train_seed`` overrides its seed;
    - ``variants`` (optional): a list of ``{name, protocol, space_args, train_seed}``; every architecture
      is trained once per variant. A variant's ``protocol`` (a preset name and/or settings) is applied on
      top of the experiment's protocol (:func:`~nni_nas_bench.training.overlay`), so settings it does not
      mention (epochs, subset, seed) stay; its ``space_args`` override the space's settings;
    - ``study`` (optional): a label recorded with every trial (``tricks``, ``seeds``, ``depth``, ...), so
      the analysis knows which study a DB holds.
    """

    def __init__(self, dataset: str, num_archs: int = 8, space: str = "darts",
                 space_args: dict[str, Any] | None = None, protocol: Any = "darts", seed: int = 0,
                 train_seed: int | None = None, variants: list[dict[str, Any]] | None = None,
                 study: str | None = None):
        self._next = 0
        check_names(dataset=dataset, space=space)  # at once: an unknown name fails before NNI connects
        # The dataset registry and the spaces import torch: built in a thread, so that NNI's dispatcher connects
        # within the manager's 10 s (BuildsInBackground); a bad YAML still fails at start (check_in_dispatcher).
        self._build_in_background(lambda: self._build(dataset, num_archs, space, space_args, protocol, seed,
                                                      train_seed, variants, study))
        check_in_dispatcher(self)  # under nnictl: maxTrialNumber and GPU settings too

    def _build(self, dataset: str, num_archs: int, space: str, space_args: dict[str, Any] | None, protocol: Any,
               seed: int, train_seed: int | None, variants: list[dict[str, Any]] | None, study: str | None) -> None:
        """Validate every classArg and build the space of each variant."""
        from nni_nas_bench.data import get_dataset_info
        from search_spaces import create_space

        self.dataset = get_dataset_info(dataset).name
        if not isinstance(num_archs, int) or num_archs <= 0:
            raise ConfigError(f"num_archs must be a positive integer, got {num_archs!r}")
        base_protocol = from_dict(protocol)
        if train_seed is not None:
            base_protocol = base_protocol.replace(seed=train_seed)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            # numpy would fail later, in the dispatcher, with a cast error: say it here, at check/create.
            raise ConfigError(f"seed must be a non-negative integer (architecture k is drawn from (seed, k)), "
                              f"got {seed!r}")
        self.num_archs, self.seed, self.study = num_archs, seed, study
        self.space_name = space
        self.variants = []
        for i, variant in enumerate(variants or [{}]):
            if not isinstance(variant, dict) or set(variant) - set(_VARIANT_KEYS):
                raise ConfigError(f"variant {i} must be a mapping with keys among {_VARIANT_KEYS}, got {variant!r}")
            proto = overlay(base_protocol, variant.get("protocol"))
            if variant.get("train_seed") is not None:
                proto = proto.replace(seed=variant["train_seed"])
            args = {**mapping_arg("space_args", space_args),
                    **mapping_arg(f"variants[{i}].space_args", variant.get("space_args"))}
            changes = variant.get("protocol")
            names_preset = isinstance(changes, str) or (isinstance(changes, dict) and "preset" in changes)
            name = variant.get("name") or (proto.name if names_preset else f"variant{i}")
            self.variants.append({"name": str(name), "protocol": proto.to_dict(), "space_args": args,
                                  "space": create_space(space, **args)})
        names = [v["name"] for v in self.variants]
        if len(set(names)) != len(names):
            raise ConfigError(f"variant names must be distinct, got {names}")

    @property
    def num_trials(self) -> int:
        """Trials this tuner submits: architectures × variants (set ``maxTrialNumber`` to at least this)."""
        self._wait_built()
        return self.num_archs * len(self.variants)

    def trial_parameters(self, number: int) -> dict[str, Any]:
        """Parameters of trial ``number`` (architecture-major order), flat and readable in the web UI."""
        self._wait_built()
        index, variant = divmod(number, len(self.variants))
        v = self.variants[variant]
        params = random_trial_parameters(v["space"], self.space_name, v["space_args"], self.dataset, self.seed, index,
                                         v["protocol"])
        if len(self.variants) > 1 or self.study:
            params["variant"] = v["name"]
        if self.study:
            params["study"] = self.study
        return params

    @ends_dispatcher_on_error
    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict[str, Any]:
        if self._next >= self.num_trials:
            raise NoMoreTrialError(f"all {self.num_trials} trials were submitted")
        params = self.trial_parameters(self._next)
        self._next += 1
        self._save_state()
        _logger.info("parameter %s -> architecture %d, variant %s", parameter_id, params["arch_index"],
                     params.get("variant", "-"))
        return params

    @ends_dispatcher_on_error
    def receive_trial_result(self, parameter_id: int, parameters: dict[str, Any], value: Any, **kwargs: Any) -> None:
        """Nothing to learn: random architectures do not depend on results."""

    @ends_dispatcher_on_error
    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        """A failed trial stays failed: its number is not handed out again (see the module docstring)."""
        if not success:
            _logger.info("a trial failed (NNI names parameter %s, which may be another trial's); not retried",
                         parameter_id)

    # ------------------------------------------------------------------------------ resume
    def _state_path(self) -> Path | None:
        directory = self.get_checkpoint_path()  # NNI_CHECKPOINT_DIRECTORY, set by the manager at create/resume
        return Path(directory) / _STATE_FILE if directory else None

    def _save_state(self) -> None:
        path = self._state_path()
        if path is None:
            return
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"next": self._next, "num_trials": self.num_trials}))
        os.replace(tmp, path)

    @ends_dispatcher_on_error
    def load_checkpoint(self) -> None:
        """``nnictl resume``: continue after the last trial number handed out before the stop."""
        path = self._state_path()
        if path is not None and path.is_file():
            state = json.loads(path.read_text())
            self._next = max(self._next, int(state["next"]))
            _logger.info("resumed: trials 0..%d were handed out before the stop", self._next - 1)

    @ends_dispatcher_on_error
    def import_data(self, data: list[dict[str, Any]]) -> None:
        """Finished trials NNI re-imports on resume: their numbers are never handed out again."""
        for entry in data:
            number = self.trial_number(entry.get("value"))
            if number is not None:
                self._next = max(self._next, number + 1)
        self._save_state()

    def trial_number(self, metrics: Any) -> int | None:
        """The trial number of a trial's own FINAL metrics (architecture index and variant name), if any."""
        self._wait_built()
        if not isinstance(metrics, dict) or not isinstance(metrics.get("arch_index"), int):
            return None
        names = [v["name"] for v in self.variants]
        variant = metrics.get("variant", names[0])
        if variant not in names:
            return None
        return metrics["arch_index"] * len(names) + names.index(variant)

    def update_search_space(self, search_space: dict[str, Any]) -> None:
        """The space comes from classArgs; NNI's searchSpace field is unused."""
