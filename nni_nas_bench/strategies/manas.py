"""MANAS: multi-agent neural architecture search (Lopes, Carlucci, Esperança et al., arXiv 1909.01051).

NAS as a game of many bandit agents, one per edge of the cell (paper §3: an agent controls an edge and
picks its operation), plus one per node for the node's inputs where the space chooses them (DARTS: the
input pair; ENAS / NSGA-Net: each unit's input). An op decision of the space (``<cell>/op_<n>_<k>``) is
played by the agent of the edge its unit sits on once the inputs are drawn, so the credit of an op goes
to that edge and never to "the first edge of node n, whichever it is". Spaces whose decisions already
are edges (NB201) get one agent per decision. Together the agents sample one architecture per step;
there is no architecture optimizer and no mixed edge: the sampled architecture is trained on a batch of
the training half on shared weights (a :class:`~search_spaces.path_supernet.PathSupernet`), then scored on
a batch of the validation half, and that score is the common reward of the agents that played.

``variant: exp3`` (MANAS): each agent plays Exp3 with Boltzmann exploration,

    π(a) = (1 − γ) · softmax(R̃(a) / T) + γ / K,

``K`` the agent's actions, ``T`` decaying linearly per epoch from ``temperature_start`` to
``temperature_end``. The reward is an accuracy in [0, 1], Exp3's setting: ``r = (acc% − b) / 100`` with
``b = reward_baseline`` (SPEC's 5, in percent). ``R̃`` is Exp3's importance-weighted estimate, in its
loss form (Lattimore & Szepesvári, *Bandit Algorithms*, eq. 11.3): ``R̃(a) −= (1 − r) / π(a)`` for the
played action (the "+1 for every action" of the estimator cancels in the softmax). Both forms are
unbiased; the loss form's variance grows with ``(1 − r)²`` instead of ``r²``, which is what keeps equally
good actions near uniform with accuracies around 70 %. The earlier update in percent (``(acc − 5) / π``,
a hundred times the scale) put 0.91 of the probability on one of 7 equal actions; see
tests/conformance/test_manas.py. The final architecture is sampled from the final policy (paper);
``final: argmax`` takes each agent's most probable action instead.

``cells: per_layer`` (the paper: "unique cells" in every layer, default): every layer of the ``layers``-cell
search network has its own agents (``layer3/edge_1_4`` …) and the result is a
:class:`~search_spaces.genotype.LayerwiseGenotype` of ``layers`` cells; a deeper final network (CIFAR's 20
cells after the 8-cell search) stretches each stage's searched cells over its own
(:func:`~search_spaces.genotype.searched_layer`). ``cells: shared`` searches one normal and one reduction
cell, as every other method of the DARTS space (and the only choice on NB201, whose cell is one for all).

``variant: ls`` (MANAS-LS, the paper's CIFAR-10 entry): agents sample uniformly, every step's joint
action and reward are recorded, and the reward is regressed on the one-hot joint actions by least
squares (credit assignment); the final architecture takes each agent's action of highest estimate.

MANAS's code was never released (SPEC "Known defects"); the numbers are SPEC's: reward baseline 5, γ 0.1
(SPORT8 0.07, FLOWERS102 0.05, MIT67 0.01: set per dataset in the YAMLs), temperature 1000 → 200 (SPORT8
300 → 100, MIT67 5000 → 2000); 50 epochs, batch 64, 8 cells, 16 channels, and DARTS's shared-weight
optimizer (SGD 0.025 cosine → 0.001, momentum 0.9, weight decay 3e-4, clip 5).
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import numpy as np

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies.checks import check_number
from nni_nas_bench.strategies.weight_sharing import SearchContext, WeightSharingStrategy
from search_spaces.genotype import Genotype, LayerwiseGenotype, parse_genotype

_OP = re.compile(r"^(?P<cell>.+)/op_(?P<node>\d+)_(?P<unit>\d+)$")
VARIANTS = ("exp3", "ls")
FINALS = ("sample", "argmax")
CELLS = ("per_layer", "shared")


class Agent:
    """One Exp3/Boltzmann bandit: importance-weighted reward estimates and a mixed policy."""

    def __init__(self, label: str, values: list[Any]):
        self.label, self.values = label, list(values)
        self.rewards = np.zeros(len(self.values))

    def policy(self, temperature: float, gamma: float) -> np.ndarray:
        z = self.rewards / temperature
        z = np.exp(z - z.max())
        return (1 - gamma) * z / z.sum() + gamma / len(self.values)

    def update(self, action: int, reward: float, prob: float) -> None:
        """Exp3's loss-form estimate for a reward in [0, 1] of ``action`` played with probability ``prob``."""
        self.rewards[action] -= (1.0 - reward) / prob


def edge_of(label: str, sample: dict[str, Any]) -> str | None:
    """The edge (``<cell>/edge_<source>_<node>``) an op decision sits on, given the inputs in ``sample``."""
    m = _OP.match(label)
    if m is None:
        return None
    cell, node, unit = m["cell"], m["node"], int(m["unit"])
    if f"{cell}/inputs_{node}" in sample:          # DARTS: the node's input pair
        return f"{cell}/edge_{sample[f'{cell}/inputs_{node}'][unit]}_{node}"
    if f"{cell}/input_{node}_{unit}" in sample:    # ENAS / NSGA-Net: the unit's own input
        return f"{cell}/edge_{sample[f'{cell}/input_{node}_{unit}']}_{node}"
    return None


class Agents:
    """The agents of a space: one per edge for ops, one per input decision; plays one joint action."""

    def __init__(self, decisions: dict[str, list[Any]]):
        self.decisions = decisions
        self.inputs = [label for label in decisions if _OP.match(label) is None]
        self.ops = [label for label in decisions if _OP.match(label) is not None]
        self.by_name: dict[str, Agent] = {label: Agent(label, decisions[label]) for label in self.inputs}
        for label in self.ops:
            for edge in self._edges(label):
                self.by_name.setdefault(edge, Agent(edge, decisions[label]))

    def _edges(self, label: str) -> list[str]:
        """Every edge an op decision can sit on (one per source its node may read)."""
        m = _OP.match(label)
        assert m is not None
        cell, node, unit = m["cell"], m["node"], int(m["unit"])
        pair, single = f"{cell}/inputs_{node}", f"{cell}/input_{node}_{unit}"
        if pair in self.decisions:
            sources = sorted({p[unit] for p in self.decisions[pair]})
        elif single in self.decisions:
            sources = list(self.decisions[single])
        else:
            return [label]
        return [f"{cell}/edge_{s}_{node}" for s in sources]

    def agent_of(self, label: str, sample: dict[str, Any]) -> Agent:
        return self.by_name[edge_of(label, sample) or label]

    def play(self, choose: Any) -> tuple[dict[str, Any], list[tuple[Agent, int, float]]]:
        """A joint action: ``choose(agent) -> (action, probability)`` for inputs first, then each unit's edge."""
        sample: dict[str, Any] = {}
        played: list[tuple[Agent, int, float]] = []
        for label in self.inputs + self.ops:
            agent = self.by_name[label] if label in self.inputs else self.agent_of(label, sample)
            action, prob = choose(agent)
            sample[label] = agent.values[action]
            played.append((agent, action, prob))
        return sample, played


class ManasStrategy(WeightSharingStrategy):
    """MANAS over a cell space (the DARTS space in the benchmark) with SPEC's CIFAR defaults."""

    setting_names = (*WeightSharingStrategy.setting_names, "reward_baseline", "gamma", "temperature_start",
                     "temperature_end", "variant", "final", "cells")

    name = "manas"

    def __init__(self, *, epochs: int = 50, batch_size: int = 64, layers: int = 8, channels: int = 16,
                 w_lr: float = 0.025, w_lr_min: float = 0.001, w_weight_decay: float = 3e-4,
                 reward_baseline: float = 5.0, gamma: float = 0.1, temperature_start: float = 1000.0,
                 temperature_end: float = 200.0, variant: str = "exp3", final: str = "sample",
                 cells: str = "per_layer", **common: Any):
        super().__init__(epochs=epochs, batch_size=batch_size, layers=layers, channels=channels, w_lr=w_lr,
                         w_lr_min=w_lr_min, w_weight_decay=w_weight_decay, **common)
        self.reward_baseline = check_number(self.name, "reward_baseline", reward_baseline, -100.0)
        self.gamma = check_number(self.name, "gamma", gamma)
        if self.gamma > 1:
            raise ConfigError(f"manas.gamma (the uniform exploration share) must be in [0, 1], got {gamma!r}")
        self.temperature_start = check_number(self.name, "temperature_start", temperature_start, 1e-9)
        self.temperature_end = check_number(self.name, "temperature_end", temperature_end, 1e-9)
        if variant not in VARIANTS:
            raise ConfigError(f"manas.variant must be one of {VARIANTS} (exp3: MANAS, ls: MANAS-LS), got {variant!r}")
        if final not in FINALS:
            raise ConfigError(f"manas.final must be one of {FINALS} (sample: from the final policy, as the paper), "
                              f"got {final!r}")
        if cells not in CELLS:
            raise ConfigError(f"manas.cells must be one of {CELLS} (per_layer: a cell per layer, as the paper; "
                              f"shared: one normal and one reduction cell), got {cells!r}")
        self.variant, self.final, self.cells = variant, final, cells

    def temperature(self, epoch: int) -> float:
        """Linear decay over the epochs, from ``temperature_start`` (first) to ``temperature_end`` (last)."""
        t = epoch / max(self.epochs - 1, 1)
        return self.temperature_start + t * (self.temperature_end - self.temperature_start)

    def reward(self, accuracy: float) -> float:
        """The bandit reward of a validation-batch accuracy (%): in [0, 1] less the baseline, as Exp3 assumes."""
        return (accuracy - self.reward_baseline) / 100.0

    def read_architecture(self, text: str) -> Genotype | LayerwiseGenotype:
        return parse_genotype(text)  # either form, as ``cells`` says

    def _run(self) -> None:
        """As an NNI strategy: NNI's model space (``CellModelSpace``) holds two cells, so only ``cells: shared``."""
        if self.cells == "per_layer":
            raise ConfigError("manas.cells: per_layer finds a cell per layer, which NNI's two-cell model space "
                              "cannot hold: run it through the suite's tuner (experiments/<dataset>/manas.yml) or "
                              "set cells: shared")
        super()._run()

    def check_space(self, space: Any) -> None:
        """Per-layer cells need a cell space (NB201's one cell is every layer's: ``cells: shared`` there)."""
        super().check_space(space)
        if self.cells == "per_layer" and not hasattr(space, "layer_decisions"):
            raise ConfigError(f"manas.cells: per_layer needs a cell space (darts, enas, nao, nsganet); {space!r} "
                              "has one cell for every layer: set cells: shared")

    def decisions(self, space: Any) -> tuple[dict[str, list[Any]], Any]:
        """The agents' decisions ``{label: values}`` and the map from a joint action to its genotype."""
        if self.cells == "per_layer":
            return space.layer_decisions(self.layers), partial(space.to_layerwise_genotype, layers=self.layers)
        return {label: list(m.values) for label, m in space.mutables.simplify().items()}, space.to_genotype

    def _search(self, ctx: SearchContext) -> tuple[Genotype | LayerwiseGenotype, float]:
        from nni_nas_bench.data._seeding import derive_seed

        decisions, to_genotype = self.decisions(ctx.space)
        agents = Agents(decisions)
        rng = np.random.RandomState(derive_seed(self.name, "agents", self.seed) % (2**32))
        played: list[tuple[Agent, int, float]] = []
        ls = LeastSquares(agents) if self.variant == "ls" else None
        rewards: list[float] = []

        def greedy() -> Genotype | LayerwiseGenotype:
            score = ls.estimates() if ls is not None else {n: a.rewards for n, a in agents.by_name.items()}
            sample, _ = agents.play(lambda agent: (int(np.argmax(score[agent.label])), 1.0))
            return to_genotype(sample)

        def propose(temperature: float) -> Genotype | LayerwiseGenotype:
            def choose(agent: Agent) -> tuple[int, float]:
                if ls is not None:  # MANAS-LS explores uniformly
                    return int(rng.randint(len(agent.values))), 1.0 / len(agent.values)
                pi = agent.policy(temperature, self.gamma)
                action = int(rng.choice(len(pi), p=pi))
                return action, float(pi[action])

            sample, plays = agents.play(choose)
            played[:] = plays
            return to_genotype(sample)

        def after_step(genotype: Genotype | LayerwiseGenotype) -> None:
            accuracy = self.batch_accuracy(ctx, genotype)
            r = self.reward(accuracy)
            if ls is not None:
                ls.record(played, r)
            else:
                for agent, action, prob in played:
                    agent.update(action, r, prob)
            rewards.append(accuracy)

        temperature = self.temperature_start
        for epoch in range(self.epochs):
            temperature = self.temperature(epoch)
            rewards.clear()
            row: dict[str, Any] = {"epoch": epoch + 1, **self.train_epoch(ctx, epoch, partial(propose, temperature),
                                                                          after_step=after_step)}
            best = greedy()
            row.update({"valid_acc": self.valid_accuracy(ctx, best), "genotype": best.to_text(),
                        "temperature": temperature, "mean_reward": float(np.mean(rewards))})
            self.end_epoch(ctx, row)
        if ls is None and self.final == "sample":
            chosen = propose(temperature)  # one draw of the final policy (paper)
            return chosen, self.valid_accuracy(ctx, chosen)
        return greedy(), ctx.history[-1]["valid_acc"]


class LeastSquares:
    """MANAS-LS's credit assignment: reward ≈ Σ over the played agents of β[agent, action], by least squares."""

    def __init__(self, agents: Agents):
        self.agents = agents
        offsets, total = {}, 0
        for name, agent in agents.by_name.items():
            offsets[name], total = total, total + len(agent.values)
        self.offsets, self.columns = offsets, total
        self.rows: list[list[int]] = []
        self.rewards: list[float] = []

    def record(self, played: list[tuple[Agent, int, float]], reward: float) -> None:
        self.rows.append([self.offsets[agent.label] + action for agent, action, _ in played])
        self.rewards.append(reward)

    def estimates(self) -> dict[str, np.ndarray]:
        """β per agent (zeros before any data); the minimum-norm solution of the one-hot regression."""
        beta = np.zeros(self.columns)
        if self.rows:
            X = np.zeros((len(self.rows), self.columns))
            for i, row in enumerate(self.rows):
                np.add.at(X[i], row, 1.0)
            beta = np.linalg.lstsq(X, np.asarray(self.rewards), rcond=None)[0]
        return {name: beta[o: o + len(self.agents.by_name[name].values)] for name, o in self.offsets.items()}
