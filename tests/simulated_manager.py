"""NNI 3.0's manager and dispatcher, simulated, for testing the serving tuners without launching NNI.

The manager asks for ``concurrency`` trials at the start and for one more each time a trial ends; the
dispatcher passes ``st_callback`` for trials the tuner sends later (read from
``nni/runtime/msg_dispatcher.py`` and ``nni_node/core/nnimanager.js``). Trials end in a seeded random
order. With ``misattribute``, trial ends name a parameter id of another trial (NNI's #5726). ``order`` is
which of a successful trial's events comes first: its FINAL metric (``metric``, the usual case), its end
(``end``: the tuner's two dispatcher threads race), or even the manager's request for a new trial
(``request``: the metric is processed last).
"""

from __future__ import annotations

import itertools
import random
from typing import Any, Callable

Params = dict[str, Any]
Done = list[tuple[int, Params, bool]]


def simulate(tuner: Any, *, concurrency: int, ok: Callable[[Params], bool], metrics: Callable[[Params, bool], Params],
             seed: int = 0, misattribute: bool = False, order: str = "metric") -> Done:
    """Run ``tuner`` to the end; return (parameter id, parameters, ok) per trial in the order trials ended.

    ``ok(params)`` says whether a trial succeeds; ``metrics(params, ok)`` is its FINAL metric dict (sent
    only when it succeeds).
    """
    rng = random.Random(seed)
    ids = itertools.count()
    waiting: list[tuple[int, Params]] = []

    def request(n: int) -> None:
        asked = [next(ids) for _ in range(n)]
        served = tuner.generate_multiple_parameters(asked, st_callback=lambda pid, p: waiting.append((pid, p)))
        waiting.extend(zip(asked, served))

    request(concurrency)
    running: list[tuple[int, Params]] = []
    done: Done = []
    submitted = 0
    for _ in range(10 * tuner.num_trials + 100):
        while waiting and len(running) < concurrency and submitted < tuner.num_trials:
            running.append(waiting.pop(0))
            submitted += 1
        if not running:
            break
        pid, params = running.pop(rng.randrange(len(running)))
        success = ok(params)
        final = metrics(params, success)
        end_pid = rng.choice([p for p, _, _ in done] + [pid]) if misattribute else pid
        if success and order == "metric":
            tuner.receive_trial_result(pid, params, final, trial_job_id=f"T{pid}")
        tuner.trial_end(end_pid, success)
        if success and order == "end":
            tuner.receive_trial_result(pid, params, final, trial_job_id=f"T{pid}")
        request(1)
        if success and order == "request":
            tuner.receive_trial_result(pid, params, final, trial_job_id=f"T{pid}")
        done.append((pid, params, success))
    assert not running and not waiting, "the experiment did not finish"
    assert submitted == tuner.num_trials == len(done)
    return done
