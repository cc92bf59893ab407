"""Where a bad experiment YAML can fail under NNI 3.0, and the checks a tuner makes when NNI starts it.

Why ``nnictl create`` itself cannot reject a bad tuner setting (read from NNI 3.0's code):

- ``nnictl create`` (``nni/tools/nnictl/launcher.py``: ``create_experiment``) loads the YAML with
  ``ExperimentConfig.load``, validates NNI's own fields and POSTs the config to the NNI manager, then
  exits 0. For a tuner given by ``className``, NNI checks only that ``codeDirectory`` is a folder
  (``nni/experiment/config/algorithm.py``: ``_AlgorithmConfig._validate_canonical``); the class is never
  imported in that process, and nothing there can be hooked.
- A registered algorithm's ``classArgsValidator`` (``nnictl algo register --meta``) is called only by
  ``AlgoSchema.validate_class_args`` (``nni/tools/nnictl/config_schema.py``), which only the v1 legacy
  launcher reaches (``legacy_launcher.py``: v1 configs of ``adl``, or kubeflow / frameworkcontroller
  with ``reuse: false``). v2 YAMLs never reach it, so registering our tuners would change nothing.
- The manager starts the tuner in a separate dispatcher process (``python -m nni --exp_params <base64
  config>``, ``nni_node/common/utils.js``: ``getMsgDispatcherCommand``); ``nni/__main__.py`` builds the
  tuner from classArgs first and connects to the manager after. A constructor error therefore leaves the
  manager waiting for the connection; after 10 s (``nni_node/core/tuner_command_channel.js``) the
  experiment is ERROR with "Tuner did not connect in 10 seconds. Please check tuner (dispatcher) log".
  The web UI's error box has "Learn more", which opens ``dispatcher.log``; its last line is the tuner's
  one-line reason (``nnictl log stderr`` shows it too).

So the tuner is the earliest place, seconds after ``nnictl create``; ``nas-bench check`` runs the same
checks before launching. This module adds what the tuner needs on top of its own classArgs checks:

- :func:`check_started_experiment`: the checks of ``nas-bench check`` that need the whole experiment
  (``maxTrialNumber`` against the tuner's trial count, GPU settings NNI 3.0 accepts but never schedules,
  relative paths on remote workers), on the config the manager handed this dispatcher. Without them a
  plain ``nnictl create`` of such a YAML waits forever (or stops early) instead of failing.
- :func:`end_dispatcher`: NNI 3.0 does not end an experiment whose tuner raises in a callback. The
  dispatcher's worker thread stops, but its main loop (``nni/runtime/msg_dispatcher_base.py``: ``run``)
  only notices at the next command from the manager, and after a failed trial request none comes (the
  manager drops its pings): seen here, a multi-trial tuner with an unknown dataset left the experiment
  RUNNING with no trial. When a command does come, the dispatcher closes its channel cleanly, which the
  manager's tuner server does not listen to (``tuner_command_channel.js`` handles errors only). So a
  fatal error ends the process abruptly, after one line in ``dispatcher.log`` and on stderr. Before the
  connection, the manager reports it when its 10 s end (as above); after it, when the channel's 30 s
  reconnection window closes (``nni_node/common/command_channel/websocket/channel.js``), as ERROR
  "Dispatcher stream error, tuner may have crashed".
- :func:`check_names`: what a tuner calls first in ``__init__``: unknown method, dataset and space names
  from the registries (no torch), so that these common typos always fail before the connection.
- :func:`check_in_dispatcher`: what a tuner calls at the end of ``__init__``: both of the above, in a
  thread that a background build is waited for in, within the manager's 10 s connection limit.
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import logging
import os
import sys
import threading
import time
from typing import Any, Callable, TypeVar

from nni import NoMoreTrialError

from nni_nas_bench.errors import ConfigError, NasBenchError
from nni_nas_bench.training_services import check_training_service

_logger = logging.getLogger(__name__)

# Seconds after the dispatcher process started until which a tuner waits for its checks before it lets NNI
# connect. The manager allows 10 s from the start to the connection; on this project's loaded 2-core machine
# the dispatcher reached the tuner 2 s after its start and a multi-trial tuner's build ended at 6 s.
CONNECT_BY = 5.0


def in_dispatcher() -> bool:
    """True in the process NNI's manager started for the tuner (it sets ``SDK_PROCESS=dispatcher``)."""
    return os.environ.get("SDK_PROCESS") == "dispatcher"


def dispatcher_config() -> dict[str, Any] | None:
    """The experiment config (NNI's JSON form, without ``searchSpace``) the manager passed this dispatcher.

    It is the ``--exp_params`` argument ``nni/__main__.py`` itself decodes; None outside a dispatcher.
    """
    if not in_dispatcher():
        return None
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--exp_params")
    encoded = parser.parse_known_args(sys.argv[1:])[0].exp_params
    return json.loads(base64.b64decode(encoded).decode("utf-8")) if encoded else None


def check_names(method: str | None = None, dataset: str | None = None, space: str | None = None) -> None:
    """ConfigError for an unknown method, dataset or space name, from the registries alone (no torch).

    A tuner calls it in its constructor, before its background build: NNI's dispatcher then fails before it
    connects, so the experiment is ERROR 10 s after ``nnictl create`` however long the imports take on a
    busy machine (a build error found after the connection takes the manager's 30 s reconnection window more,
    see the module docstring).
    """
    from nni_nas_bench.data import get_dataset_info
    from nni_nas_bench.errors import unknown_name_error
    from nni_nas_bench.strategies import STRATEGIES
    from search_spaces import SPACES

    try:
        if method is not None and method not in STRATEGIES:
            raise unknown_name_error("strategy", method, list(STRATEGIES))
        if dataset is not None:
            get_dataset_info(dataset)
        if space is not None and space not in SPACES:
            raise unknown_name_error("search space", space, list(SPACES))
    except NasBenchError as exc:
        end_dispatcher(exc)  # in a dispatcher: the one line in dispatcher.log rather than NNI's traceback
        raise


def check_trial_count(max_trial_number: int | None, tuner: Any) -> None:
    """ConfigError when ``maxTrialNumber`` would end the experiment early, or never (serving tuners)."""
    wanted = getattr(tuner, "num_trials", None)
    if wanted is None or max_trial_number is None:
        return
    # Slots a resumed serving tuner added for NNI's duplicate re-runs (#5726; tuners/serving.py).
    wanted += getattr(tuner, "extra_trials", 0)
    if max_trial_number < wanted:
        raise ConfigError(
            f"maxTrialNumber is {max_trial_number} but the tuner submits {wanted} trials; NNI would stop the "
            f"experiment early: set maxTrialNumber: {wanted}"
        )
    if max_trial_number > wanted and getattr(tuner, "exact_trials", False):
        raise ConfigError(
            f"maxTrialNumber is {max_trial_number} but the tuner submits {wanted} trials; NNI would wait for the "
            f"missing ones forever: set maxTrialNumber: {wanted}"
        )


def check_started_experiment(tuner: Any) -> None:
    """In a dispatcher: the experiment-wide checks of ``nas-bench check`` (see the module docstring).

    Call it once the tuner's own classArgs are validated (it reads ``tuner.num_trials``). Outside a
    dispatcher (tests, ``nas-bench check``, Python) it does nothing: there the caller checks the YAML.
    """
    params = dispatcher_config()
    if params is None or "trainingServicePlatform" in params:
        return  # not started by NNI, or a v1 config (converted by NNI, not one of ours)
    from nni.experiment.config import ExperimentConfig

    try:
        config = ExperimentConfig(**{**params, "searchSpace": {}}).canonical_copy()
    except Exception as exc:  # NNI accepted this config already; a failure here is ours, not the user's
        _logger.warning("could not re-read the experiment config (%s); skipping nni-nas-bench's checks", exc)
        return
    check_training_service(config)
    check_trial_count(config.max_trial_number, tuner)


def end_dispatcher(error: BaseException) -> None:
    """In a dispatcher: log ``error`` as one line, then end the process (see the module docstring).

    Outside a dispatcher it returns, and the caller raises ``error`` as usual.
    """
    if not in_dispatcher():
        return
    message = f"nni-nas-bench: error: {error}"
    # A bad setting is the one line; anything else (a bug) keeps its traceback for the report.
    _logger.error(message, exc_info=None if isinstance(error, NasBenchError) else error)
    print(message, file=sys.stderr, flush=True)
    logging.shutdown()
    os._exit(2)


def check_in_dispatcher(tuner: Any) -> None:
    """Under nnictl: once ``tuner`` is built, :func:`check_started_experiment`; any error ends the dispatcher.

    Reading ``tuner.num_trials`` waits for a background build and raises its error, which NNI would
    otherwise leave waiting forever (module docstring). The checks run in a thread, and this waits for
    them only until :data:`CONNECT_BY` seconds after the process started, so that an error found by then
    ends the dispatcher before it connects (ERROR after the manager's 10 s rather than its 30 s reconnection
    window: module docstring). Outside a dispatcher: nothing.
    """
    if not in_dispatcher():
        return

    def run() -> None:
        try:
            getattr(tuner, "num_trials", None)  # waits for a background build; raises its error
            check_started_experiment(tuner)
        except BaseException as exc:
            end_dispatcher(exc)

    checks = threading.Thread(target=run, name="nni-nas-bench checks", daemon=True)
    checks.start()
    import psutil  # an NNI dependency

    checks.join(timeout=max(0.0, CONNECT_BY - (time.time() - psutil.Process().create_time())))


class BuildsInBackground:
    """A tuner that builds its heavy part (a space, strategies: torch, ``nni.nas``) in a thread.

    NNI's dispatcher builds the tuner before it connects, and the manager allows 10 s from the process's
    start (``benchmarks/tuner_connect.py``): the constructor starts the build and returns. Every NNI callback
    and ``num_trials`` call :meth:`_wait_built` first, which re-raises the build's error, so a bad classArg
    still fails at the first request (and :func:`check_in_dispatcher` ends the dispatcher on it at start).
    """

    _builder: threading.Thread | None = None
    _build_error: BaseException | None = None

    def _build_in_background(self, build: Callable[[], None]) -> None:
        """Run ``build`` (the heavy part of ``__init__``) in a thread under NNI's dispatcher.

        Elsewhere (Python, tests, ``nas-bench check``) there is no connect window to meet, so the build
        runs here and a bad setting raises from the constructor, where a caller expects it.
        """
        if not in_dispatcher():
            build()
            return

        def run() -> None:
            try:
                build()
            except BaseException as exc:  # re-raised by _wait_built in the caller's thread
                self._build_error = exc

        self._builder = threading.Thread(target=run, name=f"{type(self).__name__} setup", daemon=True)
        self._builder.start()

    def _wait_built(self) -> None:
        """Wait for :meth:`_build_in_background`'s work; raise its error, if any."""
        if self._builder is not None:
            self._builder.join()
        if self._build_error is not None:
            raise self._build_error


CallbackT = TypeVar("CallbackT", bound=Callable[..., Any])
# The methods NNI's dispatcher calls: an error in one of them must end the experiment, not hang it.
NNI_CALLBACKS = ("generate_multiple_parameters", "generate_parameters", "receive_trial_result", "trial_end",
                 "load_checkpoint", "import_data")


def ends_dispatcher_on_error(callback: CallbackT) -> CallbackT:
    """Wrap an NNI callback: any error but ``NoMoreTrialError`` (NNI's "wait") ends the dispatcher with its
    reason, since NNI 3.0 leaves an experiment whose tuner raised in a callback RUNNING forever
    (:mod:`nni_nas_bench.tuners.validators`). Outside NNI the error is raised as usual."""

    @functools.wraps(callback)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except NoMoreTrialError:
            raise
        except BaseException as exc:
            end_dispatcher(exc)
            raise

    return wrapped  # type: ignore[return-value]
