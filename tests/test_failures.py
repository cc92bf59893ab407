"""Failure handling without NNI: CUDA out of memory, checkpoint keys of re-submitted trials, and the random
tuner's promise that every architecture is handed out exactly once across failures and resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from nni import NoMoreTrialError

from nni_nas_bench.training import trainer
from nni_nas_bench.training.checkpoint import checkpoint_key
from nni_nas_bench.trial import main as trial_main
from nni_nas_bench.tuners import RandomBaselineTuner

TINY = {"preset": "quick", "epochs": 1, "channels": 4, "layers": 3, "batch_size": 50, "subset": None,
        "eval_batch_size": 100}
VARIANTS = [{"name": "a"}, {"name": "b", "protocol": {"lr": 0.1}}]


def test_cuda_out_of_memory_is_one_clear_line(synthetic_root: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.8 GiB total)")

    monkeypatch.setattr(trainer, "train_epoch", out_of_memory)
    monkeypatch.setenv("NNB_CACHE_DIR", str(cache_dir))
    params = RandomBaselineTuner(dataset="cifar10", num_archs=1, protocol=TINY).generate_parameters(0)
    assert trial_main(["--data-root", str(synthetic_root), "--params", json.dumps(params), "--device", "cpu"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "nni-nas-bench: trial failed: out of GPU memory (random, batch_size 50, channels 4, layers 3): CUDA out of "
        "memory. Tried to allocate 2.00 GiB (GPU 0; 7.8 GiB total); lower protocol.batch_size, pack fewer trials per "
        "GPU (maxTrialNumberPerGpu, trialConcurrency), or set useActiveGpu: false so trials do not share a GPU "
        "with other jobs"]


def test_resubmitted_parameters_find_the_checkpoint() -> None:
    """NNI's manager writes the tuner's 5.0 back as 5: the web UI's re-submitted trial must hash the same."""
    original = {"protocol": {"grad_clip": 5.0, "lr": 0.025, "cutout": 16}, "arch_index": 0, "flag": True}
    resubmitted = {"arch_index": 0, "flag": True, "protocol": {"cutout": 16, "lr": 0.025, "grad_clip": 5}}
    assert checkpoint_key(original, "exp") == checkpoint_key(resubmitted, "exp")
    assert checkpoint_key(original, "exp") != checkpoint_key({**original, "flag": 1}, "exp")
    assert checkpoint_key(original, "exp") != checkpoint_key(original, "other")


def _tuner() -> RandomBaselineTuner:
    return RandomBaselineTuner(dataset="cifar10", num_archs=3, protocol=TINY, seed=7, variants=VARIANTS)


def _numbers(tuner: RandomBaselineTuner, start: int) -> list[tuple[int, str]]:
    handed = []
    for parameter_id in range(start, start + 100):
        try:
            params = tuner.generate_parameters(parameter_id)
        except NoMoreTrialError:
            return handed
        handed.append((params["arch_index"], params["variant"]))
        tuner.trial_end(parameter_id, success=parameter_id % 2 == 0)  # every other trial fails
    raise AssertionError("the tuner never ran out")


def test_failures_neither_repeat_nor_lose_an_architecture() -> None:
    handed = _numbers(_tuner(), 0)
    assert handed == [(k, v["name"]) for k in range(3) for v in VARIANTS]


def test_resume_continues_after_the_last_handed_out_trial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNI_CHECKPOINT_DIRECTORY", str(tmp_path))
    before = _tuner()
    first = [before.generate_parameters(i)["arch_index"] for i in range(3)]  # (0, a) (0, b) (1, a)
    assert first == [0, 0, 1]

    resumed = _tuner()  # `nnictl resume` starts a fresh tuner process, then calls load_checkpoint
    resumed.load_checkpoint()
    assert _numbers(resumed, 3) == [(1, "b"), (2, "a"), (2, "b")]


def test_resume_learns_from_reimported_results_without_a_state_file(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """NNI re-imports finished trials on resume: their metrics name architecture and variant."""
    monkeypatch.setenv("NNI_CHECKPOINT_DIRECTORY", str(tmp_path))
    tuner = _tuner()
    tuner.load_checkpoint()  # nothing saved: a fresh experiment folder
    tuner.import_data([{"parameter": {}, "value": {"default": 50.0, "arch_index": 1, "variant": "a"}},
                       {"parameter": {}, "value": 12.5}])  # a plain number names no trial
    assert _numbers(tuner, 0) == [(1, "b"), (2, "a"), (2, "b")]
    assert json.loads((tmp_path / "random_baseline_tuner.json").read_text())["next"] == 6
