"""Single-Path NAS search step against the authors' release, dstamoulis/single-path-nas at commit
21c1f3e9c790e591749c0fb861bff3737b6d5fc7 (files under nas-search/). antoyang/NAS-Benchmark has no
Single-Path folder, so the release is the reference. Expected values are derived from the cited lines."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from nni_nas_bench.latency import LatencyTable, table_from_json
from nni_nas_bench.strategies import create_strategy
from nni_nas_bench.strategies.single_path import (
    SinglePathStrategy,
    SuperKernelMBConv,
    TFRMSprop,
    exponential_lr,
    reference_layer_ms,
)
from search_spaces.mobilenet import LAYERS, MBConv


@pytest.fixture()
def table() -> LatencyTable:
    """A synthetic 22-layer table with distinct entries (layer i, choice c: 1 + i/10 + c·(1 + i/20) ms)."""
    doc = {str(i): {str(c): 1 + i / 10 + c * (1 + i / 20) for c in range(4)} for i in range(22)}
    return table_from_json(json.loads(json.dumps(doc)), "synthetic")


def tiny(**settings: object) -> tuple[SinglePathStrategy, torch.nn.Module]:
    strategy = create_strategy("single_path", channels=8, batch_size=4, **settings)
    torch.manual_seed(0)
    return strategy, strategy.build_supernet(10, "cifar")


def test_latency_term_is_lambda_times_1000_log_runtime(table: LatencyTable) -> None:
    """search_main.py:336-338 and 348-350: loss = CE + runtime_lambda · 1e3 · log(runtime), λ = 0.020
    (nas-search/README.md launch command). Value and gradient w.r.t. every threshold are 20 · (log R)."""
    strategy, net = tiny()
    assert strategy.runtime_lambda == 0.02
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([1, 2])
    loss, ce = strategy.step_loss(net, table, net(x), y, strategy.runtime_lambda)
    thresholds = net.thresholds()
    got = torch.autograd.grad(loss - ce, thresholds)
    log_r = torch.log(net.latency(table))
    assert (loss - ce).item() == pytest.approx(20.0 * log_r.item(), rel=1e-6)
    want = torch.autograd.grad(20.0 * log_r, thresholds)
    assert any(g.abs().item() > 0 for g in want)
    for g, w in zip(got, want):
        assert g.item() == pytest.approx(w.item(), rel=1e-5, abs=1e-12)


def test_cross_entropy_has_label_smoothing_0_1() -> None:
    """search_main.py:203-205, 329-333: softmax_cross_entropy with label_smoothing 0.1 (targets
    0.9·onehot + 0.1/K)."""
    strategy, net = tiny()
    logits, y = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0])
    loss, ce = strategy.step_loss(net, None, logits, y, 0.0)  # λ = 0: no latency term, no table needed
    logp = F.log_softmax(logits, 1)[0]
    assert ce.item() == loss.item() == pytest.approx(-(0.9 * logp[0] + 0.1 * logp.mean()).item(), rel=1e-6)


def test_warmup_lambda_zero_and_indicator_keep_0_6_then_full_lambda() -> None:
    """search_main.py:81-83, 302-303, 336-337 and nas_utils.py:53-68: for global_step < 6255 of the 10008
    steps λ = 0 and the indicators go through tf.nn.dropout with keep 0.6; from step 6255 on, the full λ
    and keep 1e2 (TF-1 dropout with keep ≥ 1 is the identity)."""
    strategy = create_strategy("single_path")
    assert strategy.warmup_steps(10008) == 6255
    spe = 10008 / 8
    assert strategy.step_schedule(0, spe, 10008)[:2] == (0.0, 0.6)
    assert strategy.step_schedule(6254, spe, 10008)[:2] == (0.0, 0.6)
    assert strategy.step_schedule(6255, spe, 10008)[:2] == (0.02, 1.0)
    assert strategy.step_schedule(10007, spe, 10008)[:2] == (0.02, 1.0)
    # 8 epochs of 1 step each: the warm-up is 5 of them (round(0.625 · 8))
    assert [strategy.step_schedule(s, 1, 8)[0] for s in range(8)] == [0.0] * 5 + [0.02] * 3


def test_indicator_dropout_is_inverted_dropout_with_keep_0_6() -> None:
    """superkernel.py:133-163: each indicator d is tf.nn.dropout(d, 0.6): 0 with probability 0.4, else
    d / 0.6; the norms after it are taken from the dropped kernel."""
    torch.manual_seed(0)
    layer = SuperKernelMBConv(LAYERS[2], 8, 8, 1)
    values = torch.stack([torch.stack(layer.decide(0.6)[:3]) for _ in range(600)]).detach()
    kept = values[values != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / 0.6))
    assert kept.numel() / values.numel() == pytest.approx(0.6, abs=0.04)
    assert torch.allclose(torch.stack(layer.decide(1.0)[:3]).detach(), torch.ones(3))


def test_first_and_last_layers_fixed_20_searched() -> None:
    """supernet_macro.py:108-110, 122-130: the first block (k3, 32→16) and the last (k3 e6, 192→320) are
    fixed; the 20 between are superkernels, 15 of them (stride 1, 5 runtime entries) with a skip
    threshold (superkernel.py:156-163, singlepath_supernet.py:339-344)."""
    _, net = tiny()
    searched = net.searched
    assert [layer.index for layer in searched] == list(range(1, 21))
    assert sum(layer.t_skip is not None for layer in searched) == 15
    assert isinstance(net.layers[0], MBConv) and isinstance(net.layers[21], MBConv)
    expand, depthwise, _ = net.layers[21].body
    assert depthwise[0].kernel_size == (3, 3) and expand[0].out_channels == 6 * expand[0].in_channels
    arch = net.architecture()
    assert arch.ops[0] == "k3e3" and arch.ops[21] == "k3e6"
    assert len(net.thresholds()) == 20 * 2 + 15
    _, all_searched = tiny(fixed_ends=False)
    assert len(all_searched.searched) == 22


def test_reference_latency_formula(table: LatencyTable) -> None:
    """superkernel.py:63-66, 168-172: R50c = r[2], R100c = R5x5 = r[3], R3x3 = r[1];
    runtime = c·r1/r3 + c·(1 − r1/r3)·d5 with c = d50c·(r2 + d100c·(r3 − r2)): a skip costs 0, k3e3 is
    r2·r1/r3; singlepath_supernet.py:406-407: total = 19.5999 + the searched layers (blocks 0, 21 inside)."""
    r = table.layers[5]
    one, zero = torch.tensor(1.0), torch.tensor(0.0)
    assert reference_layer_ms(table, 5, one, one, one).item() == pytest.approx(r[3])
    assert reference_layer_ms(table, 5, zero, one, one).item() == pytest.approx(r[1])
    assert reference_layer_ms(table, 5, one, zero, one).item() == pytest.approx(r[2])
    assert reference_layer_ms(table, 5, zero, zero, one).item() == pytest.approx(r[2] * r[1] / r[3])
    assert reference_layer_ms(table, 5, one, one, zero).item() == 0.0
    _, net = tiny()
    start = 19.5999 + sum(table.layers[i][3] for i in range(1, 21))  # thresholds 0: k5e6 everywhere
    assert net.latency(table).item() == pytest.approx(start, rel=1e-6)
    # latency_form='table': the table's exact prediction of the selected architecture (all 22 layers)
    assert net.latency(table, "table").item() == pytest.approx(table.latency_ms(net.architecture().ops), rel=1e-6)


def test_thresholds_start_at_zero_and_depthwise_init() -> None:
    """superkernel.py:100-102: thresholds initialised to zeros; singlepath_supernet.py:64-67 with the
    depthwise kernel shape (5, 5, C, 1): N(0, 2 / (5·5·1))."""
    _, net = tiny()
    assert all(t.item() == 0.0 for t in net.thresholds())
    w = torch.cat([layer.depthwise.detach().flatten() for layer in net.searched])
    assert w.std().item() == pytest.approx(math.sqrt(2 / 25), rel=0.03)


def test_indicator_formula_norms_on_the_masked_kernel() -> None:
    """superkernel.py:129-166: d5 on ‖ring‖; the channel norms are taken after the ring is masked by d5;
    d100c on the upper half, d50c on the lower half; kernel = d50c·(lower + d100c·upper)."""
    torch.manual_seed(0)
    layer = SuperKernelMBConv(LAYERS[2], 4, 4, 1)  # 24 channels, halves of 12
    w = layer.depthwise.detach()
    inner = w.clone()
    inner[..., 0, :] = inner[..., -1, :] = inner[..., :, 0] = inner[..., :, -1] = 0
    with torch.no_grad():
        layer.t_kernel.fill_((w - inner).norm().item() + 1)  # drop the ring: d5 = 0
    d5, d6, keep, kernel, norms = layer.decide()
    assert d5.item() == 0 and d6.item() == 1 and keep.item() == 1
    assert norms["upper"] == pytest.approx(inner[12:].norm().item(), rel=1e-6)
    assert norms["lower"] == pytest.approx(inner[:12].norm().item(), rel=1e-6)
    assert torch.allclose(kernel, inner)
    with torch.no_grad():
        layer.t_skip.fill_(norms["lower"] + 1)
    assert torch.count_nonzero(layer.decide()[3]) == 0


def test_kernel_only_masking_lets_the_bn_shift_through() -> None:
    """superkernel.py:165-166, singlepath_supernet.py:260-275: a skipped layer has a zero kernel, but the
    depthwise BN, ReLU, projection and the residual add still run (mask_dropped=False, the default);
    mask_dropped=True makes it the identity, as the child's skip."""
    x = torch.randn(2, 8, 6, 6)
    outputs = {}
    for mask in (False, True):
        torch.manual_seed(0)
        layer = SuperKernelMBConv(LAYERS[2], 8, 8, 1, mask_dropped=mask).eval()
        with torch.no_grad():
            layer.t_skip.fill_(1e6)
            layer.dw_bn.bias.fill_(0.5)
        outputs[mask] = layer(x)
    assert torch.equal(outputs[True], x)
    assert not torch.allclose(outputs[False], x)


def test_optimizer_is_tf1_rmsprop_with_l2_on_thresholds() -> None:
    """nas_utils.py:71-87: tf.train.RMSPropOptimizer(lr, decay 0.9, momentum 0.9, epsilon 0.001) over every
    variable (weights and thresholds together, search_main.py:386-387); TF-1: ms starts at 1,
    mom ← 0.9·mom + lr·g/sqrt(ms + ε). search_main.py:199-201, 348-350: 1e-5 · Σ l2_loss(v) on every
    non-batch-normalization variable, thresholds included."""
    strategy, net = tiny()
    opt = strategy.make_optimizer(net)
    assert isinstance(opt, TFRMSprop)
    decayed, plain = opt.param_groups
    assert (decayed["decay"], decayed["momentum"], decayed["eps"]) == (0.9, 0.9, 1e-3)
    assert decayed["weight_decay"] == 1e-5 and plain["weight_decay"] == 0.0
    ids = {id(p) for p in decayed["params"]}
    assert all(id(t) in ids for t in net.thresholds())
    assert all(id(p) not in ids for p in net.searched[0].dw_bn.parameters())
    # two steps by hand: w = 1, g = 0.5 then 0.25 (+ L2 1e-5·w), lr 0.1
    w = torch.nn.Parameter(torch.tensor(1.0))
    opt = TFRMSprop([w], lr=0.1, weight_decay=1e-5)
    ms, mom, value = 1.0, 0.0, 1.0
    for g in (0.5, 0.25):
        w.grad = torch.tensor(g)
        opt.step()
        g_total = g + 1e-5 * value
        ms = 0.9 * ms + 0.1 * g_total ** 2
        mom = 0.9 * mom + 0.1 * g_total / math.sqrt(ms + 1e-3)
        value -= mom
        assert w.item() == pytest.approx(value, rel=1e-6)


def test_learning_rate_scaling_and_exponential_decay() -> None:
    """search_main.py:186-189, 370: lr = 0.016 · batch / 256; nas_utils.py:19-32 with search_main.py:373-375:
    exponential decay 0.97 every 2.4 epochs, staircase, no warm-up (warmup_epochs=-1 never triggers)."""
    assert create_strategy("single_path", batch_size=1024).initial_lr == pytest.approx(0.064)
    strategy = create_strategy("single_path", batch_size=64)
    assert strategy.initial_lr == pytest.approx(0.004)
    spe = 1281167 / 1024  # the reference's steps_per_epoch (search_main.py:659)
    assert exponential_lr(0, spe, 0.064, 0.97, 2.4) == 0.064
    boundary = math.ceil(spe * 2.4)  # 3003
    assert exponential_lr(boundary - 1, spe, 0.064, 0.97, 2.4) == 0.064
    assert exponential_lr(boundary, spe, 0.064, 0.97, 2.4) == pytest.approx(0.064 * 0.97)
    assert strategy.step_schedule(0, 10, 80)[2] == pytest.approx(0.004)
    assert strategy.step_schedule(24, 10, 80)[2] == pytest.approx(0.004 * 0.97)
    assert strategy.step_schedule(48, 10, 80)[2] == pytest.approx(0.004 * 0.97 ** 2)


def test_dropout_before_the_classifier_0_2() -> None:
    """supernet_macro.py:135 (dropout_rate 0.2) and singlepath_supernet.py:435-437: dropout on the pooled
    features before the classifier, in training only."""
    _, net = tiny()
    assert net.head_dropout == 0.2
    x = torch.randn(2, 3, 32, 32)
    net.eval()
    assert torch.equal(net(x), net(x))


def test_reference_defaults_recorded_in_settings() -> None:
    """The defaults are the reference's (nas-search/README.md: λ 0.020; search_main.py and nas_utils.py)."""
    settings = create_strategy("single_path").settings
    assert settings["runtime_lambda"] == 0.02 and settings["warmup_fraction"] == pytest.approx(0.625, abs=1e-4)
    assert (settings["indicator_keep"], settings["base_lr"], settings["weight_decay"]) == (0.6, 0.016, 1e-5)
    assert (settings["lr_decay"], settings["lr_decay_epochs"], settings["label_smoothing"]) == (0.97, 2.4, 0.1)
    assert settings["fixed_ends"] is True and settings["latency_form"] == "reference"
    assert settings["mask_dropped"] is False and settings["grad_clip"] == 0.0
    assert (settings["bn_momentum"], settings["bn_eps"], settings["head_dropout"]) == (0.01, 1e-3, 0.2)


def test_batch_norm_and_initialisers() -> None:
    """supernet_macro.py:133-134: batch_norm_momentum 0.99 (PyTorch momentum 0.01), epsilon 1e-3;
    singlepath_supernet.py:46-88: convs N(0, 2/fan_out), fan_out = k·k·out (k·k for a depthwise kernel of
    shape (k, k, C, 1)); dense U(±1/sqrt(classes))."""
    _, net = tiny()
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.momentum == 0.01 and m.eps == 1e-3 for m in bns)
    head = net.head[0].weight  # 1×1 conv to 1280
    assert head.std().item() == pytest.approx(math.sqrt(2 / 1280), rel=0.05)
    depthwise = net.layers[21].body[1][0].weight  # fixed layer's 3×3 depthwise
    assert depthwise.std().item() == pytest.approx(math.sqrt(2 / 9), rel=0.05)
    w = net.classifier.weight
    assert w.abs().max().item() <= 1 / math.sqrt(10) and w.abs().max().item() > 0.9 / math.sqrt(10)
    assert torch.count_nonzero(net.classifier.bias) == 0
