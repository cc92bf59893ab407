"""The NAS-Bench-201 space and its tables: text form, sampler, networks matching NB201's, loader, evaluator.

The tables are the real ones in ../shared/data/nas-bench-201 (never copied); tests that need them skip
when they are absent, and the missing-table error is checked on an empty folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats as sps

from nni_nas_bench.errors import ConfigError, DatasetNotFoundError, GenotypeError
from search_spaces import create_space
from search_spaces.nb201_arch import LABELS, NB201_OPS, NUM_ARCHS, RESNET_CELL, NB201Arch, nb201_mflops, ops_by_code
from tests.conftest import SHARED_DATA

TABLES = SHARED_DATA / "nas-bench-201"
needs_tables = pytest.mark.skipif(not TABLES.is_dir(), reason=f"NAS-Bench-201 tables not found at {TABLES}")


@pytest.fixture(scope="module")
def space():
    return create_space("nb201")


def test_text_form_and_codes_round_trip(space) -> None:
    assert RESNET_CELL.to_text() == "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
    assert RESNET_CELL.op(3, 2) == "skip_connect" and RESNET_CELL.op(2, 0) == "none"
    codes = [NB201Arch.from_code(c) for c in range(NUM_ARCHS)]
    assert len({a.to_text() for a in codes}) == NUM_ARCHS
    assert [a.ops for a in codes] == list(ops_by_code())  # the samplers' table is the codes' cells
    assert all(NB201Arch.from_text(codes[c].to_text()).code == c for c in range(0, NUM_ARCHS, 97))
    assert space.to_genotype(space.to_sample(RESNET_CELL)) == RESNET_CELL
    assert set(space.to_sample(RESNET_CELL)) == set(LABELS) == set(space.mutables)
    assert space.num_architectures() == NUM_ARCHS == 15625


@pytest.mark.parametrize("text, message", [
    ("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|", "3 '\\+'-separated nodes"),
    ("|conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "not an NB201 op"),
    ("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|", "bad input"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "needs 2 inputs"),
])
def test_bad_text_gets_one_clear_error(space, text: str, message: str) -> None:
    with pytest.raises(GenotypeError, match=message):
        space.parse(text)


def test_uniform_sampler_frequencies(space) -> None:
    rng = np.random.RandomState(0)
    samples = [space.random_sample(rng) for _ in range(20000)]
    for label in LABELS:
        counts = [sum(s[label] == op for s in samples) for op in NB201_OPS]
        assert sps.chisquare(counts).pvalue > 1e-3, (label, counts)
    # edges are independent: the pair (edge_1_0, edge_3_2) is uniform over 25 cells too
    pairs = np.bincount([NB201_OPS.index(s["edge_1_0"]) * 5 + NB201_OPS.index(s["edge_3_2"]) for s in samples],
                        minlength=25)
    assert sps.chisquare(pairs).pvalue > 1e-3
    assert space.sample(3) == space.sample(3) and space.sample(3) != space.sample(4)
    rng = np.random.RandomState(5)  # one draw of a code per sample: the code's cell
    assert [space.random_sample(rng) for _ in range(3)] == [
        NB201Arch.from_code(c).to_sample() for c in np.random.RandomState(5).randint(NUM_ARCHS, size=3)]


@needs_tables
def test_child_networks_are_nb201s(space) -> None:
    """Parameter counts equal the table's model size for every cell tried, and FLOPs match a counter."""
    from nni_nas_bench.tabular import load_table
    from nni_nas_bench.training.cost import count_mflops

    table = load_table("cifar10-valid", SHARED_DATA)
    torch.manual_seed(0)
    for index in (table.index_of(RESNET_CELL), 0, 6111):
        arch = table.arch(index)
        net = space.build_network(arch)
        params = sum(p.numel() for p in net.parameters()) / 1e6
        assert params == pytest.approx(table.params_m[index], abs=1e-6), arch
    assert count_mflops(space.build_network(RESNET_CELL), 32) == pytest.approx(nb201_mflops(RESNET_CELL), rel=1e-6)
    assert space.build_network(RESNET_CELL, C=8, num_classes=100, layers=1)(torch.randn(2, 3, 16, 16)).shape == (2, 100)
    with pytest.raises(ConfigError, match="no auxiliary head"):
        space.build_network(RESNET_CELL, auxiliary=True)


def test_supernet_derives_argmax_op_per_edge_none_included(space) -> None:
    net = space.build_supernet(C=4, layers=1, generator=torch.Generator().manual_seed(0))
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    with torch.no_grad():
        net.alpha_normal.zero_()
        for k, op in enumerate(RESNET_CELL.ops):
            net.alpha_normal[k, NB201_OPS.index(op)] = 1.0
    assert net.genotype() == RESNET_CELL
    assert [p is net.alpha_normal for p in net.arch_parameters()] == [True]
    assert all(p is not net.alpha_normal for p in net.weight_parameters())


# -------------------------------------------------------------------------------------------- tables
@needs_tables
def test_tables_rows_and_known_optima() -> None:
    from nni_nas_bench.tabular import load_table

    tables = {d: load_table(d, SHARED_DATA) for d in ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")}
    assert all(len(t) == 15625 for t in tables.values())
    valid = tables["cifar10-valid"].metric("valid")
    assert int(np.argmax(valid)) == 6111 and round(valid.max(), 2) == 91.61
    assert round(tables["cifar100"].metric("test").max(), 2) == 73.51
    assert round(tables["ImageNet16-120"].metric("test").max(), 2) == 47.31
    c10 = tables["cifar10"]
    assert c10.index_of(RESNET_CELL) == 11472 and c10.test[11472] == pytest.approx(93.97)
    assert c10.seconds[11472] == pytest.approx(2 * tables["cifar10-valid"].seconds[11472])  # 50k vs 25k images
    with pytest.raises(ConfigError, match="no valid accuracy"):
        c10.metric("valid")
    # per-seed deviations average to zero per cell and 2 or 3 seeds exist for every cell
    t = tables["cifar100"]
    assert set(np.unique(t.seed_count)) == {2, 3}
    assert np.allclose(np.nanmean(t.seed_dev, axis=1), 0.0, atol=1e-9)


def test_missing_table_names_the_path_and_the_fix(tmp_path: Path) -> None:
    from nni_nas_bench.tabular import TabularEvaluator

    with pytest.raises(DatasetNotFoundError, match=r"nasbench201_cifar100\.csv.*--data-root"):
        TabularEvaluator("cifar100", root=tmp_path)
    with pytest.raises(ConfigError, match="unknown NAS-Bench-201 dataset 'svhn'"):
        TabularEvaluator("svhn", root=tmp_path)


@needs_tables
def test_evaluator_noise_clock_and_speed(space) -> None:
    from nni_nas_bench.tabular import TabularEvaluator, load_table

    table = load_table("cifar10-valid", SHARED_DATA)
    sample = space.to_sample(RESNET_CELL)
    clean = TabularEvaluator(table=table, noise=False)
    m = clean(sample)
    assert m["default"] == table.valid[11472] and m["test_acc"] == table.test[11472] and m["index"] == 11472
    assert clean.clock == m["seconds"] == table.seconds[11472]
    noisy = [TabularEvaluator(table=table, seed=s)(sample)["default"] for s in range(40)]
    allowed = table.valid[11472] + table.seed_dev[11472, : table.seed_count[11472]]
    assert set(np.round(noisy, 9)) <= set(np.round(allowed, 9)) and len(set(noisy)) > 1
    first, second = TabularEvaluator(table=table, seed=7), TabularEvaluator(table=table, seed=7)
    assert [first(sample)["default"] for _ in range(8)] == [second(sample)["default"] for _ in range(8)]
    # queries per second: benchmarks/tabular.py ("evaluator"), never timed here
    assert clean(space.random_sample(np.random.RandomState(0)))["flops"] > 0


def test_nni_source_without_its_database_says_how_to_get_it(tmp_path: Path) -> None:
    import importlib.util

    from nni_nas_bench.errors import NasBenchError
    from nni_nas_bench.tabular import load_table

    if importlib.util.find_spec("peewee") is not None:
        pytest.skip("peewee is installed: NNI's database may be usable here")
    with pytest.raises(NasBenchError, match=r"peewee<4.*download_benchmark"):
        load_table("cifar100", tmp_path, source="nni")
