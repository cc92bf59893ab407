"""The trial contract: the parameter dict a tuner hands a trial, and what of it the trial repeats.

Tuners (:mod:`nni_nas_bench.tuners`) write a trial's parameters, trials (:mod:`nni_nas_bench.trial`,
:mod:`nni_nas_bench.search_trial`, :mod:`nni_nas_bench.tabular.trial`) read them and repeat their
identity in their FINAL metrics, and the analysis (:mod:`analysis.trial_db`) and a resumed tuner's
journal (:mod:`nni_nas_bench.tuners.journal`) read both back. This module is where that interface is
written down, once:

- :class:`Role`: what a trial is to its experiment (the ``role`` key; its values are the DB's text);
- :class:`TrialParams`: every key a trial's parameters may hold; :data:`IDENTITY` the keys that say who
  a trial is, which every trial copies into its metrics (:func:`identity`), because NNI 3.0 may record
  another trial's parameters for a trial when several run at once (upstream #5726);
- :func:`trial_key`: which trial of one serving tuner a parameter (or metric) dict is;
- :func:`arch_id` / :func:`with_arch_id`: the short architecture id every trial reports beside its genotype;
- the parameter line: :func:`parameters_line` writes the first line of a trial's log,
  :func:`read_parameters` reads it back for a trial that never reported metrics.

Standard library only: a tuner imports this before it connects to NNI, within NNI's 10 s.
"""

from __future__ import annotations

import hashlib
import json
from enum import Enum
from pathlib import Path
from typing import Any, TypedDict


class Role(str, Enum):
    """What a trial is to its experiment. A ``str``: ``Role.SEARCHED == "searched"``, so the values in
    parameter dicts, metrics and NNI's DB stay the plain text they always were."""

    SEARCH = "search"        # one run of a method's search (one search seed); reports the genotype found
    SEARCHED = "searched"    # the final training of a genotype a search found
    RANDOM = "random"        # an architecture drawn uniformly from the space (the random baseline)
    CANDIDATE = "candidate"  # one evaluation of a multi-trial search (judged on the search split)

    def __str__(self) -> str:
        return self.value


class TrialIdentity(TypedDict, total=False):
    """Who a trial is: the keys a trial copies from its parameters into its FINAL metrics."""

    role: str             # a Role value
    method: str           # the NAS method ('random' for the random baseline)
    dataset: str
    space: str
    arch_index: int       # index of a random architecture within its experiment
    arch_seed: int        # seed random architectures are drawn from
    search_seed: int      # the search run a search, searched or candidate trial belongs to
    source_trial: str     # the NNI trial id of the search that found a searched trial's genotype
    study: str            # the ablation study ('tricks', 'seeds', ...)
    variant: str          # its variant within the study
    candidate_index: int  # which evaluation of its search a candidate is (0, 1, ...)


class TrialParams(TrialIdentity, total=False):
    """Every key a trial's parameters may hold (tuners write them; paths are never parameters)."""

    space_args: dict[str, Any]
    genotype: str            # DARTS notation (or the space's text form)
    protocol: dict[str, Any]  # the full training protocol (nni_nas_bench.training.Protocol.to_dict())
    search: dict[str, Any]   # a search trial's method settings (its seed is search_seed)
    tabular: dict[str, Any]  # table lookup settings instead of training (NAS-Bench-201)
    search_failed: str       # a stand-in searched trial: why there is nothing to train
    zero_cost: dict[str, Any]  # a candidate scored by a training-free proxy instead of trained (proxy, batch_size)


IDENTITY: tuple[str, ...] = tuple(TrialIdentity.__annotations__)
# Which trial of one serving tuner a dict is: role plus the seeds and indices that tell its trials apart
# (method, dataset and space are the tuner's own and the same for all of them).
KEY: tuple[str, ...] = ("role", "search_seed", "candidate_index", "arch_index", "variant")


def identity(params: dict[str, Any]) -> dict[str, Any]:
    """The identity keys ``params`` holds: what a trial repeats in its metrics."""
    return {k: params[k] for k in IDENTITY if k in params}


def trial_key(params: Any) -> str | None:
    """Which trial of the experiment ``params`` (parameters or a trial's own FINAL metrics) are: role and
    seeds/indices, unique among the trials of one serving tuner. None when they name no role."""
    if not isinstance(params, dict) or not isinstance(params.get("role"), str):
        return None
    return "/".join(str(params.get(name)) for name in KEY)


def arch_id(space: Any, space_args: str, genotype: str) -> str:
    """A short id of an architecture: the first 8 hex digits of the SHA-1 of ``space|space_args|genotype``
    (``space_args`` the JSON text with sorted keys a trial reports).

    Every trial reports it (metric key ``arch_id``) beside the full genotype, because a DARTS genotype is
    ~400 characters: NNI's web UI shows it as a column a researcher can read at a glance ("Add/Remove
    columns" -> ``arch_id``), and the report's architecture table (:func:`analysis.stats.architecture_table`)
    gives the same id, so the same architecture has one id in every experiment, role, protocol and seed
    (the tricks study trains one architecture under ten protocols: one id). The space and its settings
    are part of it: the same genotype text in a 5-cell and a 20-cell network are two architectures.
    """
    return hashlib.sha1(f"{space}|{space_args}|{genotype}".encode()).hexdigest()[:8]


def with_arch_id(metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics`` (a trial's FINAL dict: ``space``, ``space_args`` text, ``genotype``) with its ``arch_id``,
    computed from the values it reports, which are what the analysis reads back."""
    return {**metrics, "arch_id": arch_id(metrics.get("space"), metrics.get("space_args", "{}"), metrics["genotype"])}


# ------------------------------------------------------------------------------------ parameter line
# The line a trial prints first: its parameters as JSON. NNI 3.0 may record another trial's parameters
# for a trial (#5726); a trial that fails never reports metrics, so this line in its trial.stdout is how
# the analysis and a resumed tuner know what it was.
PARAMETERS_LINE = "nni-nas-bench: parameters "
_HEAD_BYTES = 65536  # the line is printed first; only the head of a (possibly huge) log is read


def parameters_line(params: dict[str, Any]) -> str:
    """The first line a trial prints: the marker and its parameters as JSON (sorted keys)."""
    return PARAMETERS_LINE + json.dumps(params, sort_keys=True)


def read_parameters(experiment_dir: str | Path, trial_id: str) -> dict[str, Any] | None:
    """The parameters a trial printed it runs (first lines of its trial.stdout, or of trial.log where NNI's
    local service redirects a trial's prints once it imported nni); None when no log holds the line.

    With several trials at once NNI 3.0 can record another trial's parameters for a trial (#5726); a trial
    that reported FINAL carries its identity in its metrics, and this line is what a FAILED one leaves.
    Only the head of the file is read; a remote worker's logs are not in the local experiment folder.
    """
    for path in sorted(Path(experiment_dir).glob(f"environments/*/trials/{trial_id}/trial.*")):
        try:
            with path.open("rb") as fh:
                head = fh.read(_HEAD_BYTES).decode("utf-8", "replace")
        except OSError:
            continue
        for line in head.splitlines():
            if PARAMETERS_LINE in line:
                try:
                    value = json.loads(line.split(PARAMETERS_LINE, 1)[1])
                except json.JSONDecodeError:
                    return None
                return value if isinstance(value, dict) else None
    return None
