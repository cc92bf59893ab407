"""How long a tuner process takes to reach NNI's connect: python start, NNI's dispatcher, our tuner module,
the tuner built from an experiment YAML's classArgs.

NNI's manager gives the tuner process 10 s to connect (``tuner_command_channel.js``), counted from its
start, and ``python -m nni`` (``nni/__main__.py``) imports the tuner's module and builds the tuner (the
YAML's ``className`` with its ``classArgs``) before it opens the channel. On a loaded machine the
seconds spent there decide whether an experiment starts at all. Per tuner class the YAMLs name, each in
``--repeats`` fresh processes (nothing cached in the interpreter, the OS file cache warm after the
first), the script records:

- ``nni_s``: importing what the dispatcher imports anyway (``nni``, ``nni.runtime.msg_dispatcher``):
  the floor no tuner can go under (NNI 3.0 pulls in pandas and scipy there);
- ``module_s``: importing the tuner's module on top of that (what this project adds before the build);
- ``build_s``: building the tuner from the YAML's classArgs (``--yaml``; nnictl's checks are skipped,
  as outside nnictl) until its constructor returns, which is when the dispatcher connects, and whether
  torch was imported by then; ``ready_s``: until a tuner that builds in the background
  (``MultiTrialTuner``) is ready too (it answers NNI's first request then, after connecting);
- ``to_connect_s``: wall time from spawning the process to the constructor's return: the part of the
  10 s window that python's start, NNI's imports and this project's code use.

The headline per class is the median over repeats; ``-X importtime`` is run once per module and its
slowest modules of this project are recorded (``top_own_imports``), with the heavy libraries the
module imports (torch, pandas, scipy, matplotlib). Example (the numbers in benchmarks/README.md)::

    python benchmarks/tuner_connect.py --out benchmarks/results/tuner_connect-cpu-2core.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import REPO, git_state, load_average, package_version, write_result

sys.path.insert(0, str(REPO))

# One YAML per tuner class (the benchmark's main experiments on CIFAR-10).
YAMLS = ("experiments/cifar10/darts.yml", "experiments/cifar10/evolution.yml", "experiments/cifar10/random.yml")
HEAVY = ("torch", "pandas", "scipy", "matplotlib", "analysis", "search_spaces")
TIMES = ("nni_s", "module_s", "build_s", "ready_s", "to_connect_s")

# Run in a fresh interpreter: the dispatcher's imports, the tuner's module, the build; seconds of each.
_PROBE = """
import importlib, json, sys, time
spawned = float(sys.argv[4])
t0 = time.perf_counter()
import nni, nni.runtime.msg_dispatcher
t1 = time.perf_counter()
module = importlib.import_module(sys.argv[1])
t2 = time.perf_counter()
heavy_at_import = [m for m in {heavy!r} if m in sys.modules]
tuner = getattr(module, sys.argv[2])(**json.loads(sys.argv[3]))
t3, connect = time.perf_counter(), time.time() - spawned
torch_at_connect = "torch" in sys.modules
getattr(tuner, "_wait_built", lambda: None)()
t4 = time.perf_counter()
print(json.dumps({{"nni_s": t1 - t0, "module_s": t2 - t1, "build_s": t3 - t2, "ready_s": t4 - t2,
                  "to_connect_s": connect, "heavy_at_import": heavy_at_import,
                  "torch_at_connect": torch_at_connect}}))
"""


def tuner_of(yaml_path: Path) -> tuple[str, str, dict[str, Any]]:
    """(module, class, classArgs) of an experiment YAML's tuner; the class resolved to its defining module."""
    import importlib

    import yaml

    tuner = yaml.safe_load(yaml_path.read_text())["tuner"]
    package, _, name = tuner["className"].rpartition(".")
    module = getattr(importlib.import_module(package), name).__module__
    return module, name, tuner.get("classArgs", {})


def probe(module: str, name: str, class_args: dict[str, Any]) -> dict[str, Any]:
    """One fresh process: import and build timings, and the wall time from its spawn to the connect."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("NNI_PLATFORM", None)  # outside nnictl: the tuner's dispatcher checks are skipped
    command = [sys.executable, "-c", _PROBE.format(heavy=HEAVY), module, name, json.dumps(class_args)]
    out = subprocess.run([*command, repr(time.time())], capture_output=True, text=True, cwd=REPO, env=env,
                         timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"{module}.{name}: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def own_import_costs(module: str, top: int) -> list[dict[str, Any]]:
    """The project's slowest modules under ``-X importtime`` (cumulative µs), beyond NNI's own imports."""
    code = f"import nni, nni.runtime.msg_dispatcher; import {module}"
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, cwd=REPO,
                         timeout=600)
    rows = []
    for line in out.stderr.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[0].isdigit() and parts[2].split(".")[0] in ("nni_nas_bench", "search_spaces",
                                                                               "analysis"):
            rows.append({"module": parts[2], "self_us": int(parts[0]), "cumulative_us": int(parts[1])})
    return sorted(rows, key=lambda r: -r["cumulative_us"])[:top]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--yaml", nargs="*", default=list(YAMLS), help="experiment YAMLs whose tuners are built")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per tuner; medians reported")
    parser.add_argument("--top", type=int, default=8, help="slowest own modules recorded per tuner module")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "tuner_connect.json")
    args = parser.parse_args(argv)

    load_before = load_average()
    tuners = {}
    for path in args.yaml:
        module, name, class_args = tuner_of(REPO / path)
        runs = [probe(module, name, class_args) for _ in range(args.repeats)]
        median = {key: statistics.median(r[key] for r in runs) for key in TIMES}
        tuners[name] = {"yaml": path, "module": module, **median, "runs": runs,
                        "heavy_at_import": runs[0]["heavy_at_import"],
                        "torch_at_connect": runs[0]["torch_at_connect"],
                        "top_own_imports": own_import_costs(module, args.top)}
        print(f"{name:20s} nni {median['nni_s']:.2f} s + module {median['module_s']:.3f} s + build "
              f"{median['build_s']:.2f} s = connect {median['to_connect_s']:.2f} s after spawn (ready "
              f"{median['ready_s']:.2f} s after import); heavy at import: {runs[0]['heavy_at_import'] or 'none'}; "
              f"torch at connect: {runs[0]['torch_at_connect']}", flush=True)
    write_result(args.out, {
        "benchmark": "tuner_connect", "tuners": tuners, "repeats": args.repeats,
        "python": platform.python_version(), "nni": package_version("nni"), "torch": package_version("torch"),
        "cpus": os.cpu_count(), "load_average_before": load_before, "load_average_after": load_average(),
        **git_state(), "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
