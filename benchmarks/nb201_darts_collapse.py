"""DARTS on NAS-Bench-201, epoch by epoch: does the derived cell drift to parameter-free operations?

NB201's paper (Dong & Yang 2020) reports that DARTS on its space ends with cells made of skip
connections (and ``none``), whose tabulated accuracy is far below the space's average. This script runs
one DARTS search of the NB201 supernet on real CIFAR-10 (the project's search split: train half for w,
validation half for α) and, after every epoch, records the derived cell (the argmax op of each edge,
``none`` included), how many of its 6 edges are parameter-free (``none``, ``skip_connect``,
``avg_pool_3x3``), the softmax weight α puts on parameter-free ops on average, and the cell's tabulated
CIFAR-10 test accuracy (200 epochs, mean over seeds) from the NB201 table. The JSON keeps the command,
the settings and the machine, so the run can be repeated and compared.

Example (a CPU-sized run; see benchmarks/README.md for the numbers and what they do and do not show)::

    OMP_NUM_THREADS=2 python benchmarks/nb201_darts_collapse.py --data-root ../shared/data --order 1 \\
        --epochs 25 --channels 8 --layers 2 --subset 500 --out benchmarks/results/nb201-darts-collapse-cpu.json
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from _common import REPO, git_state, load_average, write_result

sys.path.insert(0, str(REPO))
PARAMETER_FREE = ("none", "skip_connect", "avg_pool_3x3")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", required=True, help="folder holding the CIFAR-10 data and nas-bench-201/")
    parser.add_argument("--order", type=int, default=1, choices=[1, 2])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--layers", type=int, default=5, help="cells per stage (NB201: 5)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--subset", type=int, default=None, help="images per class (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    import torch

    from nni_nas_bench.strategies import create_strategy
    from nni_nas_bench.tabular import load_table
    from search_spaces import create_space
    from search_spaces.nb201_arch import NB201_OPS

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    space = create_space("nb201")
    table = load_table("cifar10", args.data_root)
    strategy = create_strategy("darts", order=args.order, epochs=args.epochs, channels=args.channels,
                               layers=args.layers, batch_size=args.batch_size, subset=args.subset, seed=args.seed)
    free = [NB201_OPS.index(op) for op in PARAMETER_FREE]
    out: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_before": load_average()},
        "git": git_state(),
        "settings": strategy.settings, "space_mean_test": float(table.test.mean()),
        "space_best_test": float(table.test.max()), "epochs": [],
    }
    tic = time.perf_counter()
    result = strategy.search(space, data_root=args.data_root, dataset="cifar10", device=args.device)
    for row in result.alpha_history:
        alpha = torch.tensor(row["alpha"]["normal"]).softmax(-1)
        cell = space.parse(row["genotype"])
        out["epochs"].append({
            "epoch": row["epoch"], "genotype": row["genotype"], "valid_acc": row["valid_acc"],
            "parameter_free_edges": sum(op in PARAMETER_FREE for op in cell.ops),
            "skip_edges": sum(op == "skip_connect" for op in cell.ops),
            "alpha_parameter_free": float(alpha[:, free].sum(-1).mean()),
            "table_test_acc": float(table.test[table.index_of(cell)]),
        })
        e = out["epochs"][-1]
        print(f"epoch {e['epoch']:3d}  valid {e['valid_acc']:5.1f}  free edges {e['parameter_free_edges']}/6  "
              f"alpha(free) {e['alpha_parameter_free']:.3f}  table {e['table_test_acc']:5.2f}  {e['genotype']}")
    out["search_seconds"] = time.perf_counter() - tic
    out["machine"]["load_after"] = load_average()
    write_result(args.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
