"""Single-Path NAS (Stamoulis et al. 2019): one superkernel per layer, thresholds on weight norms, latency loss.

The search network is the space's own chain (:class:`search_spaces.mobilenet.MobileNetChain`) with a
superkernel layer in every slot: a 1×1 expansion to 6× the input width, ONE 5×5 depthwise kernel, a 1×1
projection. Each candidate is a subset of that kernel, chosen by comparing the norm of a part of the
weights with a learned threshold through the indicator 1[‖w‖ − t ≥ 0]:

- kernel: d5 = 1[‖w_ring‖ − t_k] where w_ring is the outer ring of the 5×5 (the inner 3×3 is always
  used): w_k = w_3×3 + d5 · w_ring;
- expansion: d6 = 1[‖w_k,upper‖ − t_e] on the upper half of the expanded channels (the lower half is
  expansion 3): kernel = w_k,lower + d6 · w_k,upper;
- skip (only layers that keep their shape): keep = 1[‖w_k,lower‖ − t_s]; the whole kernel and the
  residual branch are multiplied by it, so keep = 0 leaves the identity.

The indicator is a hard step in the forward pass and has the sigmoid's gradient in the backward pass
(``step + σ − stop_gradient(σ)``), as in the paper. Thresholds start at 0, so the search starts from the
largest network (k5e6 everywhere, nothing skipped). Loss = CE + λ · log(latency), where latency is the
per-layer table (:mod:`nni_nas_bench.latency`, the space's ``latency_table``) written as a multilinear
function of the indicators (:meth:`~nni_nas_bench.latency.LatencyTable.expected_ms`): it equals the
table's prediction of the current architecture and carries gradients to every threshold. (The reference
code approximated the kernel term with a ratio of two entries; the multilinear form is exact at every
architecture.)

Two deliberate differences from the reference code, both so that a dropped part is really absent, as
in the child network: the dropped upper channels are also zeroed after the depthwise BN and ReLU (a
zero kernel alone still lets the BN shift through), and a skipped layer multiplies the whole residual
branch (not only the kernel) by ``keep``.

Weights and thresholds are trained together on the training half of the search split (the paper's
one-level optimisation): weights by SGD (cosine per epoch, momentum 0.9, weight decay, clipping),
thresholds by Adam, which moves them at a rate independent of the loss scale (the reference trained
them with the weights' RMSProp, which is scale-free too). After every epoch the supernet is evaluated
on the other half, and the epoch's thresholds, weight norms, architecture and predicted latency are
logged and written to ``<output_dir>/single_path_search.json``. Defaults: 8 epochs (SPEC), λ = 0.02.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from nni_nas_bench.errors import ConfigError, TrialFailedError
from nni_nas_bench.latency import SKIP, LatencyTable
from nni_nas_bench.strategies import register_strategy
from nni_nas_bench.strategies.checks import check_int, check_number
from nni_nas_bench.strategies.darts import cosine_lr
from nni_nas_bench.strategies.one_shot import OneShotStrategy, SearchResult
from search_spaces.cells import drop_path
from search_spaces.mobilenet import LayerSpec, MobileArch, MobileNetChain, conv_bn, width_multiplier

RESULT_FILE = "single_path_search.json"


def indicator(x: torch.Tensor) -> torch.Tensor:
    """1[x ≥ 0] in the forward pass, the gradient of sigmoid(x) in the backward pass."""
    soft = torch.sigmoid(x)
    return (x >= 0).to(x.dtype) + soft - soft.detach()


class SuperKernelMBConv(nn.Module):
    """An MBConv layer holding every choice of its slot in one 5×5 depthwise kernel (see the module docstring)."""

    def __init__(self, spec: LayerSpec, c_in: int, c_out: int, stride: int):
        super().__init__()
        mid, half = 6 * c_in, 3 * c_in
        self.stride, self.skippable = stride, spec.skippable
        self.residual = stride == 1 and c_in == c_out
        self.expand = conv_bn(c_in, mid, 1)
        self.depthwise = nn.Parameter(torch.empty(mid, 1, 5, 5))
        nn.init.kaiming_normal_(self.depthwise, mode="fan_out", nonlinearity="relu")
        self.dw_bn = nn.BatchNorm2d(mid)
        self.project = conv_bn(mid, c_out, 1, relu=False)
        ring = torch.ones(1, 1, 5, 5)
        ring[..., 1:4, 1:4] = 0
        upper = torch.zeros(1, mid, 1, 1)
        upper[:, half:] = 1
        self.register_buffer("ring", ring, persistent=False)
        self.register_buffer("upper", upper, persistent=False)
        self.t_kernel = nn.Parameter(torch.zeros(()))
        self.t_expand = nn.Parameter(torch.zeros(()))
        self.t_skip = nn.Parameter(torch.zeros(())) if spec.skippable else None

    def thresholds(self) -> list[nn.Parameter]:
        return [t for t in (self.t_kernel, self.t_expand, self.t_skip) if t is not None]

    def decide(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, float]]:
        """Indicators (kernel 5, expansion 6, keep), the selected kernel, and the norms compared."""
        w = self.depthwise
        ring = w * self.ring
        ring_norm = ring.norm()
        d5 = indicator(ring_norm - self.t_kernel)
        w_k = (w - ring) + d5 * ring
        upper = w_k * self.upper.view(-1, 1, 1, 1)
        lower = w_k - upper
        upper_norm, lower_norm = upper.norm(), lower.norm()
        d6 = indicator(upper_norm - self.t_expand)
        keep = indicator(lower_norm - self.t_skip) if self.t_skip is not None else torch.ones_like(d6)
        kernel = keep * (lower + d6 * upper)
        norms = {"ring": ring_norm.item(), "upper": upper_norm.item(), "lower": lower_norm.item()}
        return d5, d6, keep, kernel, norms

    def forward(self, x: torch.Tensor, drop_prob: torch.Tensor | None = None) -> torch.Tensor:
        _, d6, keep, kernel, _ = self.decide()
        h = self.expand(x)
        h = F.conv2d(h, kernel, stride=self.stride, padding=2, groups=h.shape[1])
        h = F.relu(self.dw_bn(h)) * (1 - self.upper + d6 * self.upper)
        out = self.project(h)
        if not self.residual:
            return out
        out = keep * out
        return x + (drop_path(out, drop_prob) if drop_prob is not None else out)


class SinglePathSupernet(MobileNetChain):
    """The space's chain with a superkernel in every layer slot."""

    def __init__(self, width_mult: float, num_classes: int, stem: str):
        super().__init__(SuperKernelMBConv, width_mult, num_classes, stem)
        self.drop_path_enabled = False

    def thresholds(self) -> list[nn.Parameter]:
        return [t for layer in self.layers for t in layer.thresholds()]

    def weights(self) -> list[nn.Parameter]:
        ids = {id(t) for t in self.thresholds()}
        return [p for p in self.parameters() if id(p) not in ids]

    def indicators(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-layer (kernel 5, expansion 6, keep) indicators, each a tensor of length 22."""
        decided = [layer.decide()[:3] for layer in self.layers]
        return tuple(torch.stack(column) for column in zip(*decided))  # type: ignore[return-value]

    def latency(self, table: LatencyTable) -> torch.Tensor:
        """Predicted latency (ms) of the current architecture, differentiable in the thresholds and norms."""
        return table.expected_ms(*self.indicators())

    def architecture(self) -> MobileArch:
        """The architecture the hard indicators select now."""
        ops = []
        with torch.no_grad():
            for layer in self.layers:
                d5, d6, keep, _, _ = layer.decide()
                kernel, expansion = (5 if d5.item() > 0.5 else 3), (6 if d6.item() > 0.5 else 3)
                ops.append(SKIP if keep.item() < 0.5 else f"k{kernel}e{expansion}")
        return MobileArch(tuple(ops))

    def state(self) -> list[dict[str, Any]]:
        """Thresholds and the norms they are compared with, per layer (the search's trace)."""
        rows = []
        with torch.no_grad():
            for i, layer in enumerate(self.layers):
                norms = layer.decide()[4]
                row = {"layer": i, "t_kernel": layer.t_kernel.item(), "t_expand": layer.t_expand.item(),
                       "norm_ring": norms["ring"], "norm_upper": norms["upper"]}
                if layer.t_skip is not None:
                    row.update(t_skip=layer.t_skip.item(), norm_lower=norms["lower"])
                rows.append(row)
        return rows


@register_strategy("single_path")
class SinglePathStrategy(OneShotStrategy):
    """Single-Path NAS as an NNI strategy that also runs in-process (same interface as DARTS)::

        result = SinglePathStrategy(runtime_lambda=0.02, seed=0).search(space, data_root=..., dataset="sport8")
        result.genotype            # a MobileArch; space.latency_ms(result.genotype) its predicted latency

    ``channels`` is the supernet's stem width (width multiplier channels/32). The result's
    ``alpha_history`` (the name is DARTS's result type's) holds one row per epoch with ``thresholds``
    (per layer: thresholds and the norms compared with them), ``genotype`` and ``latency_ms``.
    """

    name = "single_path"

    def __init__(self, *, epochs: int = 8, batch_size: int = 64, channels: int = 32, runtime_lambda: float = 0.02,
                 w_lr: float = 0.05, w_lr_min: float = 0.0, w_momentum: float = 0.9, w_weight_decay: float = 4e-5,
                 grad_clip: float = 5.0, threshold_lr: float = 0.01, cutout: int = 0, subset: int | None = None,
                 eval_batch_size: int = 256, seed: int = 0, dataset: str | None = None,
                 data_root: str | Path | None = None, device: str = "auto", output_dir: str | Path | None = None):
        super().__init__()
        self.epochs = check_int("single_path", "epochs", epochs)
        self.batch_size = check_int("single_path", "batch_size", batch_size)
        self.channels = check_int("single_path", "channels", channels)
        self.eval_batch_size = check_int("single_path", "eval_batch_size", eval_batch_size)
        self.runtime_lambda = check_number("single_path", "runtime_lambda", runtime_lambda)
        self.w_lr = check_number("single_path", "w_lr", w_lr)
        self.w_lr_min = check_number("single_path", "w_lr_min", w_lr_min)
        self.w_momentum = check_number("single_path", "w_momentum", w_momentum)
        self.w_weight_decay = check_number("single_path", "w_weight_decay", w_weight_decay)
        self.grad_clip = check_number("single_path", "grad_clip", grad_clip)
        self.threshold_lr = check_number("single_path", "threshold_lr", threshold_lr)
        self._set_common(cutout=cutout, subset=subset, seed=seed, dataset=dataset, data_root=data_root, device=device,
                         output_dir=output_dir)

    @property
    def settings(self) -> dict[str, Any]:
        """The search protocol (everything that changes the result, seed included), JSON-ready."""
        return {
            "epochs": self.epochs, "batch_size": self.batch_size, "channels": self.channels,
            "runtime_lambda": self.runtime_lambda, "w_lr": self.w_lr, "w_lr_min": self.w_lr_min,
            "w_momentum": self.w_momentum, "w_weight_decay": self.w_weight_decay, "grad_clip": self.grad_clip,
            "threshold_lr": self.threshold_lr, "cutout": self.cutout, "subset": self.subset,
            "eval_batch_size": self.eval_batch_size, "seed": self.seed,
        }

    def extra_repr(self) -> str:
        return f"epochs={self.epochs}, runtime_lambda={self.runtime_lambda}, channels={self.channels}, seed={self.seed}"

    def check_space(self, space: Any) -> None:
        """Raise :class:`ConfigError` unless ``space`` is the mobilenet space (BenchmarkTuner calls this at start)."""
        from search_spaces.mobilenet import MobileNetSpace

        if not isinstance(space, MobileNetSpace):
            raise ConfigError(f"single_path searches the mobilenet space (space: mobilenet_sp; under NNI's API "
                              f"CellModelSpace('mobilenet_sp')), got {space!r}")

    # ------------------------------------------------------------------------------------ search
    def search(self, space: Any, *, data_root: str | Path | None = None, dataset: str | None = None,
               device: str | torch.device | None = None, output_dir: str | Path | None = None,
               log: Callable[[str], None] = print,
               report_epoch: Callable[[dict[str, Any]], None] | None = None) -> SearchResult:
        """Run the search on ``space`` with the search split of ``dataset``; return the result.

        ``report_epoch`` gets one dict per epoch (``default`` = the supernet's validation accuracy, and
        ``latency_ms`` of the architecture the thresholds select). The caller's torch RNG is untouched.
        """
        from nni_nas_bench.data import load_split, make_loaders
        from nni_nas_bench.data._seeding import derive_seed

        self.check_space(space)
        inputs = self.search_inputs(data_root, dataset, device, output_dir)
        info, device_, output_dir = inputs.info, inputs.device, inputs.output_dir
        table = space.latency  # fails now, not after an epoch, when the table is missing
        tic = time.perf_counter()
        split = load_split(info.name, inputs.data_root, "search", seed=self.seed, subset=self.subset)
        train_loader, eval_loader = make_loaders(split, batch_size=self.batch_size, device=device_,
                                                 cutout=self.cutout, seed=derive_seed("single_path", "w", self.seed),
                                                 eval_batch_size=self.eval_batch_size)
        log(f"single_path: {self.epochs} epochs, lambda {self.runtime_lambda}, width {self.channels}/32, "
            f"seed {self.seed}, {info.name} on {device_}, latency table {table.source}")
        fork_devices = [device_] if device_.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(derive_seed("single_path", "init", self.seed))
            net = SinglePathSupernet(width_multiplier(self.channels), info.num_classes,
                                     "cifar" if info.image_size == 32 else "imagenet").to(device_)
            history = self._train(net, table, train_loader, eval_loader, device_, output_dir, space, log, report_epoch)
        last = history[-1]
        self._result = SearchResult(space.parse(last["genotype"]), last["valid_acc"], time.perf_counter() - tic,
                                    history)
        self._save(output_dir, space, history)
        log(f"single_path: {self._result.genotype} ({last['latency_ms']:.2f} ms predicted, valid acc "
            f"{last['valid_acc']:.2f}, {self._result.search_seconds:.0f}s)")
        return self._result

    def _train(self, net: SinglePathSupernet, table: LatencyTable, train_loader: Any, eval_loader: Any,
               device: torch.device, output_dir: str | Path | None, space: Any, log: Callable[[str], None],
               report_epoch: Callable[[dict[str, Any]], None] | None) -> list[dict[str, Any]]:
        """All epochs: one joint step of weights and thresholds per batch, then evaluation and the trace."""
        from nni_nas_bench.training.protocol import Protocol
        from nni_nas_bench.training.trainer import evaluate

        weights = net.weights()
        w_opt = torch.optim.SGD(weights, lr=self.w_lr, momentum=self.w_momentum, weight_decay=self.w_weight_decay)
        t_opt = torch.optim.Adam(net.thresholds(), lr=self.threshold_lr)
        criterion = nn.CrossEntropyLoss()
        eval_protocol = Protocol(precision="fp32", channels_last=False)
        history: list[dict[str, Any]] = []
        for epoch in range(self.epochs):
            lr = cosine_lr(epoch, self.epochs, self.w_lr, self.w_lr_min)
            for group in w_opt.param_groups:
                group["lr"] = lr
            train_loader.set_epoch(epoch)
            start = time.perf_counter()
            net.train()
            ce_sum = torch.zeros((), device=device)
            correct = torch.zeros((), dtype=torch.long, device=device)
            seen = 0
            for x, y in train_loader:
                logits = net(x)
                ce = criterion(logits, y)
                loss = ce + self.runtime_lambda * torch.log(net.latency(table))
                w_opt.zero_grad(set_to_none=True)
                t_opt.zero_grad(set_to_none=True)
                loss.backward()
                if self.grad_clip > 0:
                    nn.utils.clip_grad_norm_(weights, self.grad_clip)
                w_opt.step()
                t_opt.step()
                ce_sum += ce.detach() * y.numel()
                correct += (logits.detach().argmax(1) == y).sum()
                seen += y.numel()
            train_ce = ce_sum.item() / max(seen, 1)
            if not math.isfinite(train_ce):
                raise TrialFailedError(f"Single-Path NAS loss became {train_ce} in epoch {epoch + 1}: it diverged; "
                                       "lower w_lr or check the input data")
            valid_acc = evaluate(net, eval_loader, eval_protocol, device)
            arch = space.validate(net.architecture())
            latency = table.latency_ms(arch.ops)
            seconds = time.perf_counter() - start
            row = {"epoch": epoch + 1, "valid_acc": valid_acc, "train_acc": 100.0 * correct.item() / max(seen, 1),
                   "train_loss": train_ce, "lr": lr, "epoch_seconds": seconds, "genotype": arch.to_text(),
                   "latency_ms": latency, "thresholds": net.state()}
            history.append(row)
            kept = [op for op in arch.ops if op != SKIP]
            log(f"single_path epoch {epoch + 1}/{self.epochs} lr {lr:.4g} train_ce {train_ce:.4f} "
                f"train_acc {row['train_acc']:.2f} valid_acc {valid_acc:.2f} latency {latency:.2f} ms "
                f"({seconds:.1f}s)\n  {arch}\n  thresholds: kernel mean "
                f"{_mean(r['t_kernel'] for r in row['thresholds']):+.4f}, expand mean "
                f"{_mean(r['t_expand'] for r in row['thresholds']):+.4f}, skip mean "
                f"{_mean(r['t_skip'] for r in row['thresholds'] if 't_skip' in r):+.4f}; "
                f"{len(arch.ops) - len(kept)} skipped, {sum(op.startswith('k5') for op in kept)} k5, "
                f"{sum(op.endswith('e6') for op in kept)} e6")
            self._save(output_dir, space, history)
            if report_epoch is not None:
                report_epoch({"default": valid_acc, "epoch": epoch + 1, "train_loss": train_ce,
                              "train_acc": row["train_acc"], "lr": lr, "epoch_seconds": seconds,
                              "latency_ms": latency})
        return history

    def _save(self, output_dir: Path | None, space: Any, history: list[dict[str, Any]]) -> None:
        """Write the per-epoch trace (thresholds, norms, architecture, latency) to ``single_path_search.json``."""
        self.write_trace(output_dir, RESULT_FILE, {"space": repr(space), "epochs": history})


def _mean(values: Any) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")
