"""One DARTS supernet search step: this project's DARTS vs NNI's built-in ``nni.nas.strategy.DARTS``.

The search cost of every DARTS-family method is its supernet step, repeated for 50 epochs × 390 batches
per search and 8 searches per table cell. This script times that step for the DARTS space at SPEC's
search size (8 cells, 16 channels, batch 64, CIFAR-sized inputs), in one process, on one device:

* ``ours_1st`` / ``ours_2nd``: :meth:`DartsStrategy.step` (the exact per-batch code of the search) on
  :class:`~search_spaces.supernet.DartsSupernet`: an α step on a validation batch (first order, or the
  unrolled second-order step with its finite-difference Hessian-vector product), then a weight step on a
  training batch (SGD momentum 0.9, weight decay 3e-4, gradient clipping 5).
* ``nni``: NNI 3.0's ``DARTS`` strategy on ``nni.nas.hub.pytorch.DARTS(width=16, num_cells=8)`` with
  the ``Classification`` evaluator (SGD lr 0.025, weight decay 3e-4) and ``gradient_clip_val=5``, run by
  NNI's own route (``NasExperiment(...).run()``: Lightning ``fit`` of NNI's ``DartsLightningModule``).
  Its ``training_step`` is the same work as ``ours_1st``: an α step (forward + backward on the
  validation batch, Adam) and a weight step (forward + backward on the training batch, clipping, SGD).
  NNI has no second-order DARTS, so ``ours_2nd`` has no NNI counterpart; it is reported for its cost.

Why time NNI through ``fit`` with a Lightning callback instead of calling ``training_step``: the step
uses its trainer (manual optimisation, optimizers, epoch counter), so a bare call would need a fake
trainer, i.e. not NNI's code path. The callback reads the clock at ``on_train_batch_start`` and
``on_train_batch_end``, which brackets exactly one ``training_step`` (data loading, set-up and the
epoch's end are outside), and the first ``--warmup`` batches of every fit are dropped. Our batches are
tensors already in memory, as NNI's are when the callback fires. Both supernets mix 7 computed ops on
each of the 14 edges of a cell (NNI has no ``none`` op; ours skips computing it); each uses its own
cell implementation (that is what is compared).

Every repeat builds a fresh NNI experiment (NNI's Lightning evaluator fits only once per instance) and
runs ``--warmup + --steps`` batches; the contenders' repeats are interleaved so background load hits all
alike; the headline is the median seconds per step, with the fastest repeat and every repeat recorded.
``--threads`` defaults to 1: on a busy 2-core machine two OpenMP threads spin-wait on each other.

    python benchmarks/supernet_step.py --device cpu --threads 1 --steps 2 --warmup 1 --repeats 3 \\
        --out benchmarks/results/supernet_step-cpu-2core.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from _common import device_name, git, load_average, package_version, synchronize, timed, write_result

REPO_ROOT = Path(__file__).resolve().parents[1]
CHANNELS, LAYERS, BATCH, NUM_CLASSES = 16, 8, 64, 10
W_LR, W_WEIGHT_DECAY, GRAD_CLIP = 0.025, 3e-4, 5.0


def _batches(n: int, seed: int, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(BATCH, 3, 32, 32, generator=g).to(device), torch.randint(0, NUM_CLASSES, (BATCH,),
                                                                                  generator=g).to(device))
            for _ in range(n)]


def ours(order: int, device: torch.device, seed: int) -> Callable[[int, int], list[float]]:
    """A runner: ``run(warmup, steps)`` -> seconds of each timed step of this project's DARTS."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from nni_nas_bench.strategies import create_strategy
    from search_spaces import create_space
    from search_spaces.supernet import DartsSupernet

    torch.manual_seed(seed)
    strategy = create_strategy("darts", order=order, batch_size=BATCH, layers=LAYERS, channels=CHANNELS)
    net = DartsSupernet(create_space("darts"), C=CHANNELS, num_classes=NUM_CLASSES, layers=LAYERS).to(device)
    net.train()
    weights = dict(net.named_weight_parameters())
    w_opt, a_opt = strategy.make_optimizers(net)
    criterion = torch.nn.CrossEntropyLoss()
    train, valid = _batches(2, seed, device), _batches(2, seed + 1, device)

    def run(warmup: int, steps: int) -> list[float]:
        times = [timed(lambda i=i: strategy.step(net, weights, train[i % 2], valid[i % 2], W_LR, w_opt, a_opt,
                                                 criterion), device) for i in range(warmup + steps)]
        return times[warmup:]

    return run


def nni_darts(device: torch.device, seed: int, workdir: Path) -> Callable[[int, int], list[float]]:
    """A runner: ``run(warmup, steps)`` -> seconds of each timed ``training_step`` of NNI's DARTS."""
    import pytorch_lightning as pl
    from nni.nas.evaluator.pytorch import Classification
    from nni.nas.experiment import NasExperiment
    from nni.nas.hub.pytorch import DARTS as DartsSpace
    from nni.nas.strategy import DARTS
    from torch.utils.data import DataLoader, TensorDataset

    class StepClock(pl.Callback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self._tic = 0.0

        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
            synchronize(device)
            self._tic = time.perf_counter()

        def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            synchronize(device)
            self.times.append(time.perf_counter() - self._tic)

    def loader(offset: int, n: int) -> DataLoader:
        xs, ys = zip(*_batches(n, seed + offset, torch.device("cpu")))
        return DataLoader(TensorDataset(torch.cat(xs), torch.cat(ys)), batch_size=BATCH)

    def run(warmup: int, steps: int) -> list[float]:
        n = warmup + steps
        clock = StepClock()
        torch.manual_seed(seed)
        evaluator = Classification(
            train_dataloaders=loader(0, n), val_dataloaders=loader(1, n), num_classes=NUM_CLASSES,
            learning_rate=W_LR, weight_decay=W_WEIGHT_DECAY, optimizer=torch.optim.SGD, max_epochs=1,
            limit_train_batches=n, limit_val_batches=0, num_sanity_val_steps=0, callbacks=[clock],
            accelerator="gpu" if device.type == "cuda" else "cpu", devices=1, logger=False,
            enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
            default_root_dir=str(workdir),
        )
        space = DartsSpace(width=CHANNELS, num_cells=LAYERS, dataset="cifar")
        experiment = NasExperiment(space, evaluator, DARTS(gradient_clip_val=GRAD_CLIP))
        experiment.config.experiment_working_directory = str(workdir)
        experiment.run()
        if len(clock.times) != n:
            raise RuntimeError(f"NNI ran {len(clock.times)} training steps, expected {n}")
        return clock.times[warmup:]

    return run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, see the docstring)")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps at the start of every repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--contenders", default="nni,ours_1st,ours_2nd")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.getLogger("nni").setLevel(logging.WARNING)
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names = args.contenders.split(",")
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="supernet-step-") as tmp:
        runners = {}
        for name in names:
            if name == "nni":
                runners[name] = nni_darts(device, args.seed, Path(tmp))
            elif name in ("ours_1st", "ours_2nd"):
                runners[name] = ours(1 if name == "ours_1st" else 2, device, args.seed)
            else:
                raise SystemExit(f"unknown contender {name!r}; choose from nni, ours_1st, ours_2nd")
        repeats: dict[str, list[list[float]]] = {name: [] for name in names}
        for r in range(args.repeats):
            for name in names:  # interleaved: background load hits every contender alike
                times = runners[name](args.warmup, args.steps)
                repeats[name].append(times)
                print(f"repeat {r + 1}/{args.repeats} {name}: " + ", ".join(f"{t:.2f}s" for t in times), flush=True)
    result: dict[str, Any] = {"contenders": {}}
    for name, runs in repeats.items():
        per_repeat = [statistics.mean(times) for times in runs]
        result["contenders"][name] = {"median_s_per_step": statistics.median(per_repeat),
                                      "best_s_per_step": min(per_repeat), "repeats_s_per_step": per_repeat,
                                      "steps_s": runs}
    c = result["contenders"]
    if "nni" in c and "ours_1st" in c:
        result["speedup_ours_1st_vs_nni"] = {
            "median": c["nni"]["median_s_per_step"] / c["ours_1st"]["median_s_per_step"],
            "best": c["nni"]["best_s_per_step"] / c["ours_1st"]["best_s_per_step"],
        }
    if "nni" in c and "ours_2nd" in c:
        result["ours_2nd_vs_nni_1st_median"] = c["nni"]["median_s_per_step"] / c["ours_2nd"]["median_s_per_step"]
    result["settings"] = {"channels": CHANNELS, "cells": LAYERS, "batch": BATCH, "input": [3, 32, 32],
                          "steps": args.steps, "warmup": args.warmup, "repeats": args.repeats,
                          "threads": args.threads, "device": args.device, "seed": args.seed}
    result["provenance"] = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git("rev-parse", "HEAD"), "git_dirty": bool(git("status", "--porcelain", "--", "benchmarks",
                                                                          "nni_nas_bench", "search_spaces")),
        "python": platform.python_version(), "torch": torch.__version__, "nni": package_version("nni"),
        "pytorch_lightning": package_version("pytorch-lightning"), "cpu": device_name("cpu"),
        "cpu_count": os.cpu_count(), "load_average_before": load_before,
        "load_average_after": load_average(),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "provenance"}, indent=1))
    if args.out is not None:
        write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
