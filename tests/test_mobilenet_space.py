"""The Single-Path NAS MobileNetV2 space: sampler, text form, child networks, latency table."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from nni_nas_bench.errors import ConfigError, GenotypeError
from nni_nas_bench.latency import PIXEL1_FIXED_MS, PIXEL1_SKIP_MS, load_latency_table
from search_spaces import create_space
from search_spaces.mobilenet import LAYERS, MobileArch

PIXEL1_TABLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "single-path-nas" / "pixel1_runtime_model.json"


def synthetic_table(path: Path, fixed: float | None = None) -> Path:
    """A table where layer i, choice c costs i + c/10 ms: every entry distinct and easy to sum by hand."""
    doc: dict = {str(i): {str(c): i + c / 10 for c in range(4)} for i in range(22)}
    if fixed is not None:
        doc["_meta"] = {"fixed_ms": fixed, "skip_ms": 0.25}
    path.write_text(json.dumps(doc))
    return path


def test_layers_follow_the_single_path_macro_architecture() -> None:
    assert len(LAYERS) == 22
    assert [s.c_out for s in LAYERS if not s.skippable] == [16, 24, 40, 80, 96, 192, 320]
    assert sum(s.skippable for s in LAYERS) == 15
    assert [s.stride for s in LAYERS if s.stride > 1] == [2, 2, 2, 2]           # 112 -> 7 after the stem
    assert [s.cifar_stride for s in LAYERS if s.cifar_stride > 1] == [2, 2, 2]  # 32 -> 4
    space = create_space("mobilenet_sp")
    assert space.num_architectures() == 4**7 * 5**15


def test_uniform_sampler_chi_square() -> None:
    """Every layer's choice is uniform, and two layers are independent (joint frequencies uniform)."""
    space = create_space("mobilenet_sp")
    rng = np.random.RandomState(0)
    samples = [space.random_sample(rng) for _ in range(3000)]
    for label, k in (("layer_00", 4), ("layer_02", 5), ("layer_21", 4)):
        counts = Counter(s[label] for s in samples)
        assert len(counts) == k
        assert stats.chisquare(list(counts.values())).pvalue > 1e-3, (label, counts)
    joint = Counter((s["layer_02"], s["layer_03"]) for s in samples)
    assert len(joint) == 25 and stats.chisquare(list(joint.values())).pvalue > 1e-3
    assert all(s["layer_05"] != "skip" for s in samples)  # first layer of stage 3 never skips


def test_text_form_round_trip_and_errors() -> None:
    space = create_space("mobilenet_sp")
    for seed in range(20):
        arch = space.sample(seed)
        assert space.parse(arch.to_text()) == arch
        assert space.to_genotype(space.to_sample(arch)) == arch
    assert space.sample(3) == space.sample(3)
    ops = list(space.sample(0).ops)
    ops[1] = "skip"  # first layer of stage 2
    with pytest.raises(GenotypeError, match="cannot skip"):
        space.validate(MobileArch(tuple(ops)))
    with pytest.raises(GenotypeError, match="stages"):
        space.parse("k3e3 k3e3")
    with pytest.raises(GenotypeError, match="k7e6"):
        space.parse("k7e6" + space.sample(0).to_text()[4:])


def test_latency_of_a_known_architecture_is_the_hand_sum(tmp_path: Path) -> None:
    table = synthetic_table(tmp_path / "t.json", fixed=5.0)
    space = create_space("mobilenet_sp", latency_table=str(table))
    ops = ["k3e3"] * 22
    ops[0], ops[2], ops[3], ops[21] = "k5e6", "skip", "k3e6", "k5e3"
    # fixed 5 + layer 0 choice 3 (0.3) + layer 3 choice 1 (3.1) + layer 21 choice 2 (21.2) + skip 0.25
    # + the other 18 layers at choice 0 (their index i): sum(range(22)) - 0 - 2 - 3 - 21
    hand = 5.0 + 0.3 + 3.1 + 21.2 + 0.25 + (sum(range(22)) - 0 - 2 - 3 - 21)
    assert space.latency_ms(MobileArch(tuple(ops))) == pytest.approx(hand)
    plain = synthetic_table(tmp_path / "plain.json")  # the Pixel-1 layout: no _meta, Pixel-1 constants
    assert load_latency_table(plain).fixed_ms == PIXEL1_FIXED_MS and load_latency_table(plain).skip_ms == 0.7


@pytest.mark.skipif(not PIXEL1_TABLE.is_file(), reason=f"the shared Pixel-1 table is missing: {PIXEL1_TABLE}")
def test_pixel1_table_hand_sum() -> None:
    space = create_space("mobilenet_sp")  # default: the Pixel-1 table
    raw = json.loads(PIXEL1_TABLE.read_text())
    ops = ["k5e6"] * 22
    for i in (2, 3, 4):
        ops[i] = "skip"
    hand = PIXEL1_FIXED_MS + 3 * PIXEL1_SKIP_MS + sum(raw[str(i)]["3"] for i in range(22) if i not in (2, 3, 4))
    assert space.latency_ms(MobileArch(tuple(ops))) == pytest.approx(hand)
    # the smallest network: k3e3 everywhere, skip where allowed
    small = tuple("skip" if s.skippable else "k3e3" for s in LAYERS)
    assert space.latency_ms(MobileArch(small)) == pytest.approx(
        19.5999 + 15 * 0.7 + sum(raw[str(i)]["0"] for i in (0, 1, 5, 9, 13, 17, 21)))


def test_latency_table_errors(tmp_path: Path) -> None:
    space = create_space("mobilenet_sp", latency_table=str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="measure_latency"):
        space.latency_ms(space.sample(0))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"0": {"0": 1.0, "1": 2.0}}))
    with pytest.raises(ConfigError, match="needs choices"):
        load_latency_table(bad)
    short = tmp_path / "short.json"
    short.write_text(json.dumps({str(i): {str(c): 1.0 for c in range(4)} for i in range(5)}))
    with pytest.raises(ConfigError, match="5 layers"):
        create_space("mobilenet_sp", latency_table=str(short)).latency_ms(space.sample(0))


def test_differentiable_latency_equals_the_table_at_hard_choices(tmp_path: Path) -> None:
    table = load_latency_table(synthetic_table(tmp_path / "t.json", fixed=1.0))
    space = create_space("mobilenet_sp", latency_table=str(tmp_path / "t.json"))
    for seed in range(5):
        arch = space.sample(seed)
        k5 = torch.tensor([float(op.startswith("k5")) for op in arch.ops], dtype=torch.float64)
        e6 = torch.tensor([float(op.endswith("e6")) for op in arch.ops], dtype=torch.float64)
        keep = torch.tensor([float(op != "skip") for op in arch.ops], dtype=torch.float64)
        assert table.expected_ms(k5, e6, keep).item() == pytest.approx(space.latency_ms(arch))


@pytest.mark.parametrize("stem, size", [("cifar", 32), ("imagenet", 224)])
def test_child_network_builds_and_runs(stem: str, size: int) -> None:
    space = create_space("mobilenet_sp")
    arch = space.sample(1)
    torch.manual_seed(0)
    net = space.build_network(arch, C=8, num_classes=7, stem=stem)
    skipped = sum(op == "skip" for op in arch.ops)
    assert sum(type(layer).__name__ == "Skip" for layer in net.layers) == skipped
    net.train()
    net.drop_path_prob.fill_(0.2)
    out = net(torch.randn(2, 3, size, size))
    assert out.shape == (2, 7)
    out.sum().backward()
    net.eval()
    with torch.no_grad():
        assert torch.isfinite(net(torch.randn(1, 3, size, size))).all()


def test_build_network_rejects_cell_network_settings() -> None:
    space = create_space("mobilenet_sp")
    with pytest.raises(ConfigError, match="fixed depth of 22"):
        space.build_network(space.sample(0), layers=20)
    with pytest.raises(ConfigError, match="auxiliary"):
        space.build_network(space.sample(0), auxiliary=True)
    assert space.build_network(space.sample(0), C=8, layers=22) is not None


def test_random_trial_of_the_space_trains_and_reports_latency(synthetic_root: Path, cache_dir: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmark's random-architecture parameters for this space run through the real trial entry."""
    from nni_nas_bench.training import from_dict
    from nni_nas_bench.trial import run_trial
    from nni_nas_bench.tuners.random_baseline import random_trial_parameters

    monkeypatch.setenv("NNB_CACHE_DIR", str(cache_dir))
    args = {"latency_table": str(synthetic_table(tmp_path / "t.json", fixed=2.0))}
    space = create_space("mobilenet_sp", **args)
    protocol = from_dict({"preset": "single_path", "epochs": 1, "batch_size": 10, "channels": 8, "subset": 2,
                          "eval_batch_size": 50}).to_dict()
    params = random_trial_parameters(space, "mobilenet_sp", args, "cifar10", 0, 1, protocol)
    metrics = run_trial(params, data_root=synthetic_root, device="cpu", log=lambda _: None)
    assert metrics["genotype"] == space.sample(np.random.RandomState([0, 1])).to_text()
    assert metrics["latency_ms"] == pytest.approx(space.latency_ms(space.parse(metrics["genotype"])))
    assert 0 <= metrics["default"] <= 100


def test_nni_model_space_freezes_to_the_child_network() -> None:
    from search_spaces.model_space import CellModelSpace

    model_space = CellModelSpace("mobilenet_sp", C=8, stem="cifar", num_classes=10)
    sample = model_space.space.random_sample(np.random.RandomState(0))
    child = model_space.freeze(sample)
    assert child.genotype == model_space.space.to_genotype(sample)
    assert child(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_measured_table_has_the_pixel1_layout_and_drives_the_space(tmp_path: Path) -> None:
    """benchmarks/measure_latency.py's table (tiny settings) loads as a space's table; predictions are its sums."""
    import subprocess
    import sys

    out = tmp_path / "cpu.json"
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "measure_latency.py"
    subprocess.run([sys.executable, str(script), "--out", str(out), "--image-size", "32", "--channels", "8",
                    "--repeats", "1", "--warmup", "0", "--threads", "1"], check=True, capture_output=True)
    raw = json.loads(out.read_text())
    assert sorted(k for k in raw if k != "_meta") == sorted(str(i) for i in range(22))
    assert all(sorted(raw[str(i)]) == ["0", "1", "2", "3"] and min(raw[str(i)].values()) > 0 for i in range(22))
    assert raw["_meta"]["image_size"] == 32 and raw["_meta"]["fixed_ms"] > 0
    space = create_space("mobilenet_sp", latency_table=str(out))
    arch = space.sample(4)
    index = {"k3e3": "0", "k3e6": "1", "k5e3": "2", "k5e6": "3"}
    hand = raw["_meta"]["fixed_ms"] + sum(raw["_meta"]["skip_ms"] if op == "skip" else raw[str(i)][index[op]]
                                          for i, op in enumerate(arch.ops))
    assert space.latency_ms(arch) == pytest.approx(hand)
