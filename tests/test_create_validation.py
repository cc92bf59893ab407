"""A bad experiment launched with plain ``nnictl create`` (no ``nas-bench check`` first).

NNI 3.0 cannot reject a bad tuner setting at ``nnictl create`` (``nni_nas_bench/tuners/validators.py``
says why, from NNI's code); the tuner ends the experiment within seconds instead, with the one-line
reason as the last line of ``dispatcher.log``, which the web UI's "Learn more" opens. These tests pin
that: the experiment-wide checks run on the config NNI's manager hands the dispatcher, an error ends the
dispatcher process before it connects, and a multi-trial tuner with an unknown method, which NNI 3.0
used to leave RUNNING forever, ends as ERROR.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.tuners import RandomBaselineTuner
from nni_nas_bench.tuners.validators import check_started_experiment
from tests.conftest import REPO

RANDOM = yaml.safe_load((REPO / "experiments" / "cifar10" / "random.yml").read_text())


def _as_dispatcher(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **changes: Any) -> None:
    """Make this process look like NNI's dispatcher of experiments/cifar10/random.yml with ``changes``.

    The manager passes the canonical config as JSON without ``searchSpace``, base64-encoded in
    ``--exp_params`` (``nni_node/common/utils.js``: ``getMsgDispatcherCommand``), and sets SDK_PROCESS.
    """
    from nni.experiment.config import ExperimentConfig

    config = json.loads(json.dumps(RANDOM))
    config.update(trialCodeDirectory=str(REPO), **changes)
    config["tuner"]["codeDirectory"] = str(REPO)
    path = tmp_path / "experiment.yml"
    path.write_text(yaml.safe_dump(config))
    params = ExperimentConfig.load(str(path)).canonical_copy().json()
    del params["searchSpace"]
    encoded = base64.b64encode(json.dumps(params).encode()).decode()
    monkeypatch.setattr(sys, "argv", ["-m", "--exp_params", encoded])
    monkeypatch.setenv("SDK_PROCESS", "dispatcher")


@pytest.fixture(scope="module")
def tuner() -> RandomBaselineTuner:
    """The YAML's tuner (8 trials), built outside a dispatcher (inside, a failed check ends the process)."""
    return RandomBaselineTuner(**RANDOM["tuner"]["classArgs"])


def test_the_shipped_config_passes(tuner: RandomBaselineTuner, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _as_dispatcher(monkeypatch, tmp_path)
    check_started_experiment(tuner)


@pytest.mark.parametrize("changes, message", [
    ({"maxTrialNumber": 5}, r"maxTrialNumber is 5 but the tuner submits 8 trials; NNI would stop the experiment "
                            r"early: set maxTrialNumber: 8"),
    ({"trialGpuNumber": 1, "trainingService": {"platform": "local", "gpuIndices": [0], "useActiveGpu": True}},
     r"this machine: each trial asks for .* = 1 GPU\(s\) but it offers 1; NNI 3.0 never places"),
], ids=["too-few-trials", "gpu-request-equals-gpus"])
def test_the_managers_config_is_checked(tuner: RandomBaselineTuner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        changes: dict[str, Any], message: str) -> None:
    _as_dispatcher(monkeypatch, tmp_path, **changes)
    with pytest.raises(ConfigError, match=message):
        check_started_experiment(tuner)
    monkeypatch.delenv("SDK_PROCESS")  # outside a dispatcher the caller (nas-bench check) checks the YAML
    check_started_experiment(tuner)


def run_as_dispatcher(code: str, log_dir: Path) -> subprocess.CompletedProcess:
    """Run ``code`` in a process that looks like NNI's dispatcher to the suite (SDK_PROCESS, log folder)."""
    env = {**os.environ, "SDK_PROCESS": "dispatcher", "NNI_LOG_DIRECTORY": str(log_dir), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=log_dir,
                          env=env)


def test_an_error_ends_the_dispatcher_before_it_connects(tmp_path: Path) -> None:
    """A tuner whose (background) build fails: one line on stderr and in dispatcher.log, exit 2, before NNI
    would connect."""
    code = """if True:
        import time
        from nni_nas_bench.errors import ConfigError
        from nni_nas_bench.tuners.validators import check_in_dispatcher

        class Tuner:
            def __init__(self, error):
                self.error = error

            @property
            def num_trials(self):
                time.sleep(0.5)  # still building when __init__ ends
                if self.error:
                    raise ConfigError(self.error)
                return 1

        check_in_dispatcher(Tuner(None))
        print("first tuner connects", flush=True)
        check_in_dispatcher(Tuner("unknown strategy 'evolutionn'"))
        print("second tuner connects", flush=True)
    """
    out = run_as_dispatcher(code, tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stdout.splitlines() == ["first tuner connects"]
    line = "nni-nas-bench: error: unknown strategy 'evolutionn'"
    assert out.stderr.strip().splitlines()[-1] == line
    assert (tmp_path / "dispatcher.log").read_text().strip().splitlines()[-1].endswith(line)


@pytest.mark.slow
def test_nnictl_create_of_a_multi_trial_experiment_with_an_unknown_method(tmp_path: Path) -> None:
    """NNI 3.0 left this RUNNING with no trial forever; now ERROR within seconds, reason in the web UI's log."""
    from tests.nnictl_session import create

    config = yaml.safe_load((REPO / "experiments" / "cifar10" / "evolution.yml").read_text())
    config["tuner"]["classArgs"]["method"] = "evolutionn"
    config["tuner"]["codeDirectory"] = config["trialCodeDirectory"] = str(REPO)
    tic = time.time()
    out, session = create(config, tmp_path)
    assert out.returncode == 0 and session is not None, out.stdout + out.stderr  # NNI 3.0: create cannot fail
    try:
        while session.status()["status"] != "ERROR" and time.time() - tic < 60:
            time.sleep(0.5)
        status = session.status()
        assert status["status"] == "ERROR" and time.time() - tic < 35, status  # 10 s after the manager starts
        assert "check tuner (dispatcher) log" in status["errors"][0]  # the web UI's error box
        with urllib.request.urlopen(f"{session.url}/logs/dispatcher.log", timeout=10) as r:  # its "Learn more"
            last = r.read().decode().strip().splitlines()[-1]
        assert "nni-nas-bench: error: unknown strategy 'evolutionn'; choose one of: " in last, last
        assert not session.trials()
    finally:
        session.stop()


def test_every_nni_callback_of_the_suites_tuners_ends_the_dispatcher_on_an_error(tmp_path: Path) -> None:
    """NNI 3.0 leaves an experiment RUNNING forever when a tuner callback raises: each callback of every
    tuner ends the dispatcher with its reason instead, except NNI's own "wait" (NoMoreTrialError)."""
    from nni_nas_bench.tuners import BenchmarkTuner, MultiTrialTuner, RandomBaselineTuner
    from nni_nas_bench.tuners.validators import NNI_CALLBACKS

    for tuner in (BenchmarkTuner, MultiTrialTuner, RandomBaselineTuner):
        for name in NNI_CALLBACKS:
            method = getattr(tuner, name)
            if name != "generate_multiple_parameters" or tuner is not RandomBaselineTuner:  # NNI's own loop
                assert getattr(method, "__wrapped__", None) is not None, f"{tuner.__name__}.{name} is not wrapped"
    code = """if True:
        from nni import NoMoreTrialError
        from nni_nas_bench.tuners.validators import ends_dispatcher_on_error

        class Tuner:
            @ends_dispatcher_on_error
            def generate_parameters(self, parameter_id):
                raise NoMoreTrialError("waiting for results")

            @ends_dispatcher_on_error
            def receive_trial_result(self, parameter_id, parameters, value):
                return {}[parameter_id]  # a bug

        tuner = Tuner()
        try:
            tuner.generate_parameters(0)
        except NoMoreTrialError:
            print("waits", flush=True)
        tuner.receive_trial_result(7, {}, 1.0)
        print("still running", flush=True)
    """
    out = run_as_dispatcher(code, tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stdout.splitlines() == ["waits"]
    assert out.stderr.strip().splitlines()[-1] == "nni-nas-bench: error: 7"
    assert "KeyError" in (tmp_path / "dispatcher.log").read_text()  # a bug keeps its traceback in the log
