"""Single-Path NAS: the superkernel selects exactly the child layer, tiny searches, the latency objective."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nni_nas_bench.contract import arch_id
from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies import create_strategy, list_strategies
from nni_nas_bench.strategies.single_path import RESULT_FILE, SuperKernelMBConv, indicator
from search_spaces import create_space
from search_spaces.mobilenet import LAYERS, MBConv

TINY = {"epochs": 1, "batch_size": 10, "channels": 8, "subset": 4, "eval_batch_size": 50}


@pytest.fixture()
def space(tmp_path: Path) -> object:
    """The space over a synthetic latency table (layer i, choice c: 1 + i/10 + c ms), so tests never need
    the shared Pixel-1 file."""
    table = {str(i): {str(c): 1 + i / 10 + c for c in range(4)} for i in range(22)}
    path = tmp_path / "table.json"
    path.write_text(json.dumps(table))
    return create_space("mobilenet_sp", latency_table=str(path))


def test_registered_and_settings_errors() -> None:
    assert "single_path" in list_strategies()
    assert create_strategy("single_path").settings["epochs"] == 8  # SPEC: 8 search epochs
    with pytest.raises(ConfigError, match="runtime_lambda"):
        create_strategy("single_path", runtime_lambda=-1)
    with pytest.raises(ConfigError, match="bad settings"):
        create_strategy("single_path", order=2)


def test_indicator_is_a_hard_step_with_the_sigmoid_gradient() -> None:
    x = torch.tensor([-0.5, 0.0, 2.0], requires_grad=True)
    y = indicator(x)
    assert y.tolist() == [0.0, 1.0, 1.0]
    y.sum().backward()
    s = torch.sigmoid(x.detach())
    assert torch.allclose(x.grad, s * (1 - s))


@pytest.mark.parametrize("op", ["k3e3", "k3e6", "k5e3", "k5e6", "skip"])
def test_superkernel_computes_the_child_layer(op: str) -> None:
    """With thresholds that select ``op`` and ``mask_dropped`` on, the superkernel's output is the child layer's
    with the same weights. (The reference's kernel-only masking, the default, lets the BN shift of the zeroed
    channels through: tests/conformance/test_single_path.py checks that.)"""
    spec = LAYERS[2]  # stage 2, second layer: keeps its shape, may skip
    torch.manual_seed(0)
    sk = SuperKernelMBConv(spec, 8, 8, 1, mask_dropped=True).eval()
    big = 1e6
    with torch.no_grad():
        sk.t_kernel.fill_(-big if op.startswith("k5") else big)
        sk.t_expand.fill_(-big if op.endswith("e6") else big)
        sk.t_skip.fill_(big if op == "skip" else -big)
        for bn in (sk.expand[1], sk.dw_bn, sk.project[1]):  # non-trivial BN affine parameters and statistics
            for t in (bn.weight, bn.bias, bn.running_mean):
                t.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 1.5)
    x = torch.randn(2, 8, 6, 6)
    if op == "skip":
        assert torch.equal(sk(x), x)
        return
    kernel, expansion = int(op[1]), int(op[3])
    child = MBConv(8, 8, kernel, expansion, 1).eval()
    mid = 8 * expansion
    pad = (5 - kernel) // 2
    with torch.no_grad():
        expand, dw, project = child.body
        expand[0].weight.copy_(sk.expand[0].weight[:mid])
        dw[0].weight.copy_(sk.depthwise[:mid, :, pad:5 - pad, pad:5 - pad])
        project[0].weight.copy_(sk.project[0].weight[:, :mid])
        for c_bn, s_bn in ((expand[1], sk.expand[1]), (dw[1], sk.dw_bn), (project[1], sk.project[1])):
            n = c_bn.num_features
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(c_bn, name).copy_(getattr(s_bn, name)[:n])
        assert torch.allclose(sk(x), child(x), atol=1e-5)
        arch_layer = sk.decide()
        assert (arch_layer[0].item(), arch_layer[1].item()) == (float(kernel == 5), float(expansion == 6))


def test_tiny_search_returns_a_valid_architecture(space: object, synthetic_root: Path, cache_dir: Path,
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNB_CACHE_DIR", str(cache_dir))
    rng_before = torch.get_rng_state()
    logs: list[str] = []
    epochs: list[dict] = []
    strategy = create_strategy("single_path", seed=0, **TINY)
    result = strategy.search(space, data_root=synthetic_root, dataset="cifar10", device="cpu", output_dir=tmp_path,
                             log=logs.append, report_epoch=epochs.append)
    assert space.validate(result.genotype) is result.genotype
    assert space.parse(result.genotype.to_text()) == result.genotype
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert 0 <= result.valid_acc <= 100 and result.search_seconds > 0
    row = result.alpha_history[0]
    assert row["latency_ms"] == pytest.approx(space.latency_ms(result.genotype)) == epochs[0]["latency_ms"]
    # 20 searched layers (the first and last are fixed, as in the reference); 15 of them may skip
    assert len(row["thresholds"]) == 20 and sum("t_skip" in r for r in row["thresholds"]) == 15
    assert result.genotype.ops[0] == "k3e3" and result.genotype.ops[-1] == "k3e6"
    saved = json.loads((tmp_path / RESULT_FILE).read_text())
    assert saved["epochs"][0]["genotype"] == result.genotype.to_text()
    assert any("thresholds:" in line and "latency" in line for line in logs)


def test_higher_lambda_moves_thresholds_up_and_latency_down(space: object) -> None:
    """Same seed, same batch: only λ differs. The latency term raises the thresholds, so parts get dropped.

    The thresholds start just below their norms: at the reference's start (thresholds 0, kernels
    N(0, 2/25)) the norms are ~8 above the thresholds and the sigmoid gradient is ~1e-3, so a few steps
    would not cross anything.
    """
    table = space.latency

    def run(runtime_lambda: float) -> tuple[float, float]:
        strategy = create_strategy("single_path", runtime_lambda=runtime_lambda, channels=8, batch_size=4,
                                   base_lr=2.0)
        torch.manual_seed(0)
        net = strategy.build_supernet(10, "cifar")
        with torch.no_grad():
            for layer in net.searched:
                norms = layer.decide()[4]
                layer.t_kernel.fill_(norms["ring"] - 0.05)
                layer.t_expand.fill_(norms["upper"] - 0.05)
                if layer.t_skip is not None:
                    layer.t_skip.fill_(norms["lower"] - 0.05)
        opt = strategy.make_optimizer(net)
        x, y = torch.randn(4, 3, 32, 32), torch.arange(4)
        for _ in range(3):
            loss, _ = strategy.step_loss(net, table, net(x), y, runtime_lambda)
            opt.zero_grad()
            loss.backward()
            opt.step()
        thresholds = torch.stack(net.thresholds()).detach()
        return thresholds.mean().item(), table.latency_ms(net.architecture().ops)

    low, high = run(0.0), run(10.0)
    assert high[0] > low[0] + 0.1
    assert high[1] < low[1]
    largest = table.fixed_ms + sum(row[3] for row in table.layers)
    assert high[1] < largest  # the search left the k5e6-everywhere start


def test_search_trial_reports_latency(space: object, synthetic_root: Path, cache_dir: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from nni_nas_bench.search_trial import run_search

    monkeypatch.setenv("NNB_CACHE_DIR", str(cache_dir))
    params = {"role": "search", "method": "single_path", "dataset": "cifar10", "space": "mobilenet_sp",
              "space_args": space.settings, "search_seed": 0, "search": TINY}
    metrics = run_search(params, data_root=synthetic_root, device="cpu", log=lambda _: None)
    arch = space.parse(metrics["genotype"])
    assert metrics["latency_ms"] == pytest.approx(space.latency_ms(arch))
    assert metrics["arch_id"] == arch_id("mobilenet_sp", metrics["space_args"], metrics["genotype"])


def test_benchmark_tuner_rejects_a_space_single_path_cannot_search() -> None:
    from nni_nas_bench.tuners.benchmark import BenchmarkTuner

    with pytest.raises(ConfigError, match="mobilenet_sp"):
        BenchmarkTuner(method="single_path", dataset="cifar10", space="darts", protocol="single_path")
    with pytest.raises(ConfigError, match="mobilenet space"):
        create_strategy("single_path").search(create_space("darts"), data_root=".", dataset="cifar10")
