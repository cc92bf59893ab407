"""DARTS (first and second order) searches the NB201 space; the found cell is looked up in the table.

First order on the synthetic CIFAR-shaped folder (fast), second order on real CIFAR-10 (slow: the first
real-data test of a session decodes the JPEG archive into the cache).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import CIFAR10_JPEG, SHARED_DATA

TABLES = SHARED_DATA / "nas-bench-201"
pytestmark = pytest.mark.skipif(not TABLES.is_dir(), reason=f"NB201 tables not found at {TABLES}")
TINY = {"epochs": 1, "channels": 4, "layers": 3, "batch_size": 16, "subset": 4, "eval_batch_size": 100}


REAL = pytest.mark.skipif(not CIFAR10_JPEG.exists(), reason=f"real CIFAR-10 not found at {CIFAR10_JPEG}")


@pytest.mark.parametrize("order, real", [(1, False), pytest.param(2, True, marks=[pytest.mark.slow, REAL])])
def test_tiny_darts_search_of_nb201_returns_a_tabulated_cell(order: int, real: bool, synthetic_root: Path,
                                                            cache_dir: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from nni_nas_bench.strategies import create_strategy
    from nni_nas_bench.tabular import load_table
    from search_spaces import create_space
    from search_spaces.nb201 import EDGES, NB201_OPS, NB201Arch

    monkeypatch.setenv("NNB_CACHE_DIR", str(cache_dir))
    space = create_space("nb201")
    strategy = create_strategy("darts", order=order, seed=0, **TINY)
    result = strategy.search(space, data_root=SHARED_DATA if real else synthetic_root, dataset="cifar10",
                             device="cpu", output_dir=tmp_path, log=lambda _: None)
    cell = result.genotype
    assert isinstance(cell, NB201Arch) and space.parse(cell.to_text()) == cell
    # the cell is the argmax of the learned α, edge by edge
    alpha = torch.tensor(result.alpha_history[-1]["alpha"]["normal"])
    assert alpha.shape == (len(EDGES), len(NB201_OPS))
    assert cell.ops == tuple(NB201_OPS[int(i)] for i in alpha.argmax(dim=1))
    assert result.alpha_history[-1]["alpha"]["reduce"] == []  # NB201's reductions are fixed blocks
    table = load_table("cifar10", SHARED_DATA)
    accuracy = float(table.test[table.index_of(cell)])
    assert 10.0 <= accuracy <= 94.5  # every NB201 cell has a tabulated CIFAR-10 accuracy in this range
    saved = json.loads((tmp_path / "darts_search.json").read_text())
    assert saved["candidate_ops"] == list(NB201_OPS) and saved["epochs"][-1]["genotype"] == cell.to_text()
