"""The training protocol: presets, YAML loading, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.training import PRESETS, Protocol, from_dict, from_yaml

TRICKS = ["base", "auxiliary", "drop_path", "cutout", "cutout_drop_path", "darts", "channels_50", "autoaugment",
          "epochs_1500", "all"]


def test_default_is_the_darts_final_training_protocol() -> None:
    p = Protocol()
    assert (p.epochs, p.batch_size, p.channels, p.layers, p.lr, p.weight_decay, p.grad_clip) == (
        600, 96, 36, 20, 0.025, 3e-4, 5.0)
    assert (p.cutout, p.drop_path, p.auxiliary_weight, p.lr_min) == (16, 0.2, 0.4, 0.0)
    assert p.lr_at(0) == pytest.approx(0.025) and p.lr_at(300) == pytest.approx(0.0125)


def test_the_ten_trick_protocols_of_experiment_1_are_presets() -> None:
    protocols = {name: from_dict(name) for name in TRICKS}
    assert len({tuple(sorted(p.to_dict().items() - {("name", p.name)})) for p in protocols.values()}) == 10
    base, darts, everything = protocols["base"], protocols["darts"], protocols["all"]
    assert (base.cutout, base.drop_path, base.auxiliary_weight, base.autoaugment) == (0, 0.0, 0.0, False)
    assert (darts.cutout, darts.drop_path, darts.auxiliary_weight) == (16, 0.2, 0.4)
    assert (everything.channels, everything.autoaugment, everything.epochs) == (50, True, 1500)
    assert set(TRICKS) <= set(PRESETS)


def test_enas_uses_warm_restarts() -> None:
    p = from_dict("enas")
    assert p.lr_at(0) == p.lr_at(10) == p.lr_at(30) == pytest.approx(0.05)
    assert p.lr_at(9) < 0.005 and p.lr_at(29) < 0.005


def test_overrides_and_round_trip() -> None:
    p = from_dict({"preset": "pdarts", "epochs": 10, "seed": 3})
    assert (p.name, p.batch_size, p.drop_path, p.epochs, p.seed) == ("pdarts", 128, 0.3, 10, 3)
    assert from_dict(p.to_dict()) == p


def test_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "p.yml"
    path.write_text("preset: base\nepochs: 2\nsubset: 10\n")
    assert from_yaml(path).replace(name="x") == Protocol(**{**PRESETS["base"], "epochs": 2, "subset": 10, "name": "x"})


@pytest.mark.parametrize("text, message", [
    ("epochs: [1, 2\n", "not valid YAML"),
    ("epoch: 3\n", r"unknown protocol setting\(s\) \['epoch'\]; valid settings: name, epochs"),
    ("epochs: ten\n", "protocol.epochs must be int, got 'ten'"),
    ("cutout: yes\n", "protocol.cutout must be int, got True"),
    ("preset: dart\n", "unknown protocol preset 'dart'; choose one of: "),
    ("drop_path: 1.0\n", r"protocol.drop_path must be in \[0, 1\)"),
    ("layers: 2\n", "protocol.layers must be >= 3"),
    ("- 1\n- 2\n", "must be a preset name or a mapping"),
])
def test_malformed_protocol_yaml_gets_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        from_yaml(path)


def test_missing_protocol_file() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        from_yaml("/nonexistent/protocol.yml")


def test_overlay_changes_only_what_it_names() -> None:
    from nni_nas_bench.training import overlay

    preview = from_dict({"preset": "darts", "epochs": 10, "subset": 50, "seed": 4})
    base = overlay(preview, "base")
    assert (base.name, base.epochs, base.subset, base.seed, base.cutout, base.auxiliary_weight) == (
        "base", 10, 50, 4, 0, 0.0)
    longer = overlay(preview, {"preset": "epochs_1500", "epochs": 25})
    assert (longer.name, longer.epochs, longer.subset) == ("epochs_1500", 25, 50)
    assert overlay(preview, None) is preview
    with pytest.raises(ConfigError, match="unknown protocol setting"):
        overlay(preview, {"epoks": 3})
