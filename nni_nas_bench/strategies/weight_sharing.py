"""What ENAS, NAO and MANAS share: shared weights trained on sampled architectures, and their evaluation.

Each of these methods proposes discrete architectures of a cell space and scores them with weights
shared by all architectures (a :class:`~search_spaces.path_supernet.PathSupernet`): a training step runs
one sampled architecture on a batch of the training half of the search split; a reward or score is an
architecture's accuracy on the validation half. Only how architectures are proposed differs (an LSTM
controller, an encoder–predictor–decoder, one bandit agent per decision), so that is all a subclass
writes (:meth:`WeightSharingStrategy._search`); the data, the shared-weight optimizer, the result
file, NNI's entry point and the result type (:class:`~nni_nas_bench.strategies.darts.SearchResult`, as
for DARTS) are here once.

BN statistics: the supernet's running statistics mix all architectures, so they describe none of
them. A reward or score on one validation batch therefore uses that batch's statistics (BN in training
mode, no gradient; the batches are shuffled, as ENAS scores its samples); an accuracy over the whole
validation half first recalibrates the running statistics for that architecture on
``bn_calibration_batches`` shuffled validation batches, then evaluates in eval mode (the validation
loader keeps the dataset order, often sorted by class, where batch statistics would be meaningless).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies.checks import check_int, check_number
from nni_nas_bench.strategies.darts import _valid_train_loader
from nni_nas_bench.strategies.one_shot import OneShotStrategy, SearchResult
from nni_nas_bench.training.epoch import run_epoch
from search_spaces.genotype import Genotype

Batch = tuple[torch.Tensor, torch.Tensor]


def endless(loader: Any) -> Iterator[Batch]:
    """Batches of ``loader`` pass after pass, each pass in its own seeded order."""
    passes = 0
    while True:
        loader.set_epoch(passes)
        yield from loader
        passes += 1


@torch.no_grad()
def recalibrate_bn(net: nn.Module, forward: Callable[[torch.Tensor], Any], batches: Iterator[Batch],
                   count: int) -> None:
    """Re-estimate every BN's running statistics for one architecture of shared weights (see the module docstring).

    The statistics are reset, then set to the plain average over ``count`` batches of ``batches`` run
    through ``forward`` in training mode (no gradient); each BN's momentum is restored afterwards. The
    caller switches to eval mode for the accuracy that follows.
    """
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    net.train()
    for _ in range(count):
        forward(next(batches)[0])
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


class ShuffledPlainBatches:
    """Batches of a 32-px split's validation half in a seeded order per pass, without augmentation."""

    def __init__(self, loader: Any, seed: int):
        self.loader, self.seed, self.epoch = loader, seed, 0  # loader: an eval-mode GpuBatchLoader

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[Batch]:
        from nni_nas_bench.data._seeding import make_generator

        n, size = self.loader.num_samples, self.loader.batch_size
        order = torch.randperm(n, generator=make_generator("plain", self.seed, self.epoch)).to(self.loader.device)
        for start in range(0, max(n - size, 0) + 1, size):  # whole batches only, as a training loader
            index = order[start: start + size]
            yield self.loader._normalise(self.loader.images[index]), self.loader.labels[index]


def plain_valid_loader(split: Any, *, batch_size: int, device: torch.device, seed: int) -> Any:
    """A shuffled loader over the validation half with the evaluation pipeline (no augmentation)."""
    from nni_nas_bench.data import DeviceDataLoader, FolderSplit, GpuBatchLoader, TensorSplit, eval_transform

    if isinstance(split, TensorSplit):
        return ShuffledPlainBatches(GpuBatchLoader(split.eval_x, split.eval_y, batch_size=batch_size, device=device,
                                                   mean=split.info.mean, std=split.info.std, train=False), seed)
    if isinstance(split, FolderSplit):
        return DeviceDataLoader(split.eval.with_transform(eval_transform(split.info)), batch_size=batch_size,
                                device=device, train=True, seed=seed)
    raise ConfigError(f"plain validation batches need a TensorSplit or FolderSplit, got {type(split).__name__}")


@dataclass
class SearchContext:
    """One search's data, supernet, weight optimizer and bookkeeping (built by :meth:`WeightSharingStrategy.search`)."""

    space: Any
    net: Any
    device: torch.device
    train_loader: Any
    eval_loader: Any
    valid_stream: Iterator[Batch]
    optimizer: torch.optim.SGD
    log: Callable[[str], None]
    report_epoch: Callable[[dict[str, Any]], None] | None
    output_dir: str | Path | None
    history: list[dict[str, Any]]
    # Shuffled validation batches WITHOUT augmentation, when the strategy asks (plain_valid_batches):
    # ENAS rewards its samples on those (melodyguan/enas micro_child.py build_valid_rl(shuffle=False)).
    plain_stream: Iterator[Batch] | None = None


class WeightSharingStrategy(OneShotStrategy):
    """Base of the sampling weight-sharing strategies; subclasses implement :meth:`_search`.

    Common settings (the shared weights w): ``epochs``, ``batch_size``, ``layers``, ``channels``;
    SGD ``w_lr`` annealed by cosine to ``w_lr_min`` (with warm restarts every ``w_restart_period``
    epochs, period × ``w_restart_mult`` after each, when ``w_restart_period`` is set), ``w_momentum``,
    ``w_nesterov``, ``w_weight_decay``, ``grad_clip``; data: ``cutout``, ``subset``, ``eval_batch_size``;
    ``bn_calibration_batches`` (see the module docstring); and ``seed``, which decides everything random
    (split, init, data order, sampled architectures).
    """

    setting_names: ClassVar[tuple[str, ...]] = (
        "epochs", "batch_size", "layers", "channels", "w_lr", "w_lr_min", "w_momentum", "w_nesterov", "w_weight_decay",
        "w_restart_period", "w_restart_mult", "grad_clip", "cutout", "subset", "eval_batch_size",
        "bn_calibration_batches", "seed")
    repr_names: ClassVar[tuple[str, ...]] = ("epochs", "layers", "channels", "seed")

    name = "weight_sharing"
    plain_valid_batches = False  # True: search() also builds ctx.plain_stream (see SearchContext)
    plain_batch_size: int | None = None  # its batch size; None = batch_size

    def __init__(self, *, epochs: int, batch_size: int, layers: int, channels: int, w_lr: float, w_lr_min: float,
                 w_momentum: float = 0.9, w_nesterov: bool = False, w_weight_decay: float = 3e-4,
                 w_restart_period: int | None = None, w_restart_mult: int = 2, grad_clip: float = 5.0,
                 cutout: int = 0, subset: int | None = None, eval_batch_size: int = 256,
                 bn_calibration_batches: int = 10, seed: int = 0,
                 dataset: str | None = None, data_root: str | Path | None = None, device: str = "auto",
                 output_dir: str | Path | None = None):
        super().__init__()
        m = self.name
        self.epochs = check_int(m, "epochs", epochs)
        self.batch_size = check_int(m, "batch_size", batch_size)
        self.layers = check_int(m, "layers", layers, 3)
        self.channels = check_int(m, "channels", channels)
        self.w_lr, self.w_lr_min = check_number(m, "w_lr", w_lr), check_number(m, "w_lr_min", w_lr_min)
        self.w_momentum = check_number(m, "w_momentum", w_momentum)
        if not isinstance(w_nesterov, bool):
            raise ConfigError(f"{m}.w_nesterov must be true or false, got {w_nesterov!r}")
        self.w_nesterov = w_nesterov
        self.w_weight_decay = check_number(m, "w_weight_decay", w_weight_decay)
        self.w_restart_period = None if w_restart_period is None else check_int(m, "w_restart_period",
                                                                                 w_restart_period)
        self.w_restart_mult = check_int(m, "w_restart_mult", w_restart_mult)
        self.grad_clip = check_number(m, "grad_clip", grad_clip)
        self.eval_batch_size = check_int(m, "eval_batch_size", eval_batch_size)
        self.bn_calibration_batches = check_int(m, "bn_calibration_batches", bn_calibration_batches)
        self._set_common(cutout=cutout, subset=subset, seed=seed, dataset=dataset, data_root=data_root, device=device,
                         output_dir=output_dir)

    # ------------------------------------------------------------------------------- description
    def lr_at(self, epoch: int) -> float:
        """Cosine annealing per epoch, with SGDR warm restarts when ``w_restart_period`` is set (ENAS)."""
        if self.w_restart_period is None:
            t, period = epoch, self.epochs
        else:
            t, period = epoch, self.w_restart_period
            while t >= period:
                t -= period
                period *= self.w_restart_mult
        return self.w_lr_min + 0.5 * (self.w_lr - self.w_lr_min) * (1 + math.cos(math.pi * t / period))

    # ------------------------------------------------------------------------------ the search
    def search(self, space: Any, *, data_root: str | Path | None = None, dataset: str | None = None,
               device: str | torch.device | None = None, output_dir: str | Path | None = None,
               log: Callable[[str], None] = print,
               report_epoch: Callable[[dict[str, Any]], None] | None = None) -> SearchResult:
        """Run the search on ``space`` with the search split of ``dataset``; return the result.

        ``report_epoch`` gets one dict per epoch (``default`` = the epoch's validation accuracy of the
        method's current choice). The caller's global torch RNG is left as it was.
        """
        from nni_nas_bench.data import load_split, make_loaders
        from nni_nas_bench.data._seeding import derive_seed
        from search_spaces.path_supernet import PathSupernet

        self.check_space(space)
        inputs = self.search_inputs(data_root, dataset, device, output_dir)
        info, device_, output_dir = inputs.info, inputs.device, inputs.output_dir
        tic = time.perf_counter()
        split = load_split(info.name, inputs.data_root, "search", seed=self.seed, subset=self.subset)
        train_loader, eval_loader = make_loaders(split, batch_size=self.batch_size, device=device_,
                                                 cutout=self.cutout, seed=derive_seed(self.name, "w", self.seed),
                                                 eval_batch_size=self.eval_batch_size)
        valid_loader = _valid_train_loader(split, batch_size=self.batch_size, device=device_, cutout=0,
                                           seed=derive_seed(self.name, "valid", self.seed))
        log(f"{self.name}: {self.epochs} epochs, {self.layers} cells, {self.channels} ch, seed {self.seed}, "
            f"{info.name} on {device_}, {space}")
        fork_devices = [device_] if device_.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(derive_seed(self.name, "init", self.seed))
            net = PathSupernet(space, C=self.channels, num_classes=info.num_classes, layers=self.layers,
                               stem="cifar" if info.image_size == 32 else "imagenet").to(device_)
            optimizer = torch.optim.SGD(net.parameters(), lr=self.w_lr, momentum=self.w_momentum,
                                        nesterov=self.w_nesterov and self.w_momentum > 0,
                                        weight_decay=self.w_weight_decay)
            ctx = SearchContext(space, net, device_, train_loader, eval_loader, endless(valid_loader), optimizer,
                                log, report_epoch, output_dir, [])
            if self.plain_valid_batches:
                plain = plain_valid_loader(split, batch_size=self.plain_batch_size or self.batch_size, device=device_,
                                           seed=derive_seed(self.name, "plain", self.seed))
                ctx.plain_stream = endless(plain)
            genotype, valid_acc = self._search(ctx)
        space.validate(genotype)
        self._result = SearchResult(genotype, valid_acc, time.perf_counter() - tic, ctx.history)
        self._save(ctx, final=genotype)
        log(f"{self.name}: {genotype} (valid acc {valid_acc:.2f}, {self._result.search_seconds:.0f}s)")
        return self._result

    def check_space(self, space: Any) -> None:
        """Raise :class:`ConfigError` unless the path supernet builds ``space`` (two-cell spaces and NB201)."""
        from search_spaces.cell_space import CellSpaceBase
        from search_spaces.nb201 import NB201Space

        if not isinstance(space, (CellSpaceBase, NB201Space)):
            raise ConfigError(f"{self.name} searches a two-cell space (space: darts, enas, nao or nsganet) or "
                              f"nb201, got {space!r}")

    def _search(self, ctx: SearchContext) -> tuple[Genotype, float]:
        """The method: return the final genotype and its validation accuracy (append epochs to ``ctx.history``)."""
        raise NotImplementedError

    # ----------------------------------------------------------------------- shared-weight helpers
    def train_epoch(self, ctx: SearchContext, epoch: int, propose: Callable[[], Genotype],
                    after_step: Callable[[Genotype], None] | None = None) -> dict[str, float]:
        """One pass over the training half: per batch, one proposed architecture and one SGD step on w.

        ``after_step(genotype)`` runs after each step (MANAS rewards its agents there).
        """
        lr = self.lr_at(epoch)
        for group in ctx.optimizer.param_groups:
            group["lr"] = lr
        ctx.train_loader.set_epoch(epoch)
        ctx.net.train()
        step = partial(self._batch_step, ctx, propose, after_step, nn.CrossEntropyLoss())
        totals = run_epoch(ctx.train_loader, step, ctx.device).finite_or_fail(
            f"{self.name} search loss", f"in epoch {epoch + 1}", "lower w_lr or check the input data")
        return {"lr": lr, "train_loss": totals.loss, "train_acc": totals.accuracy}

    def _batch_step(self, ctx: SearchContext, propose: Callable[[], Genotype],
                    after_step: Callable[[Genotype], None] | None, criterion: nn.Module, x: torch.Tensor,
                    y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch of :meth:`train_epoch`: propose an architecture, one SGD step on its shared weights."""
        genotype = propose()
        logits = ctx.net(x, genotype)
        loss = criterion(logits, y)
        ctx.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip > 0:
            nn.utils.clip_grad_norm_(ctx.net.parameters(), self.grad_clip)
        ctx.optimizer.step()
        if after_step is not None:
            after_step(genotype)
        return logits, loss

    @torch.no_grad()
    def batch_accuracy(self, ctx: SearchContext, genotype: Genotype, batch: Batch | None = None) -> float:
        """Accuracy (%) of ``genotype`` on shared weights, on ``batch`` or the next validation batch."""
        x, y = batch if batch is not None else next(ctx.valid_stream)
        ctx.net.train()  # batch statistics: see the module docstring
        return 100.0 * (ctx.net(x, genotype).argmax(1) == y).float().mean().item()

    @torch.no_grad()
    def valid_accuracy(self, ctx: SearchContext, genotype: Genotype) -> float:
        """Accuracy (%) of ``genotype`` on shared weights over the whole validation half (BN recalibrated)."""
        recalibrate_bn(ctx.net, lambda x: ctx.net(x, genotype), ctx.valid_stream, self.bn_calibration_batches)
        ctx.net.eval()
        correct, total = 0, 0
        for x, y in ctx.eval_loader:
            correct += int((ctx.net(x, genotype).argmax(1) == y).sum())
            total += y.numel()
        ctx.net.train()
        return 100.0 * correct / max(total, 1)

    def end_epoch(self, ctx: SearchContext, row: dict[str, Any]) -> None:
        """Record an epoch (``epoch``, ``valid_acc``, ``genotype`` text, ...): history, log, JSON, NNI report."""
        ctx.history.append(row)
        ctx.log(f"{self.name} epoch {row['epoch']}/{self.epochs} " + " ".join(
            f"{k} {v:.4g}" for k, v in row.items() if isinstance(v, float)) + f"\n  {row['genotype']}")
        self._save(ctx)
        if ctx.report_epoch is not None:
            ctx.report_epoch({"default": row["valid_acc"], **{k: v for k, v in row.items()
                                                             if isinstance(v, (int, float)) and k != "valid_acc"}})

    def _save(self, ctx: SearchContext, final: Genotype | None = None) -> None:
        """Write ``<method>_search.json`` (a killed search still leaves its history)."""
        self.write_trace(None if ctx.output_dir is None else Path(ctx.output_dir), f"{self.name}_search.json",
                         {"space": repr(ctx.space), "final_genotype": None if final is None else final.to_text(),
                          "epochs": ctx.history})
