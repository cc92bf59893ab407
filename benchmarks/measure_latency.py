"""Measure the per-layer latency table of the Single-Path NAS space on this machine (CPU or GPU).

Single-Path NAS ships a table measured on a Pixel 1 phone; the latency a user cares about is their own
device's. This script times every choice (kernel 3|5 × expansion 3|6) of every one of the 22 layers of
the mobilenet space, alone, at the input size it sees in the network, plus the fixed stem and head, and
writes the table in the Pixel-1 JSON layout (``"layer" -> "choice" -> ms``) with a ``_meta`` object
(fixed and skip costs, device, settings). Use it as the space's table::

    python benchmarks/measure_latency.py --device cpu --threads 1 --out tables/cpu.json
    # YAML: space_args: {latency_table: tables/cpu.json}

Timing: eval mode, no gradients, batch ``--batch-size`` (1, as on a phone), the median of ``--repeats``
forward passes after ``--warmup`` untimed ones; on CUDA the device is synchronised around each pass.
``--image-size 32`` measures the CIFAR variant's strides.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON table")
    parser.add_argument("--device", default="cpu", help="'cpu', 'cuda', 'cuda:1' or 'auto'")
    parser.add_argument("--image-size", type=int, default=224, help="224 (MobileNetV2 strides) or 32 (CIFAR)")
    parser.add_argument("--channels", type=int, default=32, help="stem width; width multiplier = channels / 32")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=50, help="timed forward passes per entry; median reported")
    parser.add_argument("--warmup", type=int, default=10, help="untimed passes before timing each entry")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)

    import torch

    from nni_nas_bench.latency_measure import measure_table

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    table = measure_table(device=args.device, image_size=args.image_size, channels=args.channels,
                          batch_size=args.batch_size, repeats=args.repeats, warmup=args.warmup)
    path = table.save(args.out)
    largest = table.fixed_ms + sum(row[3] for row in table.layers)
    print(f"wrote {path}: {table.num_layers} layers on {table.meta['device']}, fixed {table.fixed_ms:.3f} ms, "
          f"skip {table.skip_ms:.4f} ms, k5e6 everywhere {largest:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
