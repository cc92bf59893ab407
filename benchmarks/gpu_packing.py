"""Aggregate training throughput with 1, 2, 4, 8 concurrent small trainings on ONE GPU (GPU packing).

Why: a benchmark is hundreds of final trainings of small networks (DARTS: 36 channels, 20 cells, 32-px
images, batch 96). One such training rarely keeps a large GPU busy (kernel launches, small convolutions),
so NNI can pack several trials on a GPU (``trialGpuNumber / maxTrialNumberPerGpu`` GPUs per trial). Whether
that pays, and up to how many, is a measurement: the sum of images/s over all concurrent trainings at
N = 1, 2, 4, 8, and the peak memory each one takes. ``experiments/remote/*.yml`` set
``maxTrialNumberPerGpu`` from it.

How: N separate *processes* (as NNI runs trials: separate CUDA contexts, no shared Python), each
training the same network with :func:`nni_nas_bench.training.trainer.train_epoch` — the loop trials run,
bf16 autocast, channels_last and the CUDA-graph step on CUDA — over synthetic uint8 images on the device
with the project's on-device augmentation. All processes build their model, warm up, then wait at a barrier; the timed
window is the same for all of them (``--seconds``), and each counts the images it trained in it. The
result is the sum over processes; a process that runs out of memory is reported as such (the point where
packing stops working), not hidden. No nni import: torch + this package only.

    python benchmarks/gpu_packing.py --device cuda --counts 1 2 4 8 --seconds 60 \\
        --out benchmarks/results/gpu_packing-h200.json
    python benchmarks/gpu_packing.py --device cpu --counts 1 2 --seconds 10 --channels 8 --layers 5   # smoke run
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from _common import REPO, device_name, git_state, load_average, write_result

sys.path.insert(0, str(REPO))


def _worker(rank: int, args: dict[str, Any], barrier: Any, results: Any) -> None:
    """One training process: build, warm up, wait for all, train for ``seconds``, report images and memory."""
    import torch

    from nni_nas_bench.data.gpu_loader import GpuBatchLoader
    from nni_nas_bench.training import from_dict
    from nni_nas_bench.training.trainer import make_optimizer, make_train_step, memory_format_for, train_epoch
    from search_spaces.cell_space import build_cell_network  # the child network, without nni's mutables
    from search_spaces.genotype import PUBLISHED

    torch.set_num_threads(args["threads"])
    device = torch.device(args["device"])
    out: dict[str, Any] = {"rank": rank}
    try:
        protocol = from_dict({"preset": "darts", "batch_size": args["batch_size"], "channels": args["channels"],
                              "layers": args["layers"], "seed": rank})
        net = build_cell_network(PUBLISHED["DARTS_V2"], C=protocol.channels, num_classes=10, layers=protocol.layers,
                                 auxiliary=True)
        memory_format = memory_format_for(protocol, device)
        net.to(device=device, memory_format=memory_format)
        net.drop_path_prob.fill_(protocol.drop_path)
        images = torch.randint(0, 256, (args["images"], 3, 32, 32), dtype=torch.uint8, device=device)
        labels = torch.randint(0, 10, (args["images"],), device=device)
        loader = GpuBatchLoader(images, labels, batch_size=protocol.batch_size, device=device,
                                mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26), train=True, cutout=protocol.cutout,
                                seed=rank)
        optimizer = make_optimizer(net, protocol, device)
        step = make_train_step(net, optimizer, torch.nn.CrossEntropyLoss(), protocol, device, memory_format)
        train_epoch(net, loader, step, device)  # warm-up (cudnn autotune, CUDA-graph capture)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
    except torch.OutOfMemoryError as exc:
        out["error"] = f"out of memory while building/warming up: {str(exc).splitlines()[0]}"
    except Exception as exc:  # still reach the barrier: the other processes would wait for this one forever
        out["error"] = f"{type(exc).__name__} while building/warming up: {exc}"
    barrier.wait()
    if "error" not in out:
        seen, epoch = 0, 1
        tic = time.perf_counter()
        try:
            while time.perf_counter() - tic < args["seconds"]:
                loader.set_epoch(epoch)
                n = train_epoch(net, loader, step, device).seen
                seen, epoch = seen + n, epoch + 1
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            elapsed = time.perf_counter() - tic
            out.update(images=seen, seconds=elapsed, img_per_s=seen / elapsed)
            if device.type == "cuda":
                out["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        except torch.OutOfMemoryError as exc:
            out["error"] = f"out of memory while training: {str(exc).splitlines()[0]}"
        except Exception as exc:
            out["error"] = f"{type(exc).__name__} while training: {exc}"
    results.put(out)


def measure(count: int, args: dict[str, Any]) -> dict[str, Any]:
    """Run ``count`` training processes at once; return their sum and each one's numbers."""
    ctx = mp.get_context("spawn")  # a fresh CUDA context per process, as separate NNI trials have
    barrier, results = ctx.Barrier(count), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(rank, args, barrier, results)) for rank in range(count)]
    for p in procs:
        p.start()
    rows = [results.get(timeout=args["seconds"] + 900) for _ in procs]
    for p in procs:
        p.join()
    ok = [r for r in rows if "error" not in r]
    return {
        "concurrent": count,
        "aggregate_img_per_s": sum(r["img_per_s"] for r in ok) if len(ok) == count else None,
        "per_trial_img_per_s": [r.get("img_per_s") for r in sorted(rows, key=lambda r: r["rank"])],
        "peak_memory_gib": [r.get("peak_memory_gib") for r in sorted(rows, key=lambda r: r["rank"])],
        "errors": [r["error"] for r in rows if "error" in r],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:1, or cpu (a smoke run only)")
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4, 8], help="concurrent trainings")
    parser.add_argument("--seconds", type=float, default=60.0, help="timed window per count (after warm-up)")
    parser.add_argument("--batch-size", type=int, default=96)
    parser.add_argument("--channels", type=int, default=36)
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--images", type=int, default=2400, help="synthetic images per process (one epoch)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per process")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)

    import torch

    settings = {k: getattr(args, k) for k in ("device", "seconds", "batch_size", "channels", "layers", "images",
                                              "threads")}
    if str(args.device).startswith("cuda") and not torch.cuda.is_available():
        print("gpu_packing: no CUDA device here; run it on a GPU machine (or --device cpu for a smoke run)",
              file=sys.stderr)
        return 2
    rows: list[dict[str, Any]] = []
    for count in args.counts:
        row = measure(count, settings)
        rows.append(row)
        agg = row["aggregate_img_per_s"]
        print(f"{count} concurrent: " + (f"{agg:.0f} img/s in total" if agg is not None else "FAILED")
              + (f"; errors: {row['errors']}" if row["errors"] else ""), flush=True)
        result = _result(rows, settings, args.device)
        if args.out:  # after every count: a run stopped at a time limit keeps the counts it finished
            write_result(args.out, result)
    print(json.dumps(rows, indent=2))
    return 0


def _result(rows: list[dict[str, Any]], settings: dict[str, Any], device: str) -> dict[str, Any]:
    """The result record of the counts measured so far, with each count's speed-up over one training."""
    import torch

    base = rows[0]["aggregate_img_per_s"] if rows and rows[0]["concurrent"] == 1 else None
    for row in rows:
        row["speedup_vs_1"] = (row["aggregate_img_per_s"] / base) if base and row["aggregate_img_per_s"] else None
    return {
        "what": "aggregate training images/s of N concurrent DARTS-V2 trainings on one device",
        "settings": settings,
        "results": rows,
        "device_name": device_name(torch.device(device)),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average": load_average(),
        "git": git_state(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([sys.executable, *sys.argv]),
    }


if __name__ == "__main__":
    sys.exit(main())
