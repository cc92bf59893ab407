"""How well the training-free proxies rank NAS-Bench-201 cells, what they cost, and what NASWOT's pick is worth.

1. ``correlation``: Spearman ρ and Kendall τ (``scipy.stats``) of each proxy of :mod:`nni_nas_bench.zero_cost`
   against NB201's 200-epoch test accuracy on cifar10 (the ``cifar10-valid`` table), cifar100 and
   ImageNet16-120, over ``--cells`` cells drawn uniformly without replacement (seeded).
2. ``seconds``: seconds per cell for all five proxies together (passes shared), and for each proxy alone on
   the first ``--timed-cells`` cells, on this machine, one thread per worker.
3. ``naswot_pick``: over ``--runs`` runs, NASWOT's pick among N cells drawn from the scored pool (N = 10 and
   100): its test accuracy per dataset (mean ± std), beside a uniformly drawn cell's and the table's best.

Data: every cell is the NB201 network (C = 16, 5 cells per stage, 10 classes), initialised with
``--init-seed``, scored on ONE batch of ``--batch-size`` real CIFAR-10 training images (search split,
seeded, no augmentation; ``zero_cost.proxy_batch``). This machine has no CIFAR-100 or ImageNet16-120 images,
so the cifar100 and ImageNet16-120 columns correlate these same CIFAR-10 scores with those datasets'
accuracies (how the NASWOT paper's cross-dataset transfer is usually read); the JSON says so.

Example (the numbers in benchmarks/README.md)::

    python benchmarks/zero_cost.py --data-root ../shared/data --out benchmarks/results/zero_cost-cpu-2core.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from _common import REPO, git_state, load_average, write_result

sys.path.insert(0, str(REPO))

DATASETS = {"cifar10": "cifar10-valid", "cifar100": "cifar100", "ImageNet16-120": "ImageNet16-120"}
_BATCH: Any = None  # a worker's batch, loaded once by _init_worker


def _init_worker(data_root: str, batch_size: int, seed: int) -> None:
    """One thread for torch and for BLAS/OpenMP per worker process, and the batch loaded once."""
    global _BATCH
    from nni_nas_bench.workers import pin_threads
    from nni_nas_bench.zero_cost import proxy_batch

    pin_threads()

    _BATCH = proxy_batch("cifar10", data_root, batch_size, seed)


def _score(job: tuple[int, str, int, bool]) -> dict[str, Any]:
    """All proxies of one cell (and, for timed cells, each proxy alone)."""
    import torch

    from nni_nas_bench import zero_cost
    from search_spaces import create_space

    index, arch, init_seed, timed = job
    space = create_space("nb201")
    torch.manual_seed(init_seed)
    net = space.build_network(space.parse(arch))
    inputs, targets = _BATCH
    tic = time.perf_counter()
    row: dict[str, Any] = {"index": index, "arch": arch, **zero_cost.score(net, inputs, targets)}
    row["seconds"] = time.perf_counter() - tic
    if timed:
        for proxy in zero_cost.PROXIES:
            tic = time.perf_counter()
            zero_cost.score(net, inputs, targets, [proxy])
            row[f"seconds_{proxy}"] = time.perf_counter() - tic
    return row


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import pandas as pd
    from scipy import stats as sps

    from nni_nas_bench import zero_cost
    from nni_nas_bench.tabular.table import load_table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64, help="zero-cost-nas scored NB201 on batches of 64")
    parser.add_argument("--seed", type=int, default=0, help="which cells, and which images")
    parser.add_argument("--init-seed", type=int, default=0, help="torch seed of every network's initialisation")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timed-cells", type=int, default=20)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--scores", default=None, help="also write every cell's scores to this CSV")
    parser.add_argument("--out", default=None, help="result JSON (default: print only)")
    args = parser.parse_args(argv)

    tables = {name: load_table(table, args.data_root) for name, table in DATASETS.items()}
    rng = np.random.default_rng(args.seed)
    indices = rng.choice(len(tables["cifar10"].test), size=args.cells, replace=False)
    jobs = [(int(i), str(tables["cifar10"].arch_str[i]), args.init_seed, k < args.timed_cells)
            for k, i in enumerate(indices)]
    tic = time.perf_counter()
    with ProcessPoolExecutor(args.workers, initializer=_init_worker,
                             initargs=(args.data_root, args.batch_size, args.seed)) as pool:
        rows = []
        for k, row in enumerate(pool.map(_score, jobs, chunksize=4), 1):
            rows.append(row)
            if k % 50 == 0:
                print(f"{k}/{len(jobs)} cells, {time.perf_counter() - tic:.0f} s", flush=True)
    wall = time.perf_counter() - tic
    scores = pd.DataFrame(rows)
    for name, table in tables.items():
        scores[f"test_{name}"] = table.test[scores["index"].to_numpy()]
    if args.scores:
        scores.to_csv(args.scores, index=False)

    correlation = {}
    for proxy in zero_cost.PROXIES:
        valid = scores[np.isfinite(scores[proxy])]
        correlation[proxy] = {"finite_cells": len(valid)}
        for name in tables:
            rho = sps.spearmanr(valid[proxy], valid[f"test_{name}"]).statistic
            tau = sps.kendalltau(valid[proxy], valid[f"test_{name}"]).statistic
            correlation[proxy][name] = {"spearman": round(float(rho), 4), "kendall": round(float(tau), 4)}

    picks: dict[str, Any] = {}
    pick_rng = np.random.default_rng(args.seed + 1)
    for n in (10, 100):
        if n > len(scores):
            continue
        chosen = [pick_rng.choice(len(scores), size=n, replace=False) for _ in range(args.runs)]
        best = [c[np.argmax(scores["naswot"].to_numpy()[c])] for c in chosen]
        uniform = [c[0] for c in chosen]  # the first draw of each run: a uniformly drawn cell
        picks[f"N={n}"] = {
            name: {"naswot_mean": round(float(scores[f"test_{name}"].to_numpy()[best].mean()), 3),
                   "naswot_std": round(float(scores[f"test_{name}"].to_numpy()[best].std(ddof=1)), 3),
                   "random_mean": round(float(scores[f"test_{name}"].to_numpy()[uniform].mean()), 3),
                   "table_best": round(float(tables[name].test.max()), 3)}
            for name in tables}

    timed = scores.head(args.timed_cells)
    result = {
        "benchmark": "zero_cost",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git": git_state(), "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                        "load_average_at_end": load_average()},
        "settings": {**{k: v for k, v in vars(args).items() if k not in ("out", "scores")},
                     "network": "NB201 C=16, 5 cells per stage, 10 classes, train mode",
                     "data": "one batch of real CIFAR-10 training images (search split) for every dataset's "
                             "correlation: no CIFAR-100 / ImageNet16-120 images on this machine",
                     "accuracy": "NB201 200-epoch test accuracy (cifar10: the cifar10-valid table)"},
        "correlation": correlation,
        "seconds": {"per_cell_all_proxies_median": round(float(scores["seconds"].median()), 3),
                    "per_cell_alone_median": {p: round(float(timed[f"seconds_{p}"].median()), 3)
                                              for p in zero_cost.PROXIES if f"seconds_{p}" in timed},
                    "wall": round(wall, 1), "workers": args.workers},
        "naswot_pick": picks,
    }
    print(json.dumps({"correlation": correlation, "naswot_pick": picks, "seconds": result["seconds"]}, indent=1))
    if args.out:
        write_result(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
