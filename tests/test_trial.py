"""The trial entry point: training on synthetic data, resume after a kill, NaN, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nni_nas_bench.contract import arch_id
from nni_nas_bench.errors import ConfigError, DatasetNotFoundError, GenotypeError, TrialFailedError
from nni_nas_bench.trial import main, run_trial
from nni_nas_bench.tuners import RandomBaselineTuner
from search_spaces.genotype import PUBLISHED

TINY = {"preset": "quick", "epochs": 2, "channels": 4, "layers": 3, "batch_size": 50, "subset": None,
        "eval_batch_size": 100}


def _params(**protocol) -> dict:
    return RandomBaselineTuner(dataset="cifar10", num_archs=1, protocol={**TINY, **protocol}).generate_parameters(0)


@pytest.fixture(autouse=True)
def _cache(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNB_CACHE_DIR", str(cache_dir))


def test_trial_trains_and_reports_identity(synthetic_root: Path, tmp_path: Path) -> None:
    epochs: list[dict] = []
    metrics = run_trial(_params(), data_root=synthetic_root, device="cpu", checkpoint_root=tmp_path,
                        report_epoch=epochs.append)
    assert [e["epoch"] for e in epochs] == [1, 2] and metrics["default"] == epochs[-1]["default"]
    assert metrics["best_acc"] == max(e["default"] for e in epochs)
    assert metrics["genotype"].startswith("Genotype(normal=[") and metrics["role"] == "random"
    assert json.loads(metrics["protocol"])["channels"] == 4
    assert metrics["arch_id"] == arch_id("darts", metrics["space_args"], metrics["genotype"])  # the web UI's column
    for key in ("params", "flops", "train_seconds", "device", "code_version", "arch_index", "train_seed"):
        assert key in metrics
    # Neither '#' nor '//' may reach NNI's tuner channel (its JSON loader strips them as comments).
    assert "#" not in json.dumps(metrics) and "//" not in json.dumps(metrics)


def test_same_seed_same_result(synthetic_root: Path, tmp_path: Path) -> None:
    a = run_trial(_params(epochs=1), data_root=synthetic_root, device="cpu")
    b = run_trial(_params(epochs=1), data_root=synthetic_root, device="cpu")
    assert a["default"] == b["default"]


def test_killed_trial_resumes_from_its_checkpoint(synthetic_root: Path, cache_dir: Path, tmp_path: Path) -> None:
    """Kill a standalone trial after its first checkpoint; the re-run continues, not from epoch 0."""
    params = tmp_path / "params.json"
    params.write_text(json.dumps(_params(epochs=6)))
    ckpt = tmp_path / "ckpt"
    cmd = [sys.executable, "-m", "nni_nas_bench.trial", "--data-root", str(synthetic_root), "--params", str(params),
           "--checkpoint-dir", str(ckpt), "--device", "cpu"]
    env = {**__import__("os").environ, "NNB_CACHE_DIR": str(cache_dir)}
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 300
    while time.time() < deadline and not list(ckpt.glob("*.pt")):
        assert first.poll() is None, first.stdout.read()
        time.sleep(0.2)
    first.kill()
    first.wait()
    saved = torch.load(next(ckpt.glob("*.pt")), weights_only=False)
    done = len(saved["history"])
    assert 1 <= done < 6, "the trial must be killed mid-run"

    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming from checkpoint" in second.stdout and f"after epoch {done}" in second.stdout
    trained = [line for line in second.stdout.splitlines() if line.startswith("epoch ")]
    assert trained[0].startswith(f"epoch {done + 1}/6") and len(trained) == 6 - done
    final = json.loads(second.stdout.split("final: ", 1)[1].splitlines()[0])
    assert final["epochs"] == 6


def test_nan_loss_fails_the_trial_with_its_reason(synthetic_root: Path) -> None:
    with pytest.raises(TrialFailedError, match=r"training loss became nan in epoch 0 .*lower protocol\.lr"):
        run_trial(_params(lr=1e30, grad_clip=0.0, epochs=1), data_root=synthetic_root, device="cpu")


def test_nan_exit_code_and_message(synthetic_root: Path, capsys: pytest.CaptureFixture) -> None:
    params = json.dumps(_params(lr=1e30, grad_clip=0.0, epochs=1))
    assert main(["--data-root", str(synthetic_root), "--params", params, "--device", "cpu"]) == 3
    assert "nni-nas-bench: trial failed: training loss became nan" in capsys.readouterr().err


@pytest.mark.parametrize("change, error, message", [
    ({"genotype": PUBLISHED["DARTS_V2"].to_text().replace("dil_conv_3x3", "dil_conv_9x9")}, GenotypeError,
     "operation 'dil_conv_9x9' is not in this space's op set"),
    ({"space_args": {"op_set": "fancy"}}, ConfigError, "unknown op set 'fancy'; choose one of: .*darts, .*poor"),
    ({"dataset": "imagenet"}, ConfigError, "unknown dataset 'imagenet'"),
    ({"protocol": {"preset": "quick", "epoch": 1}}, ConfigError, r"unknown protocol setting\(s\) \['epoch'\]"),
    ({"genotype": None}, ConfigError, "trial parameters miss"),
])
def test_bad_trial_parameters_get_a_clear_error(synthetic_root: Path, change: dict, error: type,
                                                message: str) -> None:
    params = {**_params(), **change}
    params = {k: v for k, v in params.items() if v is not None}
    with pytest.raises(error, match=message):
        run_trial(params, data_root=synthetic_root, device="cpu")


def test_missing_data_root_names_where_it_looked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path / "nowhere")):
        run_trial(_params(), data_root=tmp_path / "nowhere", device="cpu")
    assert main(["--data-root", str(tmp_path / "nowhere"), "--params", json.dumps(_params())]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nni-nas-bench: error:") and "--data-root" in err


def test_outside_nni_without_params_explains(capsys: pytest.CaptureFixture) -> None:
    assert main([]) == 2
    assert "not running inside NNI: pass --params" in capsys.readouterr().err
