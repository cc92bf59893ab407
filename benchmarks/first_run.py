"""What a newcomer's first run costs: the README's CPU first run, timed exactly as the README gives it.

    python benchmarks/first_run.py [--config experiments/nb201/evolution.yml]
                                   [--out benchmarks/results/first_run-cpu-2core.json]

Runs ``nnictl create --config <config>`` (its experiment folder under a fresh working directory, so the
user's ``~/nni-experiments`` is untouched), waits for DONE through NNI's REST API, then ``nas-bench report``
on the experiment; writes the wall seconds of each part, the trial count, the machine's cores and load,
and the report's RI row (so the number it prints is the one the user gets) to one JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
NNICTL = [sys.executable, "-m", "nni.tools.nnictl.nnictl"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="experiments/nb201/evolution.yml")
    parser.add_argument("--out", default=None, help="result JSON (default: print only)")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()

    from nni.experiment import rest

    from analysis import read_experiment
    from analysis.stats import ri_table
    from nni_nas_bench.provenance import code_version

    config_path = (REPO / args.config).resolve()
    config = yaml.safe_load(config_path.read_text())
    work = Path(tempfile.mkdtemp(prefix="nnb-first-run-"))
    config["experimentWorkingDirectory"] = str(work / "nni-experiments")
    run_config = config_path.parent / f".first_run-{os.getpid()}.yml"  # beside the original: relative paths hold
    run_config.write_text(yaml.safe_dump(config, sort_keys=False))
    port = _port()
    load_before = os.getloadavg()
    tic = time.perf_counter()
    try:
        out = subprocess.run([*NNICTL, "create", "--config", str(run_config), "--port", str(port)],
                             capture_output=True, text=True, cwd=REPO, timeout=300)
    finally:
        run_config.unlink()
    if out.returncode != 0:
        sys.exit(f"nnictl create failed:\n{out.stdout}{out.stderr}")
    experiment = next(p for p in (work / "nni-experiments").iterdir() if p.is_dir() and not p.name.startswith("_"))
    status = "?"
    try:
        while time.perf_counter() - tic < args.timeout:
            status = rest.get(port, "/check-status")["status"]
            if status in ("DONE", "ERROR", "STOPPED"):
                break
            time.sleep(2)
    finally:
        experiment_seconds = time.perf_counter() - tic
        subprocess.run([*NNICTL, "stop", experiment.name], capture_output=True, text=True, timeout=120)
    if status != "DONE":
        sys.exit(f"experiment {experiment.name} ended as {status} after {experiment_seconds:.0f} s "
                 f"(logs: {experiment})")
    tic = time.perf_counter()
    report = subprocess.run([sys.executable, "-m", "nni_nas_bench.cli", "report", str(experiment), "--out",
                             str(work / "report")], capture_output=True, text=True, cwd=REPO, timeout=600)
    report_seconds = time.perf_counter() - tic
    if report.returncode != 0:
        sys.exit(f"nas-bench report failed:\n{report.stderr}")
    df = read_experiment(experiment)
    ri = ri_table(df).to_dict(orient="records")
    result = {
        "what": f"nnictl create --config {args.config}, then nas-bench report (README's CPU first run)",
        "machine": {"cores": os.cpu_count(), "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in os.getloadavg()]},
        "trials": len(df), "succeeded": int((df.status == "SUCCEEDED").sum()),
        "experiment_seconds": round(experiment_seconds, 1), "report_seconds": round(report_seconds, 1),
        "total_seconds": round(experiment_seconds + report_seconds, 1),
        "ri": ri, "date": time.strftime("%Y-%m-%d"), "code_version": code_version(),
        "tuner_class_args": config["tuner"]["classArgs"], "trial_concurrency": config["trialConcurrency"],
    }
    text = json.dumps(result, indent=1, default=str)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
