"""MANAS conforms to its paper, Lopes, Carlucci, Esperança et al., "MANAS: Multi-Agent Neural Architecture
Search", arXiv 1909.01051 (no code was released), and to SPEC's hyper-parameters (reward baseline 5, γ 0.1,
temperature 1000 → 200, 50 epochs)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nni_nas_bench.errors import ConfigError, GenotypeError
from nni_nas_bench.strategies import create_strategy
from nni_nas_bench.strategies.manas import Agent, Agents, LeastSquares
from search_spaces import create_space
from search_spaces.genotype import Genotype, LayerwiseGenotype, searched_layer


def _bandit(means: list[float], seed: int, steps_per_epoch: int = 100, epochs: int = 50) -> np.ndarray:
    """One agent of 7 actions played as MANAS plays it (SPEC: γ 0.1, T 1000 → 200 over 50 epochs, baseline
    5 %), each step rewarded by a validation-batch accuracy N(mean, 6) % of the action played."""
    manas = create_strategy("manas")
    agent = Agent("normal/edge_0_2", list(range(len(means))))
    rng = np.random.RandomState(seed)
    for epoch in range(epochs):
        temperature = manas.temperature(epoch)
        for _ in range(steps_per_epoch):
            pi = agent.policy(temperature, manas.gamma)
            action = int(rng.choice(len(pi), p=pi))
            agent.update(action, manas.reward(rng.normal(means[action], 6.0)), float(pi[action]))
    return agent.policy(manas.temperature(epochs - 1), manas.gamma)


def test_equally_good_actions_stay_near_uniform() -> None:
    """Paper §3 (Exp3 agents; rewards in [0, 1] as Exp3 assumes): with 7 equally good actions, rewards
    N(70, 6) %, γ 0.1 and T 1000 → 200, no action may take over after 50 epochs. The update in percent
    (a hundred times the scale) put 0.91 of the probability on one action."""
    tops = [_bandit([70.0] * 7, seed).max() for seed in range(2)]
    assert max(tops) < 0.3, tops  # uniform: 1/7 = 0.14


def test_a_clearly_better_action_is_found() -> None:
    """Paper §3: the same agent finds an action 10 points better than the six others."""
    for seed in range(2):
        pi = _bandit([80.0] + [70.0] * 6, seed)
        assert int(np.argmax(pi)) == 0 and pi[0] > 0.4, (seed, pi)


def test_rewards_are_accuracies_in_0_1_less_the_baseline() -> None:
    """Exp3's rewards lie in [0, 1] (paper §3); SPEC's baseline 5 is in accuracy points."""
    manas = create_strategy("manas")
    assert manas.reward(75.0) == pytest.approx(0.70)
    agent = Agent("a", [0, 1])
    agent.update(1, 0.7, 0.5)
    assert agent.rewards.tolist() == pytest.approx([0.0, -0.6])  # loss form: −(1 − r) / π


def test_one_agent_per_edge_and_per_input_decision() -> None:
    """Paper §3: an agent controls an edge and picks its operation. The DARTS cell's node n (2..5) has n
    incoming edges: 2 + 3 + 4 + 5 = 14 edge agents per cell, plus one agent per node choosing its input
    pair. An op is credited to the edge it sits on: the agent of (source, node)."""
    space = create_space("darts")
    decisions = {label: list(m.values) for label, m in space.mutables.simplify().items()}
    agents = Agents(decisions)
    edges = [name for name in agents.by_name if "/edge_" in name]
    assert len(edges) == 2 * 14
    assert sorted(n for n in edges if n.startswith("normal/") and n.endswith("_5")) == [
        f"normal/edge_{s}_5" for s in range(5)]
    assert len(agents.by_name) == 2 * 14 + 2 * 4  # + one input-pair agent per node
    sample, played = agents.play(lambda agent: (len(agent.values) - 1, 1.0))
    # Node 3's last pair is (1, 2): op_3_0 is played by edge 1→3, op_3_1 by edge 2→3.
    assert sample["normal/inputs_3"] == (1, 2)
    names = [agent.label for agent, _, _ in played]
    assert "normal/edge_1_3" in names and "normal/edge_2_3" in names and "normal/edge_0_3" not in names
    assert space.to_genotype(sample) is not None


def test_one_agent_per_edge_in_enas_style_spaces() -> None:
    """ENAS / NSGA-Net spaces choose each unit's input: the op's agent is the one of the chosen edge."""
    space = create_space("enas", n_nodes=2)
    decisions = {label: list(m.values) for label, m in space.mutables.simplify().items()}
    agents = Agents(decisions)
    assert sorted(n for n in agents.by_name if n.startswith("normal/edge_")) == [
        "normal/edge_0_2", "normal/edge_0_3", "normal/edge_1_2", "normal/edge_1_3", "normal/edge_2_3"]


def test_final_architecture_is_sampled_from_the_final_policy_by_default() -> None:
    """Paper §3: the final architecture is sampled from the final policy; ``final: argmax`` is the greedy
    alternative, and ``variant: ls`` (MANAS-LS, the paper's CIFAR-10 entry) picks by its estimates."""
    manas = create_strategy("manas")
    assert manas.final == "sample" and manas.variant == "exp3"
    assert create_strategy("manas", variant="ls").settings["variant"] == "ls"
    with pytest.raises(ConfigError, match="variant"):
        create_strategy("manas", variant="lsq")
    with pytest.raises(ConfigError, match="final"):
        create_strategy("manas", final="best")


def test_manas_ls_assigns_credit_by_least_squares() -> None:
    """MANAS-LS: uniform joint actions, the reward regressed on the one-hot joint action; the estimate
    recovers which action of each agent adds reward, although every agent sees the same total."""
    decisions: dict[str, Any] = {"edge_a": [0, 1, 2], "edge_b": [0, 1]}
    agents = Agents(decisions)
    ls = LeastSquares(agents)
    rng = np.random.RandomState(0)
    for _ in range(400):
        sample, played = agents.play(lambda agent: (int(rng.randint(len(agent.values))), 1.0))
        reward = 0.5 + 0.2 * (sample["edge_a"] == 2) + 0.1 * (sample["edge_b"] == 0) + rng.normal(0, 0.02)
        ls.record(played, reward)
    beta = ls.estimates()
    assert int(np.argmax(beta["edge_a"])) == 2 and int(np.argmax(beta["edge_b"])) == 0
    assert beta["edge_a"][2] - beta["edge_a"][0] == pytest.approx(0.2, abs=0.02)


# ------------------------------------------------------------------------ unique cells per layer
def test_every_layer_has_its_own_agents_by_default() -> None:
    """Paper §4 ("unique cells"): the cell is not shared across layers, so every layer of the 8-cell search
    network has its own agents: 8 × (14 edges + 4 input pairs) of the DARTS cell; ``cells: shared`` keeps
    one normal and one reduction cell (2 × 18)."""
    manas = create_strategy("manas")
    assert manas.cells == "per_layer" and manas.settings["cells"] == "per_layer"
    space = create_space("darts")
    decisions, to_genotype = manas.decisions(space)
    agents = Agents(decisions)
    assert len(agents.by_name) == 8 * (14 + 4)
    assert {name.split("/")[0] for name in agents.by_name} == {f"layer{i}" for i in range(8)}
    sample, _ = agents.play(lambda agent: (0, 1.0))
    genotype = to_genotype(sample)
    assert isinstance(genotype, LayerwiseGenotype) and genotype.layers == 8
    assert space.validate(genotype) is genotype and space.parse(genotype.to_text()) == genotype
    shared, _ = create_strategy("manas", cells="shared").decisions(space)
    assert len(Agents(shared).by_name) == 2 * (14 + 4)
    with pytest.raises(ConfigError, match="cells"):
        create_strategy("manas", cells="unique")


def test_nb201_needs_shared_cells() -> None:
    """NB201's one cell is every layer's: a per-layer search there is refused with the fix."""
    with pytest.raises(ConfigError, match="cells: shared"):
        create_strategy("manas").check_space(create_space("nb201"))
    create_strategy("manas", cells="shared").check_space(create_space("nb201"))


def _layerwise(layers: int) -> LayerwiseGenotype:
    """A per-layer DARTS genotype whose layers differ: node k of layer i reads (OPS[i + k], 0), (OPS[i], 1)."""
    ops = ["max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
           "dil_conv_5x5"]
    cells = [[e for k in range(4) for e in ((ops[(i + k) % 7], 0), (ops[i % 7], 1))] for i in range(layers)]
    return LayerwiseGenotype(cells, [range(2, 6)] * layers)


def test_a_network_of_the_searched_depth_has_the_searched_cell_in_every_layer() -> None:
    """At the searched depth (the 224-px datasets: 8 search and 8 final cells, SPEC) layer i IS cell i:
    the same module as layer i of a two-cell network whose normal and reduction cells are both cell i."""
    space, genotype = create_space("darts"), _layerwise(8)
    net = space.build_network(genotype, C=4, layers=8)
    for i, (edges, concat) in enumerate(zip(genotype.cells, genotype.concats)):
        two_cell = space.build_network(Genotype(edges, concat, edges, concat), C=4, layers=8)
        assert repr(net.cells[i]) == repr(two_cell.cells[i])
    assert repr(net.cells[0]) != repr(net.cells[1])


def test_a_deeper_network_stretches_each_stage() -> None:
    """CIFAR's 20-cell final network after an 8-cell search (SPEC): reductions take the searched reductions
    (layers 2 and 5 → 6 and 13), and each stage's 6 normal cells take its 2 searched ones, 3 each."""
    assert [searched_layer(i, 20, 8) for i in range(20)] == [0, 0, 0, 1, 1, 1, 2, 3, 3, 3, 4, 4, 4, 5,
                                                            6, 6, 6, 7, 7, 7]
    assert [searched_layer(i, 8, 8) for i in range(8)] == list(range(8))
    genotype = _layerwise(8)
    assert genotype.cell_at(13, True, 20) == (genotype.cells[5], genotype.concats[5])
    with pytest.raises(GenotypeError, match="no normal cell"):
        searched_layer(8, 20, 3)  # 3 searched cells: stage 1 (layers 7-12 of 20) has no normal cell


@pytest.mark.parametrize("text, message", [
    ("LayerwiseGenotype(cells=[], concats=[])", "3 to 64 cells"),
    ("LayerwiseGenotype(cells=[[('skip_connect', 0), ('skip_connect', 1)]] * 3, concats=[])", "reads"),
    ("LayerwiseGenotype(cells=[" + ", ".join(["[('skip_connect', 0), ('skip_connect', 1)]"] * 65)
     + "], concats=[range(2, 3)])", "at most 64"),
    ("LayerwiseGenotype(cells=[[('skip_connect', 0), ('skip_connect', 1)]] , concats=[range(2, 3)], x=1)", "reads"),
])
def test_bad_per_layer_genotype_text_gets_one_line(text: str, message: str) -> None:
    with pytest.raises(GenotypeError, match=message):
        create_space("darts", n_nodes=1).parse(text)
