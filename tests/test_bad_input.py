"""Malformed or inconsistent experiments fail early with one clear message: at ``nas-bench check`` (before
launching), at ``nnictl create`` (the tuner's constructor), or in the first seconds of the first trial."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
import yaml

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.experiment_config import check_experiment
from nni_nas_bench.trial import main as trial_main
from tests.conftest import REPO

REMOTE = yaml.safe_load((REPO / "experiments" / "remote" / "random.yml").read_text())
BENCHMARK = yaml.safe_load((REPO / "experiments" / "cifar10" / "darts.yml").read_text())


def _write(tmp_path: Path, config: dict) -> Path:
    """The config with absolute code directories, as a YAML file (an ssh key file exists for remote ones)."""
    config = json.loads(json.dumps(config))
    config["trialCodeDirectory"] = config["tuner"]["codeDirectory"] = str(REPO)
    key = tmp_path / "id_ed25519"
    key.touch()
    for machine in config["trainingService"].get("machineList", []):
        machine["sshKeyFile"] = str(key)
    path = tmp_path / "exp.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _remote(**changes) -> dict:
    config = json.loads(json.dumps(REMOTE))
    machine_changes = changes.pop("machine", {})
    config.update(changes)
    for machine in config["trainingService"]["machineList"]:
        machine.update(machine_changes)
    return config


def _benchmark(**class_args) -> dict:
    config = json.loads(json.dumps(BENCHMARK))
    config["tuner"]["classArgs"].update(class_args)
    if class_args.get("method", "darts") != "darts":
        config["tuner"]["classArgs"].pop("search")  # DARTS's search settings; another method has its own
    return config


@pytest.mark.parametrize("config, message", [
    (_benchmark(method="dartz"), r"unknown strategy 'dartz'; choose one of: .*darts"),
    (_benchmark(method="nao"), r"nao encodes each input of a node on its own: search an ENAS-style space"),
    (_benchmark(space="mobilenet_sp", space_args={}), r"darts searches a space with mixed-op edges"),
    (_remote(trialCommand="python3 -m nni_nas_bench.trial --data-root ../shared/data"),
     r"trialCommand passes --data-root \.\./shared/data, a relative path: on a remote worker"),
    (_remote(machine={"gpuIndices": [0], "maxTrialNumberPerGpu": 1}),
     r"asks for .* = 1 GPU\(s\) but it offers 1; NNI 3.0 never places a request >= the GPU count"),
    (_remote(trialGpuNumber=4, machine={"gpuIndices": [0, 1]}), r"offers 2; NNI 3.0 never places"),
    (_remote(machine={"useActiveGpu": False}), r"useActiveGpu is false and NNI 3.0 counts its own running trials"),
    (_remote(trialGpuNumber=0), r"max_trial_number_per_gpu does not work without trial_gpu_number"),
], ids=["unknown-method", "space-method-mismatch", "darts-on-a-chain-space", "relative-data-root-on-worker",
        "gpu-request-equals-gpus", "gpu-request-above-gpus", "packing-without-active-gpu", "per-gpu-without-gpus"])
def test_bad_experiment_fails_at_check(tmp_path: Path, config: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_experiment(_write(tmp_path, config))


def test_gpu_trials_on_a_machine_without_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nni_nas_bench.training_services as services

    monkeypatch.setattr(services, "_local_gpu_count", lambda: 0)
    config = json.loads(json.dumps(BENCHMARK))
    config.update(trialGpuNumber=1)
    config["trainingService"].update(useActiveGpu=False)
    with pytest.raises(ConfigError, match=r"trialGpuNumber is 1 but this machine has no GPU"):
        check_experiment(_write(tmp_path, config))


def test_the_remote_examples_pass(tmp_path: Path) -> None:
    """The rules above do not reject the shipped examples (2 GPUs x 2 trials; 4 GPUs x 1 trial)."""
    for name in ("random.yml", "darts.yml"):
        config = yaml.safe_load((REPO / "experiments" / "remote" / name).read_text())
        check_experiment(_write(tmp_path, config))


def test_missing_data_root_on_the_worker_fails_the_first_trial_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """A worker whose NNB_DATA_ROOT does not exist: one line naming the host, the source and the fix."""
    from nni_nas_bench.tuners import RandomBaselineTuner

    params = RandomBaselineTuner(dataset="cifar10", num_archs=1, protocol="quick").generate_parameters(0)
    monkeypatch.setenv("NNB_DATA_ROOT", str(tmp_path / "nowhere"))
    tic = time.perf_counter()
    assert trial_main(["--params", json.dumps(params)]) == 2
    assert time.perf_counter() - tic < 5  # before any model or data is built
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nni-nas-bench: error: data root ")
    assert f"(from $NNB_DATA_ROOT) does not exist on this machine ({socket.gethostname()})" in err[0]
    assert "set NNB_DATA_ROOT in the environment of the machine that runs the trials" in err[0]


@pytest.mark.slow
def test_nnictl_create_with_a_bad_tuner_setting(tmp_path: Path) -> None:
    """What nnictl shows: create succeeds, the experiment turns ERROR within seconds, and the dispatcher
    log ends with the tuner's one-line reason."""
    from tests.nnictl_session import create

    config = _benchmark(method="dartz")
    config.update(trialCodeDirectory=str(tmp_path), maxTrialNumber=24)
    config["tuner"]["codeDirectory"] = str(REPO)
    out, session = create(config, tmp_path)
    assert out.returncode == 0 and session is not None, out.stdout + out.stderr
    try:
        deadline = time.time() + 60
        while session.status()["status"] != "ERROR" and time.time() < deadline:
            time.sleep(1)
        assert session.status()["status"] == "ERROR"
        last = (session.folder / "log" / "dispatcher.log").read_text().strip().splitlines()[-1]
        # the tuner builds in a thread (it connects first) and ends the dispatcher with its one-line reason
        assert "nni-nas-bench: error: unknown strategy 'dartz'; choose one of:" in last, last
        assert not session.trials()  # no trial was ever started
    finally:
        session.stop()


def test_a_bug_inside_a_constructor_is_not_called_bad_settings() -> None:
    """Only settings the constructor does not take are the YAML's mistake; a TypeError raised inside a
    constructor is a bug and must keep its traceback (issue 16)."""
    from nni_nas_bench.errors import ConfigError, construct

    class Strategy:
        def __init__(self, budget: int = 1) -> None:
            len(budget)  # a bug: TypeError inside

    with pytest.raises(ConfigError, match=r"bad settings .* unexpected keyword argument 'budgt'"):
        construct(Strategy, {"budgt": 3}, "strategy 'toy'")
    with pytest.raises(TypeError, match="has no len"):
        construct(Strategy, {"budget": 3}, "strategy 'toy'")


def test_commands_print_no_known_harmless_warnings() -> None:
    """`nas-bench check` used to print NNI's "your PyTorch version might not be supported" per torch class."""
    import subprocess
    import sys

    from tests.conftest import REPO

    out = subprocess.run([sys.executable, "-m", "nni_nas_bench.cli", "check", "experiments/nb201/evolution.yml"],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "might not be supported" not in out.stderr and "pkg_resources" not in out.stderr, out.stderr
