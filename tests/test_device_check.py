"""`benchmarks/device_check.sh --dry-run`: the GPU session's one script works before a GPU minute is spent."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED_DATA

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (SHARED_DATA / "nas-bench-201").is_dir(), reason="NAS-Bench-201 tables not found"),
]


def test_device_check_dry_run_writes_one_json_with_every_step(tmp_path: Path, cache_dir: Path) -> None:
    out = tmp_path / "device_check.json"
    env = {**os.environ, "NNB_CACHE_DIR": str(cache_dir)}
    run = subprocess.run(["bash", "benchmarks/device_check.sh", "--dry-run", "--data-root", str(SHARED_DATA),
                          "--out", str(out)], capture_output=True, text=True, cwd=REPO, timeout=900, env=env)
    assert run.returncode == 0, run.stdout + run.stderr + (out.read_text() if out.exists() else "")
    result = json.loads(out.read_text())
    assert result["dry_run"] and result["device"] == "cpu"
    steps = result["steps"]
    assert list(steps) == ["graphs", "throughput", "packing", "cifar10", "collapse"]
    assert all(step["exit"] == "0" for step in steps.values()), steps
    assert "test_the_default_gpu_path_captures_and_trains" in steps["graphs"]["log_tail"]  # found (a CPU skips it)
    assert steps["throughput"]["result"]["ratio_ours_over_hub"] is not None  # nni is here: the hub is measured
    assert {"ours", "ours_bf16_eager", "ours_fp32_eager"} <= set(steps["throughput"]["result"]["results"])
    assert all(row["aggregate_img_per_s"] for row in steps["packing"]["result"]["results"])  # 1 and 2 trainings
    assert steps["cifar10"]["result"]["epochs"] == 1 and steps["cifar10"]["result"]["dataset"] == "cifar10"
    assert "step" in run.stdout and "headline" in run.stdout  # the summary table


def test_device_check_rejects_an_unknown_option() -> None:
    run = subprocess.run(["bash", "benchmarks/device_check.sh", "--dryrun"], capture_output=True, text=True,
                         cwd=REPO, timeout=60)
    assert run.returncode == 2 and "unknown option --dryrun" in run.stderr
