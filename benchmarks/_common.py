"""What every benchmark script records next to its numbers, kept in one place: the code version, how
busy the machine was, package versions, the device's name, and a clock that waits for the device.

A number without these is not reproducible: a dirty checkout, a loaded shared machine or a clock read
before queued CUDA kernels finished all change the result without changing the code. Scripts import
this module as ``_common`` (``python benchmarks/<script>.py`` puts this folder on ``sys.path``); it
imports torch only inside the functions that need it, so the tabular benchmark stays light.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]


def git(*args: str) -> str | None:
    """Output of a git command in the repository, None outside a checkout or without git."""
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def git_state() -> dict[str, Any]:
    """The commit measured, and whether tracked files differed from it."""
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def package_version(package: str) -> str | None:
    """Installed version of a distribution, None when absent (recorded, never required)."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def load_average() -> list[float] | None:
    """1/5/15-minute load: a shared machine's background work shows up here, not in the timings."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def device_name(device: Any) -> str:
    """GPU model, or the CPU model from /proc/cpuinfo (platform.processor() is often empty on Linux)."""
    if getattr(device, "type", str(device)) == "cuda":
        import torch

        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def synchronize(device: Any) -> None:
    """Wait for queued kernels, so the clock measures work done and not work launched."""
    if getattr(device, "type", str(device)) == "cuda":
        import torch

        torch.cuda.synchronize(device)


def timed(work: Callable[[], Any], device: Any) -> float:
    """Seconds ``work()`` takes on ``device``, with the device drained before and after."""
    synchronize(device)
    tic = time.perf_counter()
    work()
    synchronize(device)
    return time.perf_counter() - tic


def write_result(path: str | Path, result: dict[str, Any]) -> Path:
    """Write a benchmark's JSON record (folders created), print where, and return the path."""
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}", flush=True)
    return path
