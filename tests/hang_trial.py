"""The real trial entry point, with one tabular candidate that hangs once, for the ``nnictl resume`` test.

    NNB_TEST_HANG=MARKER python -m tests.hang_trial --data-root DIR

Candidate 1 of a search writes ``MARKER`` and sleeps until the experiment is stopped; run again (NNI
re-runs it after ``nnictl resume``) it finds the marker and looks its cell up normally. (tests/fault_trial.py
strikes in a training epoch; tabular trials do not train.)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import nni_nas_bench.tabular.trial as tabular_trial
import nni_nas_bench.trial as trial_module


def main() -> int:
    real = tabular_trial.run_tabular_trial

    def run_tabular_trial(params: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        marker = Path(os.environ["NNB_TEST_HANG"])
        if params.get("candidate_index") == 1 and not marker.exists():
            marker.write_text(str(os.getpid()))
            while True:
                time.sleep(1)
        return real(params, **kwargs)

    tabular_trial.run_tabular_trial = run_tabular_trial
    return trial_module.main()


if __name__ == "__main__":
    sys.exit(main())
