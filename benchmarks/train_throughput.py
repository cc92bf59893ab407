"""Training throughput of the DARTS-V2 network: NNI's hub model vs this project's training step.

Final training of sampled architectures is what the whole benchmark spends its compute on (hundreds
of 600-epoch trainings), so images per second of one training step decides how many architectures
the benchmark can afford. This script measures it for two contenders on one device, in one process:

* ``hub``: ``nni.nas.hub.pytorch.DARTS.load_searched_model('darts-v2')`` trained with a plain fp32
  PyTorch step (forward, cross-entropy (+0.4 x auxiliary loss when the model returns a tuple),
  backward, gradient clipping at 5, SGD momentum 0.9 / weight decay 3e-4) on batches that are already
  on the device: what a user gets from NNI with the obvious loop, without any data-loading cost.
* ``ours``: :func:`search_spaces.darts.build_darts_network` (auxiliary head on, DropPath 0.2) trained
  by :func:`nni_nas_bench.training.trainer.train_epoch`, the exact loop trials run, with the protocol's
  defaults for the device (bf16 autocast + channels_last on CUDA, fp32 on CPU), fed by the project's
  ``GpuBatchLoader`` over synthetic uint8 images on the device, so crop/flip/cutout are inside the
  timed region.

``--variants`` adds our loop with parts of the GPU path switched off, so each part's share is measured:
``ours_bf16_eager`` (bf16 + channels_last, no CUDA graph), ``ours_fp32_eager`` (fp32, contiguous, no
CUDA graph: the hub's arithmetic with our loop), ``ours_fp32_graph`` and ``ours_bf16_contiguous_graph``
(the graph with fp32, or without channels_last: under a graph the step is bound by its kernels' count and
latency, and autocast's casts and layout changes are kernels too). ``ours`` is the protocol's default for
the device: on CUDA bf16 autocast + channels_last + the step captured as one CUDA graph; on a CPU fp32
eager (so there the variants measure the same thing and only prove the script runs). A contender that
fails (a CUDA-graph capture error, say) is reported under ``failed`` with its error; the others are still measured.

``--breakdown`` adds ``ours_net_plain_step``: our network *without* auxiliary head and DropPath under
the hub's plain step and in-memory batches. It does exactly the hub's work, so hub vs. it isolates the
network implementation and it vs. ``ours`` isolates what the trial loop adds (auxiliary head, DropPath,
augmentation, precision).

Warm-up steps are excluded, repeats of the contenders are interleaved (so load or clock drift hits
both alike) and the median of the repeats is reported. On CUDA the device is synchronised before each
clock read. Example::

    python benchmarks/train_throughput.py --device cpu --steps 4 --warmup 2 --repeats 3 --threads 2 --breakdown \\
        --out benchmarks/results/cpu-2core.json
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from _common import device_name, git_state, load_average, package_version, synchronize, timed, write_result
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]

# The DARTS final-training settings the benchmark is about (SPEC / DARTS paper, CIFAR-10).
CHANNELS = 36
LAYERS = 20
NUM_CLASSES = 10
AUX_WEIGHT = 0.4
GRAD_CLIP = 5.0
LR, MOMENTUM, WEIGHT_DECAY = 0.025, 0.9, 3e-4
# Distinct in-memory batches cycled by the plain-step contenders: enough that no single batch stays
# hot in a cache, few enough that they cost nothing to hold.
PLAIN_BATCH_POOL = 8
# --variants: our loop with parts of the GPU path switched off.
VARIANTS: dict[str, dict[str, Any]] = {
    "ours_bf16_eager": {"cuda_graphs": False},
    "ours_fp32_eager": {"precision": "fp32", "channels_last": False, "cuda_graphs": False},
    "ours_fp32_graph": {"precision": "fp32", "channels_last": False},
    "ours_bf16_contiguous_graph": {"channels_last": False},
}
# Repeats of one contender further apart than this (fastest/slowest - 1) make the result suspect.
NOISY_SPREAD = 0.2


def _import_project() -> None:
    """Make the project importable when the script is run as a file from a plain checkout.

    CI installs the project (``pip install -e .``); a bare clone on a GPU machine does not, and the
    benchmark should run there with nothing more than ``python benchmarks/train_throughput.py``.
    """
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))


# ---------------------------------------------------------------------------------------- contenders
@dataclass
class Contender:
    """One measured training setup: ``warmup()`` runs the untimed steps, ``run()`` exactly ``--steps``."""

    name: str
    description: str
    warmup: Callable[[], None]
    run: Callable[[], None]
    model: nn.Module
    seconds: list[float] = field(default_factory=list)


def _plain_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    """The textbook fp32 step a user writes around an NNI hub model (DARTS's own train loop)."""
    out = model(x)
    # load_searched_model builds the hub net without an auxiliary head, so it returns plain logits;
    # the tuple branch keeps the step correct for a model that has one.
    logits, aux = out if isinstance(out, tuple) else (out, None)
    loss = F.cross_entropy(logits, y)
    if aux is not None:
        loss = loss + AUX_WEIGHT * F.cross_entropy(aux, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
    optimizer.step()


def _in_memory_batches(images: torch.Tensor, labels: torch.Tensor, batch: int,
                       device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Normalised float batches already on the device: the hub baseline pays no data cost at all."""
    _import_project()
    from nni_nas_bench.data import CIFAR_MEAN, CIFAR_STD

    mean = torch.tensor(CIFAR_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD, device=device).view(1, 3, 1, 1)
    batches = []
    for i in range(min(PLAIN_BATCH_POOL, max(len(images) // batch, 1))):
        x = images[i * batch:(i + 1) * batch].to(device).float().div_(255.0)
        batches.append(((x - mean) / std, labels[i * batch:(i + 1) * batch].to(device)))
    return batches


def _plain_contender(name: str, description: str, model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]],
                     steps: int, warmup: int, device: torch.device) -> Contender:
    """Wrap a model in the plain fp32 step over pre-made device batches."""
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)

    def run_steps(n: int) -> None:
        for i in range(n):
            x, y = batches[i % len(batches)]
            _plain_step(model, optimizer, x, y)

    return Contender(name, description, lambda: run_steps(warmup), lambda: run_steps(steps), model)


def _load_hub_model() -> tuple[nn.Module | None, str | None]:
    """NNI's DARTS-V2, or ``(None, reason)`` when nni is missing or cannot build it on this torch.

    nni is imported here and nowhere else, so the rest of the benchmark runs on machines without it.
    """
    try:
        with warnings.catch_warnings():
            # nni 3.0 warns about every torch class it does not know; noise, not a problem.
            warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")
            from nni.nas.hub.pytorch import DARTS

            return DARTS.load_searched_model("darts-v2"), None
    except ImportError as exc:
        return None, f"nni is not installed ({exc}); measuring ours only, ratio is null"
    except Exception as exc:  # an nni/torch version mismatch must not cost the measurement of ours
        return None, f"nni is installed but its hub DARTS-V2 could not be built ({exc!r}); measuring ours only"


def _synthetic_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random uint8 CIFAR-shaped images and labels: the speed of a step does not depend on content."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, NUM_CLASSES, (n,), generator=generator)
    return images, labels


def _ours_contender(batch: int, steps: int, warmup: int, device: torch.device, seed: int, name: str = "ours",
                    overrides: dict[str, Any] | None = None) -> tuple[Contender, Any]:
    """Our network trained by the trial loop, fed by the project's device loader (augmentation timed);
    ``overrides`` change the protocol (the ``--variants``)."""
    _import_project()
    from nni_nas_bench.data import TensorSplit, get_dataset_info, make_loaders
    from nni_nas_bench.training.protocol import from_dict
    from nni_nas_bench.training.trainer import (
        make_optimizer,
        make_train_step,
        memory_format_for,
        train_epoch,
        use_cuda_graphs,
        uses_bf16,
    )
    from search_spaces.darts import build_darts_network
    from search_spaces.genotype import PUBLISHED

    protocol = from_dict({"preset": "darts", "batch_size": batch, **(overrides or {})})
    torch.manual_seed(seed)
    model = build_darts_network(PUBLISHED["DARTS_V2"], C=protocol.channels, num_classes=NUM_CLASSES,
                                layers=protocol.layers, stem="cifar", auxiliary=protocol.auxiliary_weight > 0)
    memory_format = memory_format_for(protocol, device)
    model.to(device=device, memory_format=memory_format).train()
    # The last epoch's probability; DropPath costs the same at any p > 0 (the mask is always drawn).
    model.drop_path_prob.fill_(protocol.drop_path)
    optimizer = make_optimizer(model, protocol, device)
    criterion = nn.CrossEntropyLoss(label_smoothing=protocol.label_smoothing)
    step = make_train_step(model, optimizer, criterion, protocol, device, memory_format)
    info = get_dataset_info("cifar10")

    def loader(n_batches: int, data_seed: int) -> Any:
        # train_epoch consumes the whole loader, so each loader holds exactly the steps it should run.
        images, labels = _synthetic_images(n_batches * batch, data_seed)
        split = TensorSplit(images, labels, images[:batch], labels[:batch], info)
        train_loader, _ = make_loaders(split, batch_size=batch, device=device, cutout=protocol.cutout,
                                       autoaugment=protocol.autoaugment, seed=seed)
        return train_loader

    warm_loader = loader(warmup, seed + 1) if warmup > 0 else None
    timed_loader = loader(steps, seed + 2)
    epochs: Iterator[int] = iter(range(1, 1 << 30))

    def run_epoch(train_loader: Any) -> None:
        train_loader.set_epoch(next(epochs))  # a fresh order/augmentation draw, as every real epoch
        train_epoch(model, train_loader, step, device)

    contender = Contender(
        name,
        f"search_spaces DARTS-V2 (aux head, DropPath {protocol.drop_path}) + trainer.train_epoch + GpuBatchLoader "
        f"(crop/flip/cutout {protocol.cutout} on the device); {'bf16' if uses_bf16(protocol, device) else 'fp32'}, "
        f"{'channels_last' if memory_format == torch.channels_last else 'contiguous'}, "
        f"{'CUDA graph' if use_cuda_graphs(protocol, device) else 'eager'}",
        (lambda: run_epoch(warm_loader)) if warm_loader is not None else (lambda: None),
        lambda: run_epoch(timed_loader),
        model,
    )
    return contender, protocol


# ------------------------------------------------------------------------------------------- helpers
def _count(model: nn.Module, skip_auxiliary: bool) -> int:
    """Parameters, optionally without the auxiliary head (test-time size, what papers report)."""
    return sum(p.numel() for name, p in model.named_parameters()
               if not (skip_auxiliary and name.startswith("auxiliary_head")))


def _result(contender: Contender, images_per_repeat: int) -> dict[str, Any]:
    """Median (the headline) plus the fastest repeat: background load only ever slows a repeat down,
    so on a shared machine the best repeat is the better estimate of what the code can do."""
    rates = [images_per_repeat / s for s in contender.seconds]
    return {
        "description": contender.description,
        "img_per_s": statistics.median(rates),
        "best_img_per_s": max(rates),
        "spread": round(max(rates) / min(rates) - 1, 3),
        "repeats_img_per_s": [round(r, 3) for r in rates],
        "repeats_seconds": [round(s, 4) for s in contender.seconds],
    }


# ---------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--steps", type=int, default=50, help="timed training steps per repeat")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps before the first repeat")
    parser.add_argument("--batch", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per contender; the median is reported")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--breakdown", action="store_true",
                        help="also time our network under the hub's plain step (isolates network vs. loop costs)")
    parser.add_argument("--variants", action="store_true",
                        help="also time our loop without CUDA graphs (bf16) and in fp32 eager (each part's share)")
    parser.add_argument("--out", type=Path, default=None, help="write the result JSON here")
    args = parser.parse_args(argv)
    for name in ("steps", "batch", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Build the contenders, time them interleaved, print a summary, write the JSON if asked."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no CUDA device (torch.cuda.is_available() is False)")
    _import_project()
    from nni_nas_bench.training.trainer import resolve_device, use_cuda_graphs, uses_bf16

    device = resolve_device(args.device)
    load_before = load_average()
    notes: list[str] = []

    ours, protocol = _ours_contender(args.batch, args.steps, args.warmup, device, args.seed)
    contenders = [ours]
    if args.variants:
        for name, overrides in VARIANTS.items():
            contenders.append(_ours_contender(args.batch, args.steps, args.warmup, device, args.seed, name,
                                              overrides)[0])
    plain_images, plain_labels = _synthetic_images(PLAIN_BATCH_POOL * args.batch, args.seed + 3)
    plain_batches = _in_memory_batches(plain_images, plain_labels, args.batch, device)

    torch.manual_seed(args.seed)
    hub_model, hub_problem = _load_hub_model()
    if hub_model is None:
        print(f"WARNING: {hub_problem}", file=sys.stderr)
        notes.append(str(hub_problem))
    else:
        contenders.insert(0, _plain_contender(
            "hub", "nni.nas.hub.pytorch.DARTS.load_searched_model('darts-v2'), plain fp32 step, batches in memory",
            hub_model, plain_batches, args.steps, args.warmup, device))
        with torch.no_grad():
            returns_tuple = isinstance(hub_model(plain_batches[0][0][:2]), tuple)
        n_drop_path = sum(type(m).__name__ == "DropPath" for m in hub_model.modules())
        notes.append(
            f"in train mode the hub model returns {'(logits, aux)' if returns_tuple else 'plain logits'} and has "
            f"{n_drop_path} DropPath modules (load_searched_model uses auxiliary_loss=False, drop_path_prob=0), "
            "so per step it does less work than ours (no auxiliary head, no DropPath, no augmentation)"
        )
        print(f"note: {notes[-1]}")

    if args.breakdown:
        _import_project()
        from search_spaces.darts import build_darts_network
        from search_spaces.genotype import PUBLISHED

        torch.manual_seed(args.seed)
        plain_ours = build_darts_network(PUBLISHED["DARTS_V2"], C=CHANNELS, num_classes=NUM_CLASSES, layers=LAYERS,
                                         stem="cifar", auxiliary=False)
        # In train mode the network applies DropPath whenever drop_path_prob is a tensor, even at p = 0;
        # only a None buffer switches it off, which the hub-equivalent workload needs.
        plain_ours.drop_path_prob = None
        contenders.append(_plain_contender(
            "ours_net_plain_step", "search_spaces DARTS-V2 without aux head/DropPath, the hub's plain fp32 step",
            plain_ours, plain_batches, args.steps, args.warmup, device))

    params: dict[str, Any] = {"ours_test_time": _count(ours.model, skip_auxiliary=True),
                              "ours_with_auxiliary_head": _count(ours.model, skip_auxiliary=False)}
    if hub_model is not None:
        params["hub"] = _count(hub_model, skip_auxiliary=True)
        params["match"] = params["hub"] == params["ours_test_time"]
        print(f"parameters: hub {params['hub']:,}  ours {params['ours_test_time']:,} "
              f"(+ auxiliary head: {params['ours_with_auxiliary_head']:,})  match: {params['match']}")
        if not params["match"]:
            print("WARNING: the two networks differ in size, so they are not the same architecture", file=sys.stderr)
    else:
        print(f"parameters: ours {params['ours_test_time']:,} "
              f"(+ auxiliary head: {params['ours_with_auxiliary_head']:,})")

    print(f"device {device} ({device_name(device)}), threads {torch.get_num_threads()}, batch {args.batch}, "
          f"steps {args.steps} x {args.repeats} repeats after {args.warmup} warm-up steps", flush=True)
    failed: dict[str, str] = {}

    def attempt(contender: Contender, action: Callable[[], Any]) -> Any:
        # One contender's failure (a CUDA-graph capture error, out of memory) must not cost the others' numbers.
        if contender.name in failed:
            return None
        try:
            return action()
        except Exception as exc:
            failed[contender.name] = f"{type(exc).__name__}: {exc}"
            print(f"WARNING: {contender.name} failed: {failed[contender.name]}", file=sys.stderr)
            if device.type == "cuda":
                torch.cuda.empty_cache()
            return None

    for contender in contenders:
        attempt(contender, lambda c=contender: (c.warmup(), synchronize(device)))
    for repeat in range(args.repeats):
        for contender in contenders:
            seconds = attempt(contender, lambda c=contender: timed(c.run, device))
            if seconds is not None:
                contender.seconds.append(seconds)
                print(f"  repeat {repeat + 1}/{args.repeats} {contender.name}: "
                      f"{args.steps * args.batch / seconds:.1f} img/s", flush=True)

    images = args.steps * args.batch
    results = {c.name: _result(c, images) for c in contenders if c.name not in failed}
    if "ours" not in results:
        sys.exit(f"train_throughput: our default loop failed: {failed['ours']}")
    noisy = [f"{name} {r['spread']:.0%}" for name, r in results.items() if r["spread"] > NOISY_SPREAD]
    if noisy:
        notes.append(f"noisy: the fastest and slowest repeats differ by {', '.join(noisy)}; the machine was "
                     "probably busy (see load_average); compare best_img_per_s too, or rerun with more repeats")
        print(f"WARNING: {notes[-1]}", file=sys.stderr)
    hub_rate = results["hub"]["img_per_s"] if "hub" in results else None
    if "hub" in failed:
        notes.append(f"the hub model failed: {failed['hub']}")
    ours_rate = results["ours"]["img_per_s"]
    ratio = ours_rate / hub_rate if hub_rate else None
    best_ratio = results["ours"]["best_img_per_s"] / results["hub"]["best_img_per_s"] if hub_rate else None
    record = {
        "benchmark": "train_throughput",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "hub_img_per_s": hub_rate,
        "ours_img_per_s": ours_rate,
        "ratio_ours_over_hub": ratio,
        "ratio_ours_over_hub_best_repeats": best_ratio,
        "results": results,
        "failed": failed,
        "parameters": params,
        "device": {"type": device.type, "name": device_name(device), "torch_threads": torch.get_num_threads(),
                   "cpu_count": os.cpu_count()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "torchvision": package_version("torchvision"), "nni": package_version("nni"),
                     "cuda": torch.version.cuda},
        "git": git_state(),
        "settings": {
            "steps": args.steps, "warmup": args.warmup, "batch": args.batch, "repeats": args.repeats,
            "seed": args.seed, "channels": CHANNELS, "layers": LAYERS, "genotype": "DARTS_V2",
            "ours_precision": "bf16 autocast" if uses_bf16(protocol, device) else "fp32",
            "ours_channels_last": protocol.channels_last if protocol.channels_last is not None
            else device.type == "cuda",
            "ours_cuda_graphs": use_cuda_graphs(protocol, device),
            "ours_auxiliary_weight": protocol.auxiliary_weight, "ours_drop_path": protocol.drop_path,
            "ours_cutout": protocol.cutout, "hub_precision": "fp32", "grad_clip": GRAD_CLIP,
            "optimizer": f"SGD lr {LR} momentum {MOMENTUM} weight_decay {WEIGHT_DECAY}",
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
        },
        "load_average": {"before": load_before, "after": load_average()},
        "command": " ".join(["python", *sys.argv] if argv is None else ["main", *argv]),
        "notes": notes,
    }
    hub_text = f"hub {hub_rate:.1f} img/s" if hub_rate else "hub n/a (no nni)"
    ratio_text = f"ours/hub {ratio:.2f}x" if ratio else "ours/hub n/a"
    print(f"train_throughput [{device.type}: {record['device']['name']}, batch {args.batch}]: {hub_text}, "
          f"ours {ours_rate:.1f} img/s, {ratio_text}")
    if args.out is not None:
        write_result(args.out, record)
    return record


if __name__ == "__main__":
    main()
