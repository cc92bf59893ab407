"""How long the full test suite takes the way CI runs it, and how busy it keeps the machine.

Runs README's test command (``python3 -m pytest``, with ``NNB_REQUIRE_DATA=1`` as ``.ci/run`` sets it) in a
child process and records: wall seconds; CPU seconds of the whole machine over the run, from
``/proc/stat`` (the nnictl managers, dispatchers and trials are daemons outside the child's process tree,
so its rusage would miss most of the work); the utilisation, CPU / (wall x cores); pytest's summary line;
and its slowest tests (``--durations``). ``--serial`` also runs the same suite in one process (``-n 0``,
the suite before pytest-xdist): the baseline of the ratio, measured in the same run, after the default.

Target (issue 18): the full suite in < 10 min on the 2-core machine. Run it on an otherwise idle machine:
every other process's CPU is counted too (the load average before and after is recorded).

    python benchmarks/test_suite.py --serial --out benchmarks/results/test_suite-cpu-2core.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common

DURATION = re.compile(r"^([0-9.]+)s (call|setup|teardown)\s+(\S+)$")
SUMMARY = re.compile(r"^=+ (.*\d+ (?:passed|failed).*) in ([0-9.]+)s")


def busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine spent not idle since boot (Linux /proc/stat), None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_suite(extra: list[str]) -> dict[str, Any]:
    """One run of the test command with ``extra`` arguments; its times, summary and slowest tests."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--basetemp={tmp}/t", *extra]
        env = {**os.environ, "NNB_REQUIRE_DATA": "1"}
        load = _common.load_average()
        cpu0, tic = busy_cpu_seconds(), time.perf_counter()
        out = subprocess.run(command, cwd=_common.REPO, env=env, capture_output=True, text=True)
        wall, cpu1 = time.perf_counter() - tic, busy_cpu_seconds()
    lines = out.stdout.splitlines()
    summary = next((m for m in map(SUMMARY.match, reversed(lines)) if m), None)
    slowest = [{"seconds": float(m[1]), "phase": m[2], "test": m[3]} for m in map(DURATION.match, lines) if m]
    cpu = None if cpu0 is None or cpu1 is None else round(cpu1 - cpu0, 1)
    return {
        "command": " ".join(["python3", "-m", "pytest", *extra]),
        "exit_code": out.returncode,
        "wall_s": round(wall, 1),
        "machine_cpu_s": cpu,
        "utilisation": None if cpu is None else round(cpu / (wall * (os.cpu_count() or 1)), 3),
        "summary": summary[1] if summary else (out.stdout + out.stderr)[-2000:],
        "pytest_s": float(summary[2]) if summary else None,
        "slowest": slowest,
        "load_average_before": load,
        "load_average_after": _common.load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serial", action="store_true", help="also run the suite in one process (-n 0)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    args = parser.parse_args()

    runs = {"default": run_suite([])}
    print("default:", runs["default"]["summary"], runs["default"]["wall_s"], "s", flush=True)
    if args.serial:
        runs["serial"] = run_suite(["-n", "0"])
        print("serial:", runs["serial"]["summary"], runs["serial"]["wall_s"], "s", flush=True)
    record = {
        "benchmark": "test_suite", "runs": runs,
        "ratio_serial_over_default_wall": round(runs["serial"]["wall_s"] / runs["default"]["wall_s"], 2)
        if "serial" in runs else None,
        "targets": {"wall_s": 600},
        "meets_target": runs["default"]["wall_s"] < 600 and runs["default"]["exit_code"] == 0,
        "cpu": _common.device_name("cpu"), "cores": os.cpu_count(),
        "packages": {p: _common.package_version(p) for p in ("pytest", "pytest-xdist", "nni", "torch")},
        **_common.git_state(), "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if args.out:
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.out}")
    sys.exit(max(run["exit_code"] for run in runs.values()))


if __name__ == "__main__":
    main()
