"""Every registered one-shot strategy does a tiny real search and returns a genotype of its space.

A strategy is one-shot unless its class says ``kind = "multi_trial"`` (those are tested with an
evaluate function, not data). Each one-shot strategy needs an entry in :data:`TINY`: the space it
searches and settings small enough for seconds on one CPU thread (3 cells, 4–8 channels, 1–2 epochs,
a few images per class). A newly registered one-shot strategy without an entry fails
:func:`test_every_one_shot_strategy_has_tiny_settings` with the fix in the message, so no method can
join the registry untested.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from nni_nas_bench.strategies import create_strategy, get_strategy_class, list_strategies
from search_spaces import create_space

# Data shared by all entries: a few images per class, one big evaluation batch.
_DATA = {"subset": 4, "eval_batch_size": 100}

# strategy name -> {"space": (space name, space args), "settings": tiny strategy settings, and optionally
# "build": the space's build_network arguments for a tiny child (default C=4, layers=3)}
TINY: dict[str, dict[str, Any]] = {
    "darts": {"space": ("darts", {}),
              "settings": {"order": 1, "epochs": 1, "layers": 3, "channels": 4, "batch_size": 20, **_DATA}},
    "cnas": {"space": ("darts", {"op_set": "cnas", "n_nodes": 6}),
             "settings": {"epochs": 1, "layers": 3, "channels": 4, "batch_size": 20, **_DATA}},
    "pdarts": {"space": ("darts", {}),
               "settings": {"stage_epochs": 1, "weights_only_epochs": 0, "stage_layers": [3, 3, 3],
                            "channels": 4, "batch_size": 20, **_DATA, "subset": 2}},
    "stacnas": {"space": ("darts", {}),
                "settings": {"epochs": 1, "stage2_epochs": 1, "layers": 3, "stage2_layers": 3, "channels": 4,
                             "batch_size": 20, **_DATA, "subset": 2}},
    "gdas": {"space": ("darts", {}),
             "settings": {"epochs": 1, "layers": 3, "channels": 4, "batch_size": 20, **_DATA}},
    "darts_pt": {"space": ("darts", {"n_nodes": 2}),
                 # no fine-tuning: 12 fine-tunes are 12 more epochs (the selection has its own unit tests)
                 "settings": {"epochs": 1, "layers": 3, "channels": 4, "batch_size": 20, "finetune_epochs": 0,
                              **_DATA, "subset": 2}},
    "enas": {"space": ("enas", {}),
             "settings": {"epochs": 1, "layers": 3, "channels": 4, "batch_size": 20, "controller_steps": 2,
                          "controller_aggregate": 1, "final_samples": 2, "bn_calibration_batches": 2, **_DATA}},
    "manas": {"space": ("darts", {}),
              "settings": {"epochs": 1, "layers": 3, "channels": 4, "batch_size": 20, "bn_calibration_batches": 2,
                           **_DATA}},
    "nao": {"space": ("nao", {}),
            "settings": {"epochs": 1, "layers": 3, "channels": 4, "batch_size": 20, "iterations": 1, "seed_archs": 6,
                         "new_archs": 3, "random_archs": 2, "top_k": 3, "controller_epochs": 3, "final_candidates": 2,
                         "bn_calibration_batches": 2, **_DATA}},
    # the Pixel-1 latency table of ../shared/data (the space's default); a chain of 22 layers, not cells
    "single_path": {"space": ("mobilenet_sp", {}),
                    "settings": {"epochs": 1, "batch_size": 10, "channels": 8, **_DATA},
                    "build": {"C": 8, "layers": 22, "stem": "cifar"}},
}


def one_shot_strategies() -> list[str]:
    """Registered strategies that search with weight sharing on data (not ``kind == "multi_trial"``)."""
    return [n for n in list_strategies() if getattr(get_strategy_class(n), "kind", "one_shot") != "multi_trial"]


def test_every_one_shot_strategy_has_tiny_settings() -> None:
    missing = [n for n in one_shot_strategies() if n not in TINY]
    assert not missing, (
        f"one-shot strategies {missing} have no entry in TINY of tests/test_strategies_oneshot.py: add "
        "{'space': (space name, space args), 'settings': {...}} with 3 cells, 4-8 channels, 1-2 epochs, subset 4"
    )


@pytest.mark.parametrize("name", [n for n in one_shot_strategies() if n in TINY])
def test_tiny_search_returns_a_genotype_of_the_space(name: str, synthetic_root: Path, cache_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNB_CACHE_DIR", str(cache_dir))
    entry = TINY[name]
    space_name, space_args = entry["space"]
    space = create_space(space_name, **space_args)
    strategy = create_strategy(name, seed=0, **entry["settings"])
    result = strategy.search(space, data_root=synthetic_root, dataset="cifar10", device="cpu", output_dir=tmp_path,
                             log=lambda _: None)
    assert space.validate(result.genotype) is result.genotype
    assert space.parse(result.genotype.to_text()) == result.genotype
    assert 0 <= result.valid_acc <= 100 and result.search_seconds > 0
    assert result.alpha_history, f"{name} returned no per-epoch history"
    net = space.build_network(result.genotype, **entry.get("build", {"C": 4, "layers": 3})).eval()
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
