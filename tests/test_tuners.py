"""The random-architecture tuner: seeded samples, variants grid, exhaustion, bad classArgs."""

from __future__ import annotations

import pytest
from nni import NoMoreTrialError

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.tuners import RandomBaselineTuner
from search_spaces import create_space


def _drain(tuner: RandomBaselineTuner) -> list[dict]:
    out = []
    while True:
        try:
            out.append(tuner.generate_parameters(len(out)))
        except NoMoreTrialError:
            return out


def test_k_seeded_architectures_then_no_more_trials() -> None:
    params = _drain(RandomBaselineTuner(dataset="cifar10", num_archs=4, seed=3))
    assert [p["arch_index"] for p in params] == [0, 1, 2, 3]
    again = _drain(RandomBaselineTuner(dataset="cifar10", num_archs=6, seed=3))
    assert [p["genotype"] for p in again[:4]] == [p["genotype"] for p in params]  # K does not change arch k
    other = _drain(RandomBaselineTuner(dataset="cifar10", num_archs=4, seed=4))
    assert {p["genotype"] for p in other}.isdisjoint(p["genotype"] for p in params)
    assert all(p["protocol"]["name"] == "darts" and p["protocol"]["epochs"] == 600 for p in params)


def test_variants_train_the_same_architectures_under_each_setting() -> None:
    tuner = RandomBaselineTuner(dataset="cifar10", num_archs=2, study="tricks",
                                variants=[{"protocol": "base"}, {"protocol": "all"},
                                          {"name": "deep", "protocol": {"layers": 24}}])
    params = _drain(tuner)
    assert tuner.num_trials == len(params) == 6
    assert [(p["arch_index"], p["variant"]) for p in params] == [
        (0, "base"), (0, "all"), (0, "deep"), (1, "base"), (1, "all"), (1, "deep")]
    assert len({p["genotype"] for p in params[:3]}) == 1 and params[0]["genotype"] != params[3]["genotype"]
    assert params[0]["protocol"]["cutout"] == 0 and params[1]["protocol"]["epochs"] == 1500
    assert params[2]["protocol"]["layers"] == 24 and params[2]["protocol"]["cutout"] == 16
    assert all(p["study"] == "tricks" for p in params)


def test_op_set_variants_share_the_topology() -> None:
    tuner = RandomBaselineTuner(dataset="cifar10", num_archs=3, variants=[
        {"name": "darts", "space_args": {"op_set": "darts"}}, {"name": "poor", "space_args": {"op_set": "poor"}}])
    params = _drain(tuner)
    for normal, poor in zip(params[::2], params[1::2]):
        space_d, space_p = create_space("darts", op_set="darts"), create_space("darts", op_set="poor")
        g_d, g_p = space_d.parse(normal["genotype"]), space_p.parse(poor["genotype"])
        assert [src for _, src in g_d.normal] == [src for _, src in g_p.normal]
        assert {op for op, _ in g_p.normal} <= set(space_p.ops)


def test_training_seed_variants() -> None:
    params = _drain(RandomBaselineTuner(dataset="cifar10", num_archs=1, train_seed=5,
                                        variants=[{"name": "s0", "train_seed": 0}, {"name": "s1", "train_seed": 1}]))
    assert [p["protocol"]["seed"] for p in params] == [0, 1]
    assert _drain(RandomBaselineTuner(dataset="cifar10", num_archs=1, train_seed=5))[0]["protocol"]["seed"] == 5


@pytest.mark.parametrize("kwargs, message", [
    ({"num_archs": 0}, "num_archs must be a positive integer"),
    ({"variants": [{"protocl": "base"}]}, "variant 0 must be a mapping with keys among"),
    ({"variants": [{"protocol": "base"}, {"protocol": "base"}]}, "variant names must be distinct"),
    ({"variants": [{"space_args": {"op_set": "rich"}}]}, "unknown op set 'rich'"),
    ({"protocol": {"preset": "darts", "epochs": -1}}, "protocol.epochs must be > 0"),
])
def test_bad_class_args(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        assert RandomBaselineTuner(dataset="cifar10", **kwargs).num_trials  # built in a thread: raises its error
