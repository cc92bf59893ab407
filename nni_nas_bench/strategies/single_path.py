"""Single-Path NAS (Stamoulis et al. 2019): one superkernel per layer, thresholds on weight norms, latency loss.

Reference: dstamoulis/single-path-nas (commit 21c1f3e9), ``nas-search/`` (search_main.py, nas_utils.py,
superkernel.py, singlepath_supernet.py, supernet_macro.py). antoyang/NAS-Benchmark has no Single-Path
folder, so the authors' release is the reference; ``docs/fidelity.md`` lists every setting.

The search network is the space's own chain (:class:`search_spaces.mobilenet.MobileNetChain`). As in the
reference, the first and the last MBConv layer are fixed (layer 0 k3, layer 21 k3e6; ``fixed_ends``) and
the 20 layers between are superkernel layers: a 1×1 expansion to 6× the input width, ONE 5×5 depthwise
kernel, a 1×1 projection. Each candidate is a subset of that kernel, chosen by comparing the norm of a
part of the weights with a learned threshold through the indicator 1[‖w‖ − t ≥ 0]:

- kernel: d5 = 1[‖w_ring‖ − t_k] where w_ring is the outer ring of the 5×5 (the inner 3×3 is always
  used): w_k = w_3×3 + d5 · w_ring;
- expansion: d6 = 1[‖w_k,upper‖ − t_e] on the upper half of the expanded channels (the lower half is
  expansion 3): kernel = w_k,lower + d6 · w_k,upper;
- skip (only layers that keep their shape): keep = 1[‖w_k,lower‖ − t_s]; kernel = keep · (...).

The indicator is a hard step in the forward pass and has the sigmoid's gradient in the backward pass
(``step + σ − stop_gradient(σ)``). Thresholds start at 0, so the search starts from the largest network.

Loss = CE (label smoothing 0.1) + λ · 1000 · log(R) with R the predicted latency in ms (the reference's
"1e3 to sec" factor, so λ = 0.02 weighs log R by 20). R is, by default, the reference's own formula
(``latency_form='reference'``): the table's fixed part plus, per searched layer,
c · (r1/r3) + c · (1 − r1/r3) · d5 with c = keep · (r2 + d6 · (r3 − r2)) and r0..r3 the layer's
k3e3, k3e6, k5e3, k5e6 entries; a skip costs 0, and the fixed layers are inside the 19.5999 ms constant.
``latency_form='table'`` uses instead the table's exact multilinear form over all 22 layers
(:meth:`~nni_nas_bench.latency.LatencyTable.expected_ms`), equal to ``space.latency_ms`` at every
architecture. Whatever the form, every epoch logs ``latency_ms`` = ``space.latency_ms(arch)``, the
suite's common prediction, and ``search_latency_ms`` = R.

Warm-up (the first ``warmup_fraction`` of the steps; the reference's 6,255 of 10,008): λ = 0 and each
indicator goes through inverted dropout with keep probability ``indicator_keep`` (0.6), so all
sub-kernels get trained; afterwards full λ and no dropout. Weights and thresholds are trained together,
one step per training batch (one-level), by TensorFlow-1 RMSProp (decay 0.9, momentum 0.9, ε 1e-3
inside the square root, mean square starting at 1) with L2 1e-5 on every non-BN weight and on the
thresholds; lr = 0.016 · batch / 256, × 0.97 every 2.4 epochs (staircase). Dropout 0.2 before the
classifier; BN momentum 0.01 (TF's 0.99) and ε 1e-3; TF's initialisers (convs N(0, 2/fan_out)).
After every epoch the supernet is evaluated on the other half of the search split, and the epoch's
thresholds, norms, architecture and latencies are logged and written to
``<output_dir>/single_path_search.json``.

``mask_dropped=True`` (not the reference) also zeroes the dropped channels after the depthwise BN and
multiplies a skipped layer's whole residual branch by ``keep``, so that a dropped part is really absent
as in the child network; the reference masks the kernel only (the BN shift of a zeroed kernel passes).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.latency import SKIP, LatencyTable
from nni_nas_bench.strategies.checks import check_int, check_number
from nni_nas_bench.strategies.one_shot import OneShotStrategy, SearchResult
from nni_nas_bench.training.epoch import run_epoch
from search_spaces.cells import drop_path
from search_spaces.mobilenet import (
    LAYERS,
    LayerSpec,
    MBConv,
    MobileArch,
    MobileNetChain,
    conv_bn,
    parse_op,
    width_multiplier,
)

RESULT_FILE = "single_path_search.json"
LATENCY_LOSS_SCALE = 1e3  # search_main.py:338, runtime_lambda * 1e3 * log(runtime) ("1e3 to sec")
# The reference's fixed first and last layers (supernet_macro.py:123,129): k3 e1 32→16 and k3 e6 192→320.
# The space has no expansion 1, so layer 0 is its nearest choice, k3e3.
FIXED_END_OPS = {0: "k3e3", len(LAYERS) - 1: "k3e6"}
LATENCY_FORMS = ("reference", "table")


def indicator(x: torch.Tensor) -> torch.Tensor:
    """1[x ≥ 0] in the forward pass, the gradient of sigmoid(x) in the backward pass."""
    soft = torch.sigmoid(x)
    return (x >= 0).to(x.dtype) + soft - soft.detach()


def drop_indicator(d: torch.Tensor, keep_prob: float) -> torch.Tensor:
    """TF-1 ``tf.nn.dropout(d, keep_prob)``: 0 with probability 1 − keep, else d / keep (1 = no dropout)."""
    return F.dropout(d, p=1.0 - keep_prob, training=True) if keep_prob < 1.0 else d


class SuperKernelMBConv(nn.Module):
    """An MBConv layer holding every choice of its slot in one 5×5 depthwise kernel (see the module docstring)."""

    def __init__(self, spec: LayerSpec, c_in: int, c_out: int, stride: int, mask_dropped: bool = False):
        super().__init__()
        mid, half = 6 * c_in, 3 * c_in
        self.index = spec.index
        self.stride, self.skippable, self.mask_dropped = stride, spec.skippable, mask_dropped
        self.residual = stride == 1 and c_in == c_out
        self.expand = conv_bn(c_in, mid, 1)
        self.depthwise = nn.Parameter(torch.empty(mid, 1, 5, 5))
        # conv_kernel_initializer (singlepath_supernet.py:64-67): N(0, 2/fan_out), fan_out = 5·5·1 for a
        # depthwise kernel; the ratio of these norms to the thresholds drives the search.
        nn.init.normal_(self.depthwise, std=math.sqrt(2.0 / 25))
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
        self.indicator_keep = 1.0  # < 1 during the warm-up, in training mode only

    def thresholds(self) -> list[nn.Parameter]:
        return [t for t in (self.t_kernel, self.t_expand, self.t_skip) if t is not None]

    def decide(self, keep_prob: float = 1.0
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, float]]:
        """Indicators (kernel 5, expansion 6, keep), the selected kernel, and the norms compared.

        ``keep_prob`` < 1 drops each indicator as it is made, before the next norm is taken (superkernel.py:133-163).
        """
        w = self.depthwise
        ring = w * self.ring
        ring_norm = ring.norm()
        d5 = drop_indicator(indicator(ring_norm - self.t_kernel), keep_prob)
        w_k = (w - ring) + d5 * ring
        upper = w_k * self.upper.view(-1, 1, 1, 1)
        lower = w_k - upper
        upper_norm, lower_norm = upper.norm(), lower.norm()
        d6 = drop_indicator(indicator(upper_norm - self.t_expand), keep_prob)
        if self.t_skip is not None:
            keep = drop_indicator(indicator(lower_norm - self.t_skip), keep_prob)
        else:
            keep = torch.ones_like(d6)
        kernel = keep * (lower + d6 * upper)
        norms = {"ring": ring_norm.item(), "upper": upper_norm.item(), "lower": lower_norm.item()}
        return d5, d6, keep, kernel, norms

    def forward(self, x: torch.Tensor, drop_prob: torch.Tensor | None = None) -> torch.Tensor:
        _, d6, keep, kernel, _ = self.decide(self.indicator_keep if self.training else 1.0)
        h = self.expand(x)
        h = F.conv2d(h, kernel, stride=self.stride, padding=2, groups=h.shape[1])
        h = F.relu(self.dw_bn(h))
        if self.mask_dropped:
            h = h * (1 - self.upper + d6 * self.upper)
        out = self.project(h)
        if not self.residual:
            return out
        if self.mask_dropped:
            out = keep * out
        return x + (drop_path(out, drop_prob) if drop_prob is not None else out)


def reference_layer_ms(table: LatencyTable, index: int, kernel5: torch.Tensor, expand6: torch.Tensor,
                       keep: torch.Tensor) -> torch.Tensor:
    """One searched layer's runtime term as superkernel.py:169-172 writes it (skip = 0 ms).

    With r = the layer's (k3e3, k3e6, k5e3, k5e6) entries: c = keep · (r2 + d6 · (r3 − r2)) and
    runtime = c · r1/r3 + c · (1 − r1/r3) · d5: exact for k5e3, k5e6, k3e6; k3e3 is approximated by r2·r1/r3.
    """
    r = table.layers[index]
    ratio = r[1] / r[3]
    channels = keep * (r[2] + expand6 * (r[3] - r[2]))
    return channels * ratio + channels * (1 - ratio) * kernel5


class SinglePathSupernet(MobileNetChain):
    """The space's chain with a superkernel in every searched slot (all but the ends when ``fixed_ends``)."""

    def __init__(self, width_mult: float, num_classes: int, stem: str, *, fixed_ends: bool = True,
                 mask_dropped: bool = False, head_dropout: float = 0.0, bn_momentum: float | None = None,
                 bn_eps: float | None = None):
        def make_layer(spec: LayerSpec, c_in: int, c_out: int, stride: int) -> nn.Module:
            if fixed_ends and spec.index in FIXED_END_OPS:
                kernel, expansion = parse_op(FIXED_END_OPS[spec.index])
                return MBConv(c_in, c_out, kernel, expansion, stride)
            return SuperKernelMBConv(spec, c_in, c_out, stride, mask_dropped)

        super().__init__(make_layer, width_mult, num_classes, stem)
        self.drop_path_enabled = False
        self.head_dropout = head_dropout
        self.fixed = {i: op for i, op in FIXED_END_OPS.items()} if fixed_ends else {}
        reference_init(self)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = m.momentum if bn_momentum is None else bn_momentum
                m.eps = m.eps if bn_eps is None else bn_eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # dropout before the classifier (singlepath_supernet.py:435-437, rate 0.2 in supernet_macro.py:135)
        return self.classifier(F.dropout(self.features(x), self.head_dropout, self.training))

    @property
    def searched(self) -> list[SuperKernelMBConv]:
        return [layer for layer in self.layers if isinstance(layer, SuperKernelMBConv)]

    def set_indicator_keep(self, keep_prob: float) -> None:
        """Indicator dropout keep probability of every superkernel (the warm-up's 0.6, then 1)."""
        for layer in self.searched:
            layer.indicator_keep = keep_prob

    def thresholds(self) -> list[nn.Parameter]:
        return [t for layer in self.searched for t in layer.thresholds()]

    def weights(self) -> list[nn.Parameter]:
        ids = {id(t) for t in self.thresholds()}
        return [p for p in self.parameters() if id(p) not in ids]

    def indicators(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-searched-layer (kernel 5, expansion 6, keep) indicators, each a tensor of length 20 (22)."""
        decided = [layer.decide()[:3] for layer in self.searched]
        return tuple(torch.stack(column) for column in zip(*decided))  # type: ignore[return-value]

    def latency(self, table: LatencyTable, form: str = "reference") -> torch.Tensor:
        """Predicted latency (ms) of the current architecture, differentiable in the thresholds and norms."""
        k5, e6, keep = self.indicators()
        if form == "reference":
            terms = [reference_layer_ms(table, layer.index, k5[j], e6[j], keep[j])
                     for j, layer in enumerate(self.searched)]
            return table.fixed_ms + torch.stack(terms).sum()
        full = [torch.ones(len(self.layers), dtype=k5.dtype, device=k5.device) for _ in range(3)]
        for i, op in self.fixed.items():
            kernel, expansion = parse_op(op)
            full[0][i], full[1][i] = float(kernel == 5), float(expansion == 6)
        index = torch.tensor([layer.index for layer in self.searched], device=k5.device)
        full = [f.index_put((index,), v) for f, v in zip(full, (k5, e6, keep))]
        return table.expected_ms(*full)

    def architecture(self) -> MobileArch:
        """The architecture the hard indicators select now (the fixed layers at their fixed choice)."""
        ops = dict(self.fixed)
        with torch.no_grad():
            for layer in self.searched:
                d5, d6, keep, _, _ = layer.decide()
                kernel, expansion = (5 if d5.item() > 0.5 else 3), (6 if d6.item() > 0.5 else 3)
                ops[layer.index] = SKIP if keep.item() < 0.5 else f"k{kernel}e{expansion}"
        return MobileArch(tuple(ops[i] for i in range(len(self.layers))))

    def state(self) -> list[dict[str, Any]]:
        """Thresholds and the norms they are compared with, per searched layer (the search's trace)."""
        rows = []
        with torch.no_grad():
            for layer in self.searched:
                norms = layer.decide()[4]
                row = {"layer": layer.index, "t_kernel": layer.t_kernel.item(), "t_expand": layer.t_expand.item(),
                       "norm_ring": norms["ring"], "norm_upper": norms["upper"]}
                if layer.t_skip is not None:
                    row.update(t_skip=layer.t_skip.item(), norm_lower=norms["lower"])
                rows.append(row)
        return rows


def reference_init(net: nn.Module) -> None:
    """The reference's initialisers (singlepath_supernet.py:46-88): every conv N(0, 2/fan_out) with TF's
    fan_out = k·k·(out channels / groups) (k·k for a depthwise kernel; the superkernels set theirs), every
    dense layer U(±1/sqrt(classes)) with zero bias."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            nn.init.normal_(m.weight, std=math.sqrt(2.0 / fan_out))
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)


class TFRMSprop(torch.optim.Optimizer):
    """``tf.train.RMSPropOptimizer`` of TensorFlow 1 (nas_utils.py:71-87 builds it with decay 0.9, momentum
    0.9, epsilon 1e-3), which differs from ``torch.optim.RMSprop``: the mean square starts at 1, not 0;
    ε is inside the square root; the learning rate multiplies the gradient before the momentum buffer::

        ms ← ρ·ms + (1 − ρ)·g²;  mom ← μ·mom + lr·g / sqrt(ms + ε);  w ← w − mom

    ``weight_decay`` adds wd·w to g: the gradient of the reference's wd · Σ tf.nn.l2_loss(w) = wd · Σ‖w‖²/2
    (search_main.py:348-350).
    """

    def __init__(self, params: Iterable[Any], lr: float, decay: float = 0.9, momentum: float = 0.9,
                 eps: float = 1e-3, weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "decay": decay, "momentum": momentum, "eps": eps,
                                  "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad
                state = self.state[p]
                if not state:
                    state["ms"] = torch.ones_like(p)
                    state["mom"] = torch.zeros_like(p)
                ms, mom = state["ms"], state["mom"]
                ms.mul_(group["decay"]).addcmul_(g, g, value=1 - group["decay"])
                mom.mul_(group["momentum"]).addcdiv_(g, (ms + group["eps"]).sqrt(), value=group["lr"])
                p.sub_(mom)


def exponential_lr(step: int, steps_per_epoch: float, initial: float, decay: float, decay_epochs: float) -> float:
    """nas_utils.py:28-32, ``tf.train.exponential_decay(staircase=True)``: initial · decay^floor(step / (spe · epochs)).

    The reference's warm-up of the learning rate is off (search_main.py:372-375 passes warmup_epochs=-1,
    so its ``global_step < -steps`` test never holds).
    """
    return initial * decay ** math.floor(step / (steps_per_epoch * decay_epochs))


def split_decay(net: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(L2-decayed, not decayed) parameters: the reference decays every trainable variable whose name has no
    'batch_normalization' (search_main.py:348-350), so thresholds are decayed and BN's γ, β are not."""
    bn = {id(p) for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) for p in m.parameters()}
    params = list(net.parameters())
    return [p for p in params if id(p) not in bn], [p for p in params if id(p) in bn]


class SinglePathStrategy(OneShotStrategy):
    """Single-Path NAS as an NNI strategy that also runs in-process (same interface as DARTS)::

        result = SinglePathStrategy(runtime_lambda=0.02, seed=0).search(space, data_root=..., dataset="sport8")
        result.genotype            # a MobileArch; space.latency_ms(result.genotype) its predicted latency

    ``channels`` is the supernet's stem width (width multiplier channels/32). The result's
    ``alpha_history`` (the name is DARTS's result type's) holds one row per epoch with ``thresholds``
    (per searched layer: thresholds and the norms compared with them), ``genotype``, ``latency_ms`` (the
    space's table prediction), ``search_latency_ms`` (R of the loss, ``latency_form``) and ``warmup``.
    Every default is the reference's (``docs/fidelity.md``, section ``single_path``).
    """

    setting_names: ClassVar[tuple[str, ...]] = (
        "epochs", "batch_size", "channels", "runtime_lambda", "warmup_fraction", "indicator_keep", "base_lr",
        "lr_decay", "lr_decay_epochs", "rms_decay", "rms_momentum", "rms_eps", "weight_decay", "label_smoothing",
        "head_dropout", "grad_clip", "bn_momentum", "bn_eps", "fixed_ends", "latency_form", "mask_dropped", "cutout",
        "subset", "eval_batch_size", "seed")
    repr_names: ClassVar[tuple[str, ...]] = ("epochs", "runtime_lambda", "channels", "seed")

    name = "single_path"

    def __init__(self, *, epochs: int = 8, batch_size: int = 64, channels: int = 32, runtime_lambda: float = 0.02,
                 warmup_fraction: float = 0.625, indicator_keep: float = 0.6, base_lr: float = 0.016,
                 lr_decay: float = 0.97, lr_decay_epochs: float = 2.4, rms_decay: float = 0.9,
                 rms_momentum: float = 0.9, rms_eps: float = 1e-3, weight_decay: float = 1e-5,
                 label_smoothing: float = 0.1, head_dropout: float = 0.2, grad_clip: float = 0.0,
                 bn_momentum: float = 0.01, bn_eps: float = 1e-3,
                 fixed_ends: bool = True, latency_form: str = "reference", mask_dropped: bool = False,
                 cutout: int = 0, subset: int | None = None, eval_batch_size: int = 256, seed: int = 0,
                 dataset: str | None = None, data_root: str | Path | None = None, device: str = "auto",
                 output_dir: str | Path | None = None):
        super().__init__()
        m = "single_path"
        self.epochs = check_int(m, "epochs", epochs)
        self.batch_size = check_int(m, "batch_size", batch_size)
        self.channels = check_int(m, "channels", channels)
        self.eval_batch_size = check_int(m, "eval_batch_size", eval_batch_size)
        self.runtime_lambda = check_number(m, "runtime_lambda", runtime_lambda)
        self.warmup_fraction = _check_unit(m, "warmup_fraction", warmup_fraction, "0 (no warm-up) .. 1")
        self.indicator_keep = _check_unit(m, "indicator_keep", indicator_keep, "(0, 1]; 1 = no indicator dropout",
                                          open_low=True)
        self.base_lr = check_number(m, "base_lr", base_lr)
        self.lr_decay = _check_unit(m, "lr_decay", lr_decay, "(0, 1]; 1 = constant lr", open_low=True)
        self.lr_decay_epochs = check_number(m, "lr_decay_epochs", lr_decay_epochs, minimum=1e-9)
        self.rms_decay = _check_unit(m, "rms_decay", rms_decay, "0 .. 1")
        self.rms_momentum = _check_unit(m, "rms_momentum", rms_momentum, "0 .. 1")
        self.rms_eps = check_number(m, "rms_eps", rms_eps, minimum=1e-12)
        self.weight_decay = check_number(m, "weight_decay", weight_decay)
        self.label_smoothing = _check_unit(m, "label_smoothing", label_smoothing, "0 .. 1")
        self.head_dropout = _check_unit(m, "head_dropout", head_dropout, "0 .. 1")
        self.grad_clip = check_number(m, "grad_clip", grad_clip)
        self.bn_momentum = _check_unit(m, "bn_momentum", bn_momentum, "(0, 1] (PyTorch's convention: TF's 0.99 is "
                                       "0.01)", open_low=True)
        self.bn_eps = check_number(m, "bn_eps", bn_eps, minimum=1e-12)
        self.fixed_ends = _check_bool(m, "fixed_ends", fixed_ends)
        self.mask_dropped = _check_bool(m, "mask_dropped", mask_dropped)
        if latency_form not in LATENCY_FORMS:
            raise ConfigError(f"single_path.latency_form must be one of {', '.join(LATENCY_FORMS)} ('reference': "
                              f"the reference code's formula; 'table': the exact table), got {latency_form!r}")
        self.latency_form = latency_form
        self._set_common(cutout=cutout, subset=subset, seed=seed, dataset=dataset, data_root=data_root, device=device,
                         output_dir=output_dir)

    @property
    def initial_lr(self) -> float:
        """The reference's linear scaling (search_main.py:370): base_lr · batch_size / 256."""
        return self.base_lr * self.batch_size / 256.0

    def build_supernet(self, num_classes: int, stem: str) -> SinglePathSupernet:
        return SinglePathSupernet(width_multiplier(self.channels), num_classes, stem, fixed_ends=self.fixed_ends,
                                  mask_dropped=self.mask_dropped, head_dropout=self.head_dropout,
                                  bn_momentum=self.bn_momentum, bn_eps=self.bn_eps)

    def make_optimizer(self, net: SinglePathSupernet) -> TFRMSprop:
        """One RMSProp over weights and thresholds (the reference's one ``optimizer.minimize(loss)``)."""
        decayed, plain = split_decay(net)
        groups = [{"params": decayed, "weight_decay": self.weight_decay}, {"params": plain, "weight_decay": 0.0}]
        return TFRMSprop(groups, lr=self.initial_lr, decay=self.rms_decay, momentum=self.rms_momentum,
                         eps=self.rms_eps)

    def warmup_steps(self, total_steps: int) -> int:
        """Steps with λ = 0 and indicator dropout: the reference's 6,255 of 10,008 (search_main.py:302)."""
        return round(self.warmup_fraction * total_steps)

    def step_schedule(self, step: int, steps_per_epoch: float, total_steps: int) -> tuple[float, float, float]:
        """(λ, indicator keep probability, lr) of training step ``step`` (0-based) of ``total_steps``.

        Warm-up (step < warmup_steps): λ = 0 and keep = ``indicator_keep``; afterwards λ and keep 1
        (nas_utils.py:53-68: 0.6, then 1e2, which TF-1 dropout turns into the identity).
        """
        in_warmup = step < self.warmup_steps(total_steps)
        lr = exponential_lr(step, steps_per_epoch, self.initial_lr, self.lr_decay, self.lr_decay_epochs)
        return (0.0, self.indicator_keep, lr) if in_warmup else (self.runtime_lambda, 1.0, lr)

    def step_loss(self, net: SinglePathSupernet, table: LatencyTable, logits: torch.Tensor, y: torch.Tensor,
                  runtime_lambda: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, cross-entropy): CE with label smoothing + λ·1000·log R (search_main.py:329-338), with the
        step's λ (0 in the warm-up); L2 is the optimizer's."""
        ce = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        if runtime_lambda == 0:
            return ce, ce
        runtime = net.latency(table, self.latency_form)
        return ce + runtime_lambda * LATENCY_LOSS_SCALE * torch.log(runtime), ce

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
        log(f"single_path: {self.epochs} epochs, lambda {self.runtime_lambda} x 1000 after a warm-up of "
            f"{self.warmup_fraction:.3f} of the steps, width {self.channels}/32, "
            f"seed {self.seed}, {info.name} on {device_}, latency table {table.source}")
        fork_devices = [device_] if device_.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(derive_seed("single_path", "init", self.seed))
            net = self.build_supernet(info.num_classes, "cifar" if info.image_size == 32 else "imagenet").to(device_)
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

        opt = self.make_optimizer(net)
        eval_protocol = Protocol(precision="fp32", channels_last=False)
        history: list[dict[str, Any]] = []
        steps_per_epoch = max(len(train_loader), 1)
        total_steps = self.epochs * steps_per_epoch
        warmup = self.warmup_steps(total_steps)
        state = {"step": 0, "lr": self.initial_lr}  # the global step and the last step's learning rate

        def batch_step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """One joint step; the epoch's totals count the cross-entropy, not the latency term."""
            runtime_lambda, keep_prob, state["lr"] = self.step_schedule(state["step"], steps_per_epoch, total_steps)
            for group in opt.param_groups:
                group["lr"] = state["lr"]
            net.set_indicator_keep(keep_prob)
            logits = net(x)
            loss, ce = self.step_loss(net, table, logits, y, runtime_lambda)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if self.grad_clip > 0:
                nn.utils.clip_grad_norm_(net.parameters(), self.grad_clip)
            opt.step()
            state["step"] += 1
            return logits, ce

        for epoch in range(self.epochs):
            train_loader.set_epoch(epoch)
            start = time.perf_counter()
            net.train()
            state["lr"] = self.initial_lr
            totals = run_epoch(train_loader, batch_step, device)
            net.set_indicator_keep(1.0)
            totals.finite_or_fail("Single-Path NAS loss", f"in epoch {epoch + 1}",
                                  "lower base_lr or check the input data")
            train_ce, lr, step = totals.loss, state["lr"], state["step"]
            valid_acc = evaluate(net, eval_loader, eval_protocol, device)
            arch = space.validate(net.architecture())
            latency = table.latency_ms(arch.ops)
            with torch.no_grad():
                search_latency = net.latency(table, self.latency_form).item()
            seconds = time.perf_counter() - start
            row = {"epoch": epoch + 1, "valid_acc": valid_acc, "train_acc": totals.accuracy,
                   "train_loss": train_ce, "lr": lr, "epoch_seconds": seconds, "genotype": arch.to_text(),
                   "latency_ms": latency, "search_latency_ms": search_latency, "warmup": step <= warmup,
                   "thresholds": net.state()}
            history.append(row)
            kept = [op for op in arch.ops if op != SKIP]
            log(f"single_path epoch {epoch + 1}/{self.epochs} lr {lr:.4g} train_ce {train_ce:.4f} "
                f"train_acc {row['train_acc']:.2f} valid_acc {valid_acc:.2f} latency {latency:.2f} ms "
                f"(loss's {search_latency:.2f}){' warm-up' if row['warmup'] else ''} "
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


def _check_unit(method: str, name: str, value: Any, allowed: str, open_low: bool = False) -> float:
    """A number in [0, 1] ((0, 1] when ``open_low``), or a ConfigError naming it and the range."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value <= 1
    if not ok or (open_low and value == 0):
        raise ConfigError(f"{method}.{name} must be a number in {allowed}, got {value!r}")
    return float(value)


def _check_bool(method: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{method}.{name} must be true or false, got {value!r}")
    return value
