"""How long ``nas-bench report`` takes on a study-sized trial DB, and how much memory it needs.

A depth-sweep experiment is 10,000 trials with 600-epoch curves (``analysis.synthetic.make_large_db``
writes one in NNI's own schema, ~1.3 GB); a user re-runs the report after every change, so its wall time
and peak memory are what they wait for. Measured, each in a fresh process (peak RSS is per process):

- ``report``: ``nas-bench report DB --out DIR --no-progress`` (the real command, default bootstrap);
- ``read``: ``analysis.read_experiment`` alone (what every notebook cell pays);
- ``naive``: what a user without the suite writes: ``pandas.read_sql`` of NNI's ``MetricData`` table and
  ``json.loads`` of each row's doubly encoded value, to get the same curves (the baseline of the ratio).

Targets (issue 18): report < 10 s wall and < 1 GB peak RSS on a 2-core machine.

    python benchmarks/report_scale.py --out benchmarks/results/report_scale-cpu-2core.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

CHILD = {
    "report": "from analysis.report import report_command; report_command([{db!r}], {out!r}, progress=False)",
    "read": "from analysis import read_experiment; df = read_experiment({db!r}); assert len(df) == {trials}",
    "naive": (
        "import json, sqlite3, pandas as pd\n"
        "con = sqlite3.connect({db!r})\n"
        "df = pd.read_sql('SELECT trialJobId, data FROM MetricData WHERE type = \"PERIODICAL\"', con)\n"
        "df['acc'] = [json.loads(json.loads(d))['default'] for d in df.data]\n"
        "curves = df.groupby('trialJobId').acc.apply(list)\n"
        "assert len(curves) == {trials}"
    ),
}


def run_child(code: str) -> dict[str, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of ``python -c code`` in a fresh process."""
    wrapper = (
        "import resource, sys, time\n"
        "tic = time.perf_counter()\n"
        f"exec({code!r})\n"
        "wall = time.perf_counter() - tic\n"
        "usage = resource.getrusage(resource.RUSAGE_SELF)\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
        "hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
        "print('RESULT', wall, usage.ru_utime + usage.ru_stime, hwm / 1024)\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    tic = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, cwd=_common.REPO,
                         env=env, check=True)
    total = time.perf_counter() - tic
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT"))
    wall, cpu, rss = (float(v) for v in line.split()[1:])
    return {"wall_s": round(wall, 2), "process_wall_s": round(total, 2), "cpu_s": round(cpu, 2),
            "peak_rss_mib": round(rss, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each contender (the best is the headline)")
    parser.add_argument("--db", type=Path, default=None, help="reuse (or write) the DB here instead of a temp folder")
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    args = parser.parse_args()

    from analysis.synthetic import make_large_db

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.db or Path(tmp) / "large"
        db = folder / "db" / "nni.sqlite"
        if not db.is_file():
            tic = time.perf_counter()
            db = make_large_db(folder, trials=args.trials, epochs=args.epochs)
            print(f"wrote {db} ({db.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - tic:.0f} s")
        load_before = _common.load_average()
        results: dict[str, list[dict[str, float]]] = {name: [] for name in CHILD}
        for repeat in range(args.repeats):  # interleaved: a burst of background load hits every contender
            for name, template in CHILD.items():
                code = template.format(db=str(folder), out=str(Path(tmp) / f"report{repeat}"), trials=args.trials)
                if name == "naive":
                    code = template.format(db=str(db), trials=args.trials)
                results[name].append(run_child(code))
                print(name, results[name][-1], flush=True)
        best = {name: min(runs, key=lambda r: r["wall_s"]) for name, runs in results.items()}
        record = {
            "benchmark": "report_scale",
            "trials": args.trials, "epochs": args.epochs, "db_bytes": db.stat().st_size,
            "best": best, "runs": results,
            "ratio_naive_over_read_wall": round(best["naive"]["wall_s"] / best["read"]["wall_s"], 2),
            "targets": {"report_wall_s": 10, "report_peak_rss_mib": 1024},
            "meets_targets": best["report"]["wall_s"] < 10 and best["report"]["peak_rss_mib"] < 1024,
            "load_average_before": load_before, "load_average_after": _common.load_average(),
            "cpu": _common.device_name("cpu"), "cores": os.cpu_count(),
            "packages": {p: _common.package_version(p) for p in ("pandas", "numpy", "matplotlib", "scipy")},
            **_common.git_state(), "command": " ".join(sys.argv),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    print(json.dumps(record["best"], indent=1))
    if args.out:
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
