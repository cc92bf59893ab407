"""ENAS, NAO and MANAS: the sampled-path supernet, each method's parts, seeded reproducibility, search trial."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies import create_strategy
from nni_nas_bench.strategies.enas import Controller
from nni_nas_bench.strategies.manas import Agent
from nni_nas_bench.strategies.nao import ArchCodec, EncoderPredictorDecoder
from search_spaces import create_space
from search_spaces.cells import Cell
from search_spaces.path_supernet import CandidateOps, PathSupernet

TINY = {"epochs": 2, "layers": 3, "channels": 4, "batch_size": 20, "subset": 4, "eval_batch_size": 100,
        "bn_calibration_batches": 2}


# ---------------------------------------------------------------------------------- the supernet
@pytest.mark.parametrize("name", ["enas", "darts"])
def test_supernet_runs_only_the_sampled_path(name: str) -> None:
    space = create_space(name)
    net = PathSupernet(space, C=4, layers=3)
    cells = list(net.network.cells)
    assert all(isinstance(c, Cell) and c.out_channels == c.preprocess1[1].out_channels for c in cells)
    assert all(isinstance(e, CandidateOps) and tuple(e) == space.ops for c in cells for node in c.edges for e in node)
    g = space.sample(1)
    net(torch.randn(2, 3, 32, 32), g).sum().backward()
    normal = cells[0]
    used = {(node, src, op) for node in range(space.n_nodes) for op, src in g.normal[2 * node: 2 * node + 2]}
    for node, edges in enumerate(normal.edges):
        for src, ops in enumerate(edges):
            for op, module in ops.items():
                grads = [p.grad for p in module.parameters()]
                if grads:
                    assert all(gr is not None for gr in grads) == ((node, src, op) in used), (node, src, op)


# ------------------------------------------------------------------------------------- ENAS
def test_enas_logits_are_bounded_and_reinforce_learns_a_rewarded_choice() -> None:
    torch.manual_seed(0)
    controller = Controller([3, 4], hidden=16, tanh_constant=1.1, temperature=2.5)
    h = torch.randn(1, 16) * 100
    assert controller.logits(0, h).abs().max() <= 1.1
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(controller.parameters(), lr=0.05)
    baseline = 0.0
    for _ in range(150):
        choices, log_prob, _ = controller.sample(generator)
        reward = float(choices[1] == 2)
        baseline = 0.9 * baseline + 0.1 * reward
        optimizer.zero_grad()
        (-log_prob * (reward - baseline)).backward()
        optimizer.step()
    picks = [controller.sample(generator)[0][1] for _ in range(100)]
    assert picks.count(2) > 60  # from 25 % (uniform over 4) to most samples


def test_enas_sgdr_schedule() -> None:
    enas = create_strategy("enas")
    assert enas.settings["w_nesterov"] and enas.settings["w_restart_period"] == 10
    lrs = [enas.lr_at(e) for e in range(31)]
    assert lrs[0] == pytest.approx(0.05) and lrs[10] == pytest.approx(0.05) and lrs[30] == pytest.approx(0.05)
    assert lrs[9] < lrs[5] < lrs[1] and lrs[29] < lrs[20]


# ------------------------------------------------------------------------------------ MANAS
def test_manas_agent_mixes_exploration_and_favours_rewarded_actions() -> None:
    agent = Agent("normal/op_2_0", ["a", "b", "c", "d"])
    pi = agent.policy(temperature=1000.0, gamma=0.1)
    assert pi == pytest.approx(np.full(4, 0.25))
    rng = np.random.RandomState(0)
    for _ in range(300):
        pi = agent.policy(10.0, 0.1)
        a = int(rng.choice(4, p=pi))
        agent.update(a, 0.5 if a == 1 else 0.1, float(pi[a]))  # rewards in [0, 1]
    pi = agent.policy(10.0, 0.1)
    assert int(np.argmax(pi)) == 1 and pi.min() >= 0.1 / 4 - 1e-12
    manas = create_strategy("manas")
    assert manas.temperature(0) == 1000.0 and manas.temperature(49) == pytest.approx(200.0)
    with pytest.raises(ConfigError, match="gamma"):
        create_strategy("manas", gamma=2.0)


# -------------------------------------------------------------------------------------- NAO
def test_nao_codec_round_trips_and_the_decoder_only_emits_valid_tokens() -> None:
    space = create_space("nao")
    codec = ArchCodec(space)
    assert codec.vocab == 1 + 6 + 5 and codec.length == 40  # NAO: start token, 6 input states, 5 ops
    for seed in range(10):
        g = space.sample(seed)
        assert codec.decode(codec.encode(g)) == g
    torch.manual_seed(0)
    epd = EncoderPredictorDecoder(codec.vocab, codec.mask).eval()
    outputs = epd.encode(torch.tensor([codec.encode(space.sample(0))])) + 10 * torch.randn(1, 20, 96)
    space.validate(codec.decode(epd.generate(outputs)[0].tolist()))
    with pytest.raises(ConfigError, match="ENAS-style space"):
        create_strategy("nao").check_space(create_space("darts"))
    with pytest.raises(ConfigError, match="two-cell space"):
        create_strategy("enas").check_space(create_space("mobilenet_sp"))
    with pytest.raises(ConfigError, match="ENAS-style space"):
        create_strategy("nao").check_space(create_space("nb201"))  # the path supernet builds it; NAO's codec not


def test_nao_gradient_steps_propose_new_architectures(synthetic_root: Path) -> None:
    from nni_nas_bench.strategies.nao import NaoStrategy

    space = create_space("nao")
    nao = NaoStrategy(controller_epochs=30, controller_expand=None, new_archs=5, step_size=10.0)
    codec = ArchCodec(space)
    pool = [space.sample(s) for s in range(20)]
    scores = {g: float(sum(op == "sep_conv_3x3" for op, _ in g.normal)) for g in pool}

    class Ctx:
        device = torch.device("cpu")

    ranked = sorted(pool, key=lambda g: -scores[g])
    epd = nao._fit(Ctx(), codec, ranked, scores, np.random.RandomState(0))  # type: ignore[arg-type]
    new = nao._propose(Ctx(), codec, epd, pool[:5], set(pool))  # type: ignore[arg-type]
    assert 0 < len(new) <= 5 and not set(new) & set(pool)
    for g in new:
        space.validate(g)


# ----------------------------------------------------------------- seeds, search trial, output
@pytest.mark.parametrize("name, space, extra", [
    ("enas", "enas", {"controller_steps": 2, "controller_aggregate": 1, "final_samples": 2}),
    ("manas", "darts", {}),
    ("manas", "darts", {"variant": "ls"}),  # MANAS-LS
])
def test_seeded_searches_are_reproducible(name: str, space: str, extra: dict, synthetic_root: Path,
                                          cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNB_CACHE_DIR", str(cache_dir))
    runs = [create_strategy(name, seed=seed, **TINY, **extra).search(
        create_space(space), data_root=synthetic_root, dataset="cifar10", device="cpu", log=lambda _: None)
        for seed in (3, 3, 4)]
    assert runs[0].genotype == runs[1].genotype and runs[0].valid_acc == runs[1].valid_acc
    assert [r["genotype"] for r in runs[0].alpha_history] == [r["genotype"] for r in runs[1].alpha_history]
    assert runs[2].genotype != runs[0].genotype


def test_search_trial_runs_nao_and_writes_its_history(synthetic_root: Path, cache_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from nni_nas_bench.search_trial import run_search

    monkeypatch.setenv("NNB_CACHE_DIR", str(cache_dir))
    reports: list[dict] = []
    params = {"role": "search", "method": "nao", "dataset": "cifar10", "space": "nao", "space_args": {},
              "search_seed": 1, "search": {**TINY, "iterations": 2, "seed_archs": 6, "new_archs": 3, "top_k": 3,
                                           "random_archs": 2, "controller_epochs": 3, "final_candidates": 2}}
    logs: list[str] = []
    metrics = run_search(params, data_root=synthetic_root, device="cpu", output_dir=tmp_path,
                         report_epoch=reports.append, log=logs.append)
    # NAO proposes after every training block but the last (NAO/train_search.py:558-559): 2 blocks, 1 proposal
    assert sum("nao iteration" in line for line in logs) == 1
    genotype = create_space("nao").parse(metrics["genotype"])
    assert metrics["epochs"] == len(reports) == 2 and all("default" in r for r in reports)
    doc = json.loads((tmp_path / "nao_search.json").read_text())
    assert doc["final_genotype"] == genotype.to_text() and len(doc["epochs"]) == 2
    assert json.loads(metrics["search"])["seed"] == 1


@pytest.mark.slow
def test_nnictl_enas_benchmark_end_to_end(nnictl_runner, synthetic_root: Path, cache_dir: Path,
                                          tmp_path: Path) -> None:
    """ENAS in a real experiment: its search trial, the final training of its genotype and a random
    architecture of the ENAS space, all trained through the enas space's own network builder."""
    from analysis import read_experiment
    from nni_nas_bench.tuners.random_baseline import random_trial_parameters
    from tests.conftest import local_experiment, trial_command

    tiny = {"preset": "quick", "epochs": 1, "channels": 4, "layers": 3, "batch_size": 50, "subset": 5,
            "eval_batch_size": 100, "seed": 1}
    class_args = {"method": "enas", "dataset": "cifar10", "num_searches": 1, "num_random": 1, "search_seed": 0,
                  "arch_seed": 2, "space": "enas", "space_args": {},
                  "search": {**TINY, "epochs": 1, "controller_steps": 2, "final_samples": 2}, "protocol": tiny}
    config = local_experiment("test-benchmark-enas", "BenchmarkTuner", class_args, workdir=tmp_path,
                              command=trial_command(synthetic_root, cache_dir, tmp_path / "checkpoints"))
    experiment = nnictl_runner(config, tmp_path, timeout=600)
    df = read_experiment(experiment)
    assert list(df.status) == ["SUCCEEDED"] * 3, df[["trial_id", "status", "role"]]
    assert sorted(df.role) == ["random", "search", "searched"]
    space = create_space("enas")
    search = df[df.role == "search"].iloc[0]
    searched = df[df.role == "searched"].iloc[0]
    assert searched.genotype == search.genotype and searched.method == "enas"
    space.parse(searched.genotype)
    expected = random_trial_parameters(space, "enas", {}, "cifar10", 2, 0, tiny)["genotype"]
    assert df[df.role == "random"].iloc[0].genotype == expected  # drawn by the ENAS space's own sampler
    assert len(list(experiment.rglob("enas_search.json"))) == 1


def test_weight_sharing_strategy_runs_under_nni_execution_engine(synthetic_root: Path, cache_dir: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """NNI's own API (the base's ``_run``): the strategy searches, then NNI's engine evaluates the found child."""
    import nni
    from nni.nas.evaluator import FunctionalEvaluator
    from nni.nas.execution import SequentialExecutionEngine
    from nni.nas.space import RawFormatModelSpace

    from search_spaces.model_space import CellModelSpace

    monkeypatch.setenv("NNB_CACHE_DIR", str(cache_dir))
    evaluated = []

    def evaluate(model: CellModelSpace) -> None:
        evaluated.append(model.genotype)
        nni.report_final_result(1.0)

    model_space = RawFormatModelSpace.from_model(CellModelSpace("enas", {"n_nodes": 2}, C=4, layers=3),
                                                 FunctionalEvaluator(evaluate))
    # NNI's model space holds two cells: a per-layer search cannot hand its result over (one clear error)
    with pytest.raises(ConfigError, match="cells: shared"):
        create_strategy("manas", seed=0)(model_space, SequentialExecutionEngine())
    strategy = create_strategy("manas", seed=0, dataset="cifar10", data_root=synthetic_root, device="cpu",
                               cells="shared", **{**TINY, "epochs": 1})
    strategy(model_space, SequentialExecutionEngine())
    assert evaluated == [strategy.result.genotype]
    assert next(strategy.list_models()).sample == create_space("enas", n_nodes=2).to_sample(strategy.result.genotype)
