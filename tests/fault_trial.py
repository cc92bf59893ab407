"""The real trial entry point with failures injected, for end-to-end failure tests (never used by YAMLs).

    NNB_TEST_FAULTS='{"crash": "crash", "arch0": "hang"}' NNB_TEST_FAULT_DIR=DIR python -m tests.fault_trial ...

Arguments are those of ``python -m nni_nas_bench.trial``. ``NNB_TEST_FAULTS`` maps a trial (its
``variant`` name, else ``arch<index>``) to a fault, injected at the start of the trial's SECOND epoch, so
the first epoch's checkpoint exists when it strikes:

- ``crash``: an unexpected exception (a bug in user code, a broken node): the trial exits with a traceback;
- ``oom``: ``torch.OutOfMemoryError`` as CUDA raises it, so the entry point's OOM handling is exercised
  without a GPU;
- ``kill``: the process SIGKILLs itself (the OOM killer, a preempted node), once: the fault leaves a marker
  in ``NNB_TEST_FAULT_DIR``, and a re-submitted trial with the same parameters trains normally;
- ``hang``: the process writes a marker and sleeps until it is stopped (``nnictl stop``), once.

NaN loss needs no injection: a protocol with ``lr: 1e30`` and no gradient clipping diverges for real.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch

import nni_nas_bench.trial as trial_module
from nni_nas_bench.training import trainer


def _fault_of(params: dict[str, Any]) -> str | None:
    faults = json.loads(os.environ.get("NNB_TEST_FAULTS", "{}"))
    name = params.get("variant") or f"arch{params.get('arch_index')}"
    return faults.get(name)


def _strike(fault: str, marker: Path) -> None:
    if fault == "crash":
        raise RuntimeError("injected crash in epoch 2")
    if fault == "oom":
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
    if marker.exists():
        return  # kill / hang strike once: the re-run of the same trial trains normally
    marker.write_text(str(os.getpid()))
    if fault == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "hang":
        while True:
            time.sleep(1)
    raise ValueError(f"unknown injected fault {fault!r}")


def main() -> int:
    """Wrap the trainer's epoch so the fault of this trial's parameters strikes in epoch 2."""
    real_run_trial, real_train_epoch = trial_module.run_trial, trainer.train_epoch

    def run_trial(params: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        fault = _fault_of(params)
        if fault is not None:
            marker = Path(os.environ["NNB_TEST_FAULT_DIR"]) / f"{fault}-{params.get('variant')}-{params['arch_index']}"
            calls = []

            def train_epoch(*args: Any, **kw: Any) -> Any:
                calls.append(1)
                if len(calls) == 2:  # epoch 2 of a fresh run (a run resumed after epoch 1 never gets here)
                    _strike(fault, marker)
                return real_train_epoch(*args, **kw)

            trainer.train_epoch = train_epoch
        return real_run_trial(params, **kwargs)

    trial_module.run_trial = run_trial
    return trial_module.main()


if __name__ == "__main__":
    sys.exit(main())
