#!/usr/bin/env bash
# The ONE script a session with a GPU runs first (issue 18): every GPU number the project needs, in one go,
# in under 8 minutes on one H200, written to ONE JSON under benchmarks/results/ with a summary table.
#
#   bash benchmarks/device_check.sh                     # on the GPU machine
#   bash benchmarks/device_check.sh --dry-run           # on a CPU, tiny sizes: proves the script works
#                                                       # before the first GPU minute is spent (a test runs it)
#   options: --data-root DIR (default ../shared/data), --out FILE (default benchmarks/results/device_check-<tag>.json),
#            --only STEP [STEP ...] (run only these of graphs throughput packing cifar10 collapse: a rerun of the
#            steps an earlier run lost; the others are recorded as skipped)
#
# Steps (each an existing benchmark, so every number has its own documented method in benchmarks/README.md):
#   0. tests/test_cuda_graph.py on the GPU: the graphed training step trains the eager step's weights, reads the
#      learning rate on every replay, and the default GPU path (bf16, channels_last, DropPath) captures and trains.
#   1. train_throughput.py: DARTS-V2 training img/s, ours (trial loop: bf16 + channels_last + the step as one CUDA
#      graph) vs NNI's hub model (fp32 eager), with --variants (ours without the CUDA graph, ours in fp32 eager) and
#      --breakdown (our network under the hub's plain step). Target: ours >= 5x hub.
#   2. gpu_packing.py: aggregate img/s with 1, 2, 4 concurrent trainings on the GPU (maxTrialNumberPerGpu).
#   3. a real CIFAR-10 training of DARTS-V2 through the trial entry point (10 epochs of 1,000 images per class,
#      DARTS protocol otherwise): the GPU path learns (accuracy per epoch in the JSON).
#   4. nb201_darts_collapse.py: first-order DARTS on NAS-Bench-201 at a short real budget, epoch by epoch.
#
# Each step has a time limit on the GPU (STEP_LIMITS, 480 s in all), so one hung step cannot cost the others.
# The device machine has torch but not nni. Steps 1 and 2 run without it (step 1 then measures ours alone,
# ratio null); steps 3 and 4 build NNI mutable spaces and need nni and its pure-Python dependencies, carried as
# wheels (the device tool's README): nni==3.0 astor json-tricks prettytable wcwidth PythonWebHDFS responses
# schema typeguard websockets. Without them those steps are recorded as skipped, with the reason.
set -uo pipefail
cd "$(dirname "$0")/.."

DRY=0
DATA=../shared/data
OUT=""
ONLY=()
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --data-root) DATA="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        --only) while [ $# -gt 1 ] && [[ "$2" != --* ]]; do
                    case "$2" in graphs|throughput|packing|cifar10|collapse) ONLY+=("$2") ;;
                        *) echo "device_check.sh: unknown step $2 (steps: graphs throughput packing cifar10 collapse)" >&2
                           exit 2 ;;
                    esac
                    shift
                done ;;
        *) echo "device_check.sh: unknown option $1 (use --dry-run, --data-root DIR, --out FILE, --only STEP...)" >&2
           exit 2 ;;
    esac
    shift
done

PY=${PYTHON:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ "$DRY" = 1 ]; then
    DEVICE=cpu; TAG=dryrun
    THROUGHPUT=(--steps 1 --warmup 1 --repeats 1 --batch 4 --threads 1 --variants)
    PACKING=(--counts 1 2 --seconds 2 --batch-size 8 --channels 4 --layers 3 --images 32 --threads 1)
    TRIAL_PROTOCOL='{"preset": "darts", "epochs": 1, "channels": 4, "layers": 3, "batch_size": 16, "subset": 2, "eval_batch_size": 100, "seed": 0}'
    COLLAPSE=(--epochs 1 --subset 2 --channels 4 --layers 3 --batch-size 16)
    export OMP_NUM_THREADS=1
else
    DEVICE=cuda; TAG=$($PY -c "import torch; print(torch.cuda.get_device_name(0).split()[-1].lower())" 2>/dev/null || echo gpu)
    THROUGHPUT=(--steps 30 --warmup 10 --repeats 3 --breakdown --variants)
    PACKING=(--counts 1 2 4 --seconds 10)  # H200, 2026-12-04: flat from 1 to 4 (2,466 / 2,380 / 2,383 img/s)
    TRIAL_PROTOCOL='{"preset": "darts", "epochs": 10, "subset": 1000, "seed": 0}'
    COLLAPSE=(--epochs 3 --subset 500)  # H200: 15-24 s per search epoch, + ~20 s to start
fi
OUT=${OUT:-benchmarks/results/device_check-$TAG.json}
echo "device_check: device $DEVICE, data root $DATA, result $OUT"

# Seconds each step may take on the GPU (none in a dry run).
declare -A STEP_LIMITS=([graphs]=40 [throughput]=110 [packing]=110 [cifar10]=100 [collapse]=120)

skip() {  # name, why: records the step as skipped (not a failure) with the reason as its log
    echo "$2" > "$WORK/$1.log"
    echo "skipped 0" > "$WORK/$1.status"
    echo "  $1: skipped ($2)"
}

step() {  # name, then the command; records rc, seconds and the log tail, never stops the script
    local name=$1; shift
    if [ ${#ONLY[@]} -gt 0 ] && [[ " ${ONLY[*]} " != *" $name "* ]]; then
        skip "$name" "not selected by --only ${ONLY[*]}"
        return
    fi
    local tic=$SECONDS
    local limit=()
    if [ "$DRY" = 0 ]; then limit=(timeout "${STEP_LIMITS[$name]}"); fi
    "${limit[@]}" "$@" > "$WORK/$name.log" 2>&1
    local rc=$?
    echo "$rc $((SECONDS - tic))" > "$WORK/$name.status"
    echo "  $name: exit $rc in $((SECONDS - tic)) s"
}

if [ "$DRY" = 1 ]; then GRAPH_TESTS=(--collect-only); else GRAPH_TESTS=(); fi  # a CPU skips them anyway
# -p no:jaxtyping: the GPU image's jaxtyping registers a pytest plugin that is not needed here. -o addopts=:
# not pyproject's `-n auto` (the GPU image has no pytest-xdist; one process is what a GPU test wants).
step graphs $PY -m pytest tests/test_cuda_graph.py -q -o addopts= -p no:cacheprovider -p no:jaxtyping "${GRAPH_TESTS[@]}"
step throughput $PY benchmarks/train_throughput.py --device "$DEVICE" "${THROUGHPUT[@]}" --out "$WORK/throughput.json"
step packing $PY benchmarks/gpu_packing.py --device "$DEVICE" "${PACKING[@]}" --out "$WORK/packing.json"
if $PY -c "import nni" 2>/dev/null; then
    GENOTYPE=$($PY -c "from search_spaces.genotype import PUBLISHED; print(PUBLISHED['DARTS_V2'].to_text())")
    PARAMS=$($PY -c "import json, sys; print(json.dumps({'method': 'device_check', 'dataset': 'cifar10',
        'space': 'darts', 'genotype': sys.argv[1], 'protocol': json.loads(sys.argv[2])}))" "$GENOTYPE" "$TRIAL_PROTOCOL")
    step cifar10 $PY -m nni_nas_bench.trial --data-root "$DATA" --device "$DEVICE" --params "$PARAMS" \
        --checkpoint-dir "$WORK/checkpoints"
    step collapse $PY benchmarks/nb201_darts_collapse.py --data-root "$DATA" --device "$DEVICE" "${COLLAPSE[@]}" \
        --out "$WORK/collapse.json"
else
    for name in cifar10 collapse; do
        skip "$name" "nni is not installed: carry its wheels (see this script's header)"
    done
fi

$PY - "$WORK" "$OUT" "$DEVICE" "$DRY" <<'EOF'
"""Merge the steps' JSON and logs into one result and print the summary table."""
import json
import subprocess
import sys
import time
from pathlib import Path

work, out, device, dry = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
result = {"benchmark": "device_check", "device": device, "dry_run": dry, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
          "commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip(),
          "steps": {}}
for name in ("graphs", "throughput", "packing", "cifar10", "collapse"):
    rc, seconds = (work / f"{name}.status").read_text().split()
    step = {"exit": rc, "seconds": int(seconds), "log_tail": (work / f"{name}.log").read_text()[-2000:]}
    data = work / f"{name}.json"
    if data.is_file():
        step["result"] = json.loads(data.read_text())
    if name == "cifar10":
        finals = [line for line in (work / f"{name}.log").read_text().splitlines() if line.startswith("final: ")]
        if finals:
            step["result"] = json.loads(finals[-1][len("final: "):])
    result["steps"][name] = step
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(json.dumps(result, indent=1, default=str) + "\n")

def headline(name, step):
    r = step.get("result") or {}
    if name == "throughput":
        keys = [k for k in ("ratio_ours_over_hub", "ratio_ours_over_hub_best_repeats") if k in r]
        return ", ".join(f"{k} {r[k]}" for k in keys) or "see JSON"
    if name == "graphs":
        lines = step["log_tail"].strip().splitlines()
        return lines[-1] if lines else "no output"
    if name == "cifar10":
        return f"final accuracy {r.get('default')} after {r.get('epochs')} epochs" if r else "no result"
    return "see JSON" if r else "no result"

print(f"{'step':<11} {'exit':>7} {'seconds':>8}  headline")
for name, step in result["steps"].items():
    print(f"{name:<11} {step['exit']:>7} {step['seconds']:>8}  {headline(name, step)}")
print(f"wrote {out}")
failed = [n for n, s in result["steps"].items() if s["exit"] not in ("0", "skipped")]
sys.exit(1 if failed else 0)
EOF
