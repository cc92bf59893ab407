"""End to end on NNI's `remote` training service: a real nnictl experiment whose worker is an SSH server on
127.0.0.1 (tests/loopback_ssh.py) with its own home, data root and checkpoint folder.

What it proves: the example YAML's trial command (experiments/remote/random.yml) names no path of the
submitting machine; NNI uploads the checkout to the worker and the trial runs that copy with the worker's
data root; trials succeed and their rows land in the DB the analysis reads.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from analysis import read_experiments
from nni_nas_bench.data import write_synthetic_image_folder
from search_spaces import create_space
from tests.conftest import REPO
from tests.loopback_ssh import SshdUnavailable, start_sshd

pytestmark = pytest.mark.slow

TINY = {"preset": "quick", "epochs": 1, "channels": 4, "layers": 3, "batch_size": 50, "subset": None,
        "eval_batch_size": 100, "seed": 2}


@pytest.fixture
def worker(tmp_path: Path):
    """The stand-in remote machine: folders of its own, and sshd whose sessions see them."""
    machine = tmp_path / "remote-machine"
    env = {
        "HOME": str(machine / "home"),
        "PIP_NO_INDEX": "1",                      # NNI's worker start runs `pip install nni --upgrade`
        "NNB_DATA_ROOT": str(machine / "data"),
        "NNB_CHECKPOINT_DIR": str(machine / "checkpoints"),
        "NNB_CACHE_DIR": str(machine / "cache"),
    }
    (machine / "home").mkdir(parents=True)
    write_synthetic_image_folder(machine / "data", "CIFAR10", num_classes=10, train_per_class=10, test_per_class=5)
    try:
        sshd = start_sshd(tmp_path / "sshd", env)
    except SshdUnavailable as exc:
        pytest.skip(f"no local SSH server for the remote training service: {exc}")
    yield sshd, machine
    sshd.stop()


def remote_config(sshd, num_archs: int) -> dict:
    """experiments/remote/random.yml pointed at the loopback worker, with a tiny protocol and no GPU."""
    config = yaml.safe_load((REPO / "experiments" / "remote" / "random.yml").read_text())
    command = config["trialCommand"]
    assert "--data-root" not in command and "--checkpoint-dir" not in command, command
    config.update(
        experimentName="test-remote", trialCommand=command.replace("OMP_NUM_THREADS=2", "OMP_NUM_THREADS=1"),
        trialCodeDirectory=str(REPO), trialConcurrency=2, maxTrialNumber=num_archs, nniManagerIp="127.0.0.1",
    )
    config.pop("trialGpuNumber")
    config["tuner"]["codeDirectory"] = str(REPO)
    config["tuner"]["classArgs"].update(num_archs=num_archs, seed=4, protocol=TINY)
    config["trainingService"]["machineList"] = [{
        "host": "127.0.0.1", "port": sshd.port, "user": sshd.user, "sshKeyFile": str(sshd.client_key),
        "pythonPath": str(Path(sys.executable).parent),   # the folder holding the interpreter
    }]
    return config


def test_remote_experiment_on_loopback_worker(worker, nnictl_runner, tmp_path: Path) -> None:
    sshd, machine = worker
    (tmp_path / "submitter").mkdir()
    experiment = nnictl_runner(remote_config(sshd, num_archs=2), tmp_path / "submitter", timeout=300)

    df = read_experiments([experiment])
    assert len(df) == 2 and list(df.status) == ["SUCCEEDED"] * 2, df[["trial_id", "status", "error"]]
    assert df.complete.all() and (df.epochs == 1).all()
    from nni_nas_bench.tuners.random_baseline import architecture_seed

    space = create_space("darts")
    assert {int(r.arch_index): r.genotype for r in df.itertuples()} == {
        i: space.sample(architecture_seed(4, i)).to_text() for i in range(2)}

    # The trials ran on the worker: its copy of the code, its data root, its checkpoint folder.
    worker_root = machine / "home" / "nni-experiments" / experiment.name
    logs = sorted(worker_root.glob("environments/*/trials/*/trial.stdout"))
    assert len(logs) == 2, sorted(p.relative_to(machine) for p in worker_root.rglob("*"))
    for log in logs:
        text = log.read_text()
        code_line = next(line for line in text.splitlines() if line.strip().startswith("code "))
        assert f"code {worker_root}/environments/" in code_line, code_line
        assert f"data root {machine / 'data'}" in code_line, code_line
    assert len(list((machine / "checkpoints").glob(f"{experiment.name}-*.pt"))) == 2
    # The submitting checkout's packages were uploaded, its version control and caches were not.
    uploaded = next(worker_root.glob("environments/*/upload/*/"))
    assert (uploaded / "nni_nas_bench" / "trial.py").is_file() and not (uploaded / ".git").exists()
