"""Measuring a per-layer latency table of the Single-Path NAS space on this machine.

The table format, the Pixel-1 defaults and the predicted latency are :mod:`nni_nas_bench.latency`,
which :mod:`search_spaces.mobilenet` imports; measuring needs the space's layers, so it lives here, on
the far side of the space (``benchmarks/measure_latency.py`` is its command line).
"""

from __future__ import annotations

from typing import Any

from nni_nas_bench.latency import CHOICES, LatencyTable


def _time_ms(module: Any, x: Any, *, repeats: int, warmup: int, device: Any) -> float:
    """Median wall time of ``module(x)`` in ms (no grad, eval mode; CUDA synchronised around each call)."""
    import statistics
    import time

    import torch

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            sync()
            tic = time.perf_counter()
            module(x)
            sync()
            if i >= warmup:
                times.append((time.perf_counter() - tic) * 1e3)
    return statistics.median(times)


def measure_table(*, device: str = "cpu", image_size: int = 224, channels: int = 32, batch_size: int = 1,
                  repeats: int = 50, warmup: int = 10, seed: int = 0) -> LatencyTable:
    """Measure a latency table of the mobilenet space on this machine, one layer choice at a time.

    Each of the 22 layers is built alone for each of its four choices at the width of ``channels``
    (width multiplier channels/32) and the input size it sees in the chain at ``image_size`` (224: the
    224-px strides, otherwise the 32-px ones), and timed as the median of ``repeats`` forward passes
    after ``warmup`` untimed ones, in eval mode without gradients, as a deployed network runs. The fixed
    part is the stem plus the head (1×1 conv, pooling, classifier) timed the same way; a skip is timed as
    the identity it is. Per-layer timing ignores what a whole-network run would overlap or fuse; it is
    the same per-layer model the Pixel-1 table is.
    """
    import platform

    import torch

    from nni_nas_bench.training.trainer import resolve_device
    from search_spaces.mobilenet import MBConv, MobileNetChain, Skip, parse_op, width_multiplier

    device_ = resolve_device(device)
    torch.manual_seed(seed)
    shapes: dict[int, tuple[int, int, int]] = {}
    spec_of: dict[int, tuple[int, int, int]] = {}

    def record(key: int) -> Any:
        def hook(_module: Any, args: tuple) -> None:  # returns None: the input passes unchanged
            shapes[key] = tuple(args[0].shape[1:])
        return hook

    def probe(spec: Any, c_in: int, c_out: int, stride: int) -> Any:
        spec_of[spec.index] = (c_in, c_out, stride)
        layer = MBConv(c_in, c_out, 3, 3, stride)
        layer.register_forward_pre_hook(record(spec.index))
        return layer

    stem = "cifar" if image_size == 32 else "imagenet"  # the trial's rule: 32-px datasets get the CIFAR strides
    net = MobileNetChain(probe, width_multiplier(channels), 1000, stem).to(device_).eval()
    handle = net.head.register_forward_pre_hook(record(-1))
    x = torch.randn(batch_size, 3, image_size, image_size, device=device_)
    with torch.inference_mode():
        net(x)
    handle.remove()
    features = torch.randn(batch_size, *shapes.pop(-1), device=device_)

    def head(features: Any) -> Any:
        return net.classifier(net.pool(net.head(features)).flatten(1))

    timing = {"repeats": repeats, "warmup": warmup, "device": device_}
    fixed = _time_ms(net.stem, x, **timing) + _time_ms(head, features, **timing)
    layers = []
    for index in range(len(spec_of)):
        c_in, c_out, stride = spec_of[index]
        inp = torch.randn(batch_size, *shapes[index], device=device_)
        row = []
        for op in CHOICES:
            kernel, expansion = parse_op(op)
            row.append(_time_ms(MBConv(c_in, c_out, kernel, expansion, stride).to(device_).eval(), inp, **timing))
        layers.append(tuple(row))
    skip = _time_ms(Skip(), torch.randn(batch_size, *shapes[2], device=device_), **timing)
    name = torch.cuda.get_device_name(device_) if device_.type == "cuda" else (platform.processor() or
                                                                                platform.machine())
    meta = {"device": f"{device_.type}: {name}", "image_size": image_size, "channels": channels,
            "batch_size": batch_size, "repeats": repeats, "warmup": warmup, "statistic": "median",
            "threads": torch.get_num_threads(), "torch": torch.__version__}
    return LatencyTable(tuple(layers), round(fixed, 4), round(skip, 4), "measured", meta)
