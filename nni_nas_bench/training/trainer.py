"""The training loop of the final-training protocol.

``train(model, loaders, protocol, ...)`` knows nothing about NNI: it takes a network, a protocol and a
callback, and returns a metrics dict. The trial entry point wraps it with NNI reporting (the
separation airbench and NNI's evaluators both keep), so notebooks and benchmarks call it directly.

Per epoch: set the learning rate (per-epoch cosine, as DARTS) and the DropPath probability (ramped
linearly), train with gradient clipping and the auxiliary loss, evaluate top-1 on the evaluation set,
report, checkpoint. The test accuracy of the *last* epoch is the headline number (SPEC: "last epoch
is the honest default"); the best epoch is reported beside it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from typing import Any, Callable
from typing import Protocol as TypingProtocol

import torch
from torch import nn

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.training.checkpoint import CheckpointStore
from nni_nas_bench.training.cost import count_mflops, count_parameters
from nni_nas_bench.training.cuda_graph import CudaGraphStep
from nni_nas_bench.training.epoch import EpochTotals, Step, run_epoch
from nni_nas_bench.training.progress import EpochProgress
from nni_nas_bench.training.protocol import Protocol

Reporter = Callable[[dict[str, Any]], None]


class Loader(TypingProtocol):
    """What the trainer needs from a data loader (see :mod:`nni_nas_bench.data`)."""

    def __iter__(self) -> Iterable[tuple[torch.Tensor, torch.Tensor]]: ...
    def __len__(self) -> int: ...
    def set_epoch(self, epoch: int) -> None: ...


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``auto``/None → the first CUDA device if there is one, else the CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"device {str(device)!r} is not a torch device: use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device {str(device)!r}: this machine has no usable CUDA GPU; use --device auto or cpu")
        if resolved.index is not None and resolved.index >= count:
            raise ConfigError(f"device {str(device)!r}: this machine has {count} CUDA GPU(s) "
                              f"(cuda:0..cuda:{count - 1})")
    return resolved


def uses_bf16(protocol: Protocol, device: torch.device) -> bool:
    """Whether the step runs under bf16 autocast: ``protocol.precision``, 'auto' = bf16 on CUDA, fp32 on a CPU."""
    return protocol.precision == "bf16" or (protocol.precision == "auto" and device.type == "cuda")


def _autocast(protocol: Protocol, device: torch.device, cache: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast per the protocol. ``cache=False`` inside a CUDA-graph capture: autocast's cache of cast
    weights would otherwise be captured as stale copies (PyTorch's CUDA-graph notes)."""
    if uses_bf16(protocol, device):
        return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=cache)
    return contextlib.nullcontext()


def use_cuda_graphs(protocol: Protocol, device: torch.device) -> bool:
    """Whether the training step is captured as a CUDA graph: ``protocol.cuda_graphs``, None = on CUDA.

    On a CPU the step runs eagerly (the fallback); asking for graphs there explicitly is an error, not a
    silent eager run, since a user who set it expects the GPU path."""
    if protocol.cuda_graphs is None:
        return device.type == "cuda"
    if protocol.cuda_graphs and device.type != "cuda":
        raise ConfigError(f"protocol.cuda_graphs is true but the device is {device}: CUDA graphs need a CUDA "
                          "device; set cuda_graphs to null (auto) or false")
    return protocol.cuda_graphs


@torch.no_grad()
def evaluate(model: nn.Module, loader: Loader, protocol: Protocol, device: torch.device,
             memory_format: torch.memory_format = torch.contiguous_format) -> float:
    """Top-1 accuracy in percent over the whole loader."""
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=device)
    total = 0
    with _autocast(protocol, device):
        for x, y in loader:
            logits = model(x.contiguous(memory_format=memory_format))
            correct += (logits.argmax(1) == y).sum()
            total += y.numel()
    return 100.0 * correct.item() / max(total, 1)


def make_optimizer(model: nn.Module, protocol: Protocol, device: torch.device) -> torch.optim.SGD:
    """SGD with the protocol's momentum, weight decay and Nesterov flag (lr is set every epoch by
    :func:`set_lr`).

    On CUDA it is torch's fused SGD (one kernel for all parameters); with CUDA graphs its learning rate is
    a 0-d device tensor, which the captured step reads on every replay (a Python float would be baked
    into the graph at capture time and the cosine schedule would stop). On the CPU it is the default
    (foreach) SGD, so CPU results are unchanged.
    """
    cuda = device.type == "cuda"
    lr: float | torch.Tensor = protocol.lr
    if use_cuda_graphs(protocol, device):
        lr = torch.tensor(protocol.lr, device=device)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=protocol.momentum,
                           weight_decay=protocol.weight_decay, nesterov=protocol.nesterov, fused=cuda or None)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's learning rate; a tensor learning rate is filled in place, so a captured CUDA graph
    that reads it sees the new value."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """``optimizer.load_state_dict`` that keeps each group's learning-rate *type*: a checkpoint written by
    an eager run (float lr) resumes under CUDA graphs (tensor lr on the device) and the other way round."""
    tensors = [group["lr"] if isinstance(group["lr"], torch.Tensor) else None for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, tensor in zip(optimizer.param_groups, tensors):
        value = float(group["lr"])
        if tensor is not None:
            tensor.fill_(value)
        group["lr"] = tensor if tensor is not None else value


def memory_format_for(protocol: Protocol, device: torch.device) -> torch.memory_format:
    """channels_last on CUDA (faster convolutions with bf16), contiguous on CPU, unless the protocol says."""
    channels_last = protocol.channels_last if protocol.channels_last is not None else device.type == "cuda"
    return torch.channels_last if channels_last else torch.contiguous_format


def train(model: nn.Module, train_loader: Loader, eval_loader: Loader, protocol: Protocol, *,
          image_size: int, device: str | torch.device | None = None, report: Reporter | None = None,
          checkpoint: CheckpointStore | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train ``model`` with ``protocol``; return the final metrics dict.

    ``report`` receives one dict per epoch (``default`` = that epoch's evaluation accuracy). With a
    ``checkpoint`` store, every epoch is saved and a previous run's state is resumed: the epochs it
    completed are re-reported (so a restarted trial still shows the whole curve) and not retrained.
    Raises :class:`TrialFailedError` when the loss stops being finite.
    """
    device = resolve_device(device)
    memory_format = memory_format_for(protocol, device)
    model.to(device=device, memory_format=memory_format)
    # Cost is counted before training so a crash later still leaves a full description.
    params_m = count_parameters(model)
    mflops = count_mflops(model, image_size)
    if hasattr(model, "drop_path_enabled"):
        model.drop_path_enabled = protocol.drop_path > 0
    optimizer = make_optimizer(model, protocol, device)
    criterion = nn.CrossEntropyLoss(label_smoothing=protocol.label_smoothing)
    graphs = use_cuda_graphs(protocol, device)
    history: list[dict[str, Any]] = []
    start_epoch, train_seconds = 0, 0.0

    state = checkpoint.load() if checkpoint is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        load_optimizer_state(optimizer, state["optimizer"])
        torch.set_rng_state(state["rng_cpu"])
        if device.type == "cuda" and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"], device)
        history, train_seconds = state["history"], state["train_seconds"]
        start_epoch = len(history)
        log(f"resuming from checkpoint {checkpoint.path} after epoch {start_epoch}")
        for row in history:
            if report is not None:
                report(row)

    # Made once, after a resumed state is loaded: a CUDA graph captures the optimiser's buffers as they are.
    step = make_train_step(model, optimizer, criterion, protocol, device, memory_format)
    for epoch in range(start_epoch, protocol.epochs):
        lr = protocol.lr_at(epoch)
        set_lr(optimizer, lr)
        if hasattr(model, "drop_path_prob"):
            model.drop_path_prob.fill_(protocol.drop_path * epoch / protocol.epochs)
        train_loader.set_epoch(epoch)
        tic = time.perf_counter()
        progress = EpochProgress(epoch, protocol.epochs, len(train_loader), log)
        totals = train_epoch(model, train_loader, step, device, progress=progress.step)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        epoch_seconds = time.perf_counter() - tic
        train_seconds += epoch_seconds
        totals.finite_or_fail("training loss", f"in epoch {epoch} (lr {lr:.4g})",
                              "lower protocol.lr, enable protocol.grad_clip, or check the input data")
        train_loss = totals.loss
        acc = evaluate(model, eval_loader, protocol, device, memory_format)
        row = {"default": acc, "epoch": epoch + 1, "train_loss": train_loss,
               "train_acc": totals.accuracy, "lr": lr, "epoch_seconds": epoch_seconds}
        history.append(row)
        log(f"epoch {epoch + 1}/{protocol.epochs} lr {lr:.4g} train_loss {train_loss:.4f} "
            f"train_acc {row['train_acc']:.2f} eval_acc {acc:.2f} ({epoch_seconds:.1f}s)")
        if report is not None:
            report(row)
        if checkpoint is not None:
            checkpoint.save({
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "history": history,
                "train_seconds": train_seconds, "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            })

    best = max(history, key=lambda r: r["default"])
    return {
        "default": history[-1]["default"],
        "best_acc": best["default"],
        "best_epoch": best["epoch"],
        "epochs": len(history),
        "params": params_m,
        "flops": mflops,
        "train_seconds": train_seconds,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cuda_graphs": graphs,
    }


def make_train_step(model: nn.Module, optimizer: torch.optim.Optimizer, criterion: nn.Module, protocol: Protocol,
                    device: torch.device, memory_format: torch.memory_format) -> Step:
    """The final training's step ``(x, y) -> (logits, loss)``: mixed precision per the protocol, the
    auxiliary head's loss, gradient clipping, the SGD update; captured as one CUDA graph where
    :func:`use_cuda_graphs` says so (:class:`~nni_nas_bench.training.cuda_graph.CudaGraphStep`).

    Make it once per training (not per epoch): the graph is captured on its first steps and replayed after.
    """
    graphs = use_cuda_graphs(protocol, device)

    def step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.contiguous(memory_format=memory_format)
        with _autocast(protocol, device, cache=not graphs):
            out = model(x)
            logits, aux = out if isinstance(out, tuple) else (out, None)
            loss = criterion(logits, y)
            if aux is not None and protocol.auxiliary_weight > 0:
                loss = loss + protocol.auxiliary_weight * criterion(aux, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if protocol.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), protocol.grad_clip)
        optimizer.step()
        # Detached: the autograd graph is freed now, not when the next step replaces these references.
        return logits.detach(), loss.detach()

    return CudaGraphStep(step) if graphs else step


def train_epoch(model: nn.Module, loader: Loader, step: Step, device: torch.device,
                progress: Callable[[int], None] | None = None) -> EpochTotals:
    """One pass over the training loader with ``step`` (:func:`make_train_step`), via
    :func:`~nni_nas_bench.training.epoch.run_epoch`.

    The benchmarks time this same function, so measured speed is the speed trials get. ``progress`` is
    told each step's image count (the trial's in-epoch progress lines,
    :mod:`nni_nas_bench.training.progress`).
    """
    model.train()
    after = None if progress is None else (lambda y: progress(y.numel()))
    return run_epoch(loader, step, device, after)
