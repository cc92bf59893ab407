"""DARTS's behaviour on a problem with a known best op, the DARTS variants' own rules (PDARTS pruning and
skip limit, StacNAS groups, DARTS-PT selection), the supernet's op subsets, and resuming a killed search."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from nni_nas_bench.data import get_dataset_info
from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies import create_strategy
from nni_nas_bench.strategies.darts import SearchRun
from nni_nas_bench.strategies.darts_pt import select_inputs, select_op
from nni_nas_bench.strategies.pdarts import limit_skip_connects, prune_edge_ops, skip_dropout_rate
from nni_nas_bench.strategies.stacnas import DARTS_GROUPS, group_of, stage1_edge_ops, stage2_edge_ops
from search_spaces import create_space
from search_spaces.supernet import DartsSupernet, MixedOp, edge_offsets, num_edges


class _Loader:
    """An in-memory loader with the project's loader interface (``set_epoch`` + per-epoch seeded order)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int):
        self.x, self.y, self.batch_size, self.seed, self.epoch = x, y, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(self.seed * 1000 + self.epoch))
        for i in range(0, len(order), self.batch_size):
            yield self.x[order[i:i + self.batch_size]], self.y[order[i:i + self.batch_size]]


def _one_hot(index: int, size: int) -> torch.Tensor:
    return nn.functional.one_hot(torch.tensor(index), size).float()


# ------------------------------------------------------------------------------- DARTS behaviour
@pytest.mark.parametrize("planted", ["max_pool_3x3", "avg_pool_3x3"])
def test_darts_alpha_finds_the_op_that_generated_the_labels(planted: str) -> None:
    """A problem whose best op is known: the labels are computed by a teacher supernet whose every edge is
    the ``planted`` op, and the student supernet shares the teacher's (frozen) weights, so α = planted op
    everywhere reproduces the labels exactly and any other op changes the function. Freezing w (lr 0) is
    what makes the best op unique (trainable convolutions could fit any labels); what is tested is DARTS's
    α machinery (gradient, optimizer, masked softmax mixing, epoch loop, derivation): after 3 epochs the
    derived genotype is the planted op on every edge (seen for seeds 0-4 with max-pool). Two planted ops,
    because one alone could win by a bias of DARTS for it (parameter-free ops are known to win early).
    """
    space = create_space("darts", n_nodes=2)
    ops = space.candidate_ops
    torch.manual_seed(0)
    student = DartsSupernet(space, C=4, layers=3)
    teacher = DartsSupernet(space, C=4, layers=3)
    teacher.load_state_dict(student.state_dict())
    for cell in ("normal", "reduce"):
        for row in range(num_edges(2)):
            teacher.set_edge_weights(cell, row, _one_hot(ops.index(planted), len(ops)))
    x = torch.randn(512, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # batch statistics, as the student's search forwards use them
        logits = torch.cat([teacher.train()(x[i:i + 64]) for i in range(0, 512, 64)])
    y = (logits - logits.mean(0)).argmax(1)  # centred: all ten classes occur
    assert len(y.unique()) == 10

    strategy = create_strategy("darts", order=1, epochs=3, batch_size=64, layers=3, channels=4, w_lr=0.0,
                               w_lr_min=0.0, w_weight_decay=0.0, alpha_lr=0.1, alpha_weight_decay=0.0)
    run = SearchRun(space, get_dataset_info("cifar10"), torch.device("cpu"), _Loader(x[:256], y[:256], 64, 1),
                    _Loader(x[256:], y[256:], 64, 2), _Loader(x[256:320], y[256:320], 64, 3), None, None,
                    lambda _: None, None)
    strategy.train_supernet(student, run, epochs=3)
    weights = student.alpha_weights()
    keep = [i for i, op in enumerate(ops) if op != "none"]  # what the derivation ranks
    for cell in ("normal", "reduce"):
        best = [ops[keep[i]] for i in weights[cell][:, keep].argmax(1).tolist()]
        assert best == [planted] * num_edges(2), (cell, best)
    genotype = student.genotype()
    assert {op for op, _ in genotype.normal + genotype.reduce} == {planted}


# ------------------------------------------------------------------------------ supernet subsets
def test_supernet_builds_only_each_edges_ops_and_masks_the_rest() -> None:
    space = create_space("darts", n_nodes=2)
    rows = [["none", "skip_connect"], ["sep_conv_3x3", "max_pool_3x3"], ["none"], ["dil_conv_5x5"],
            list(space.candidate_ops)]
    net = DartsSupernet(space, C=4, layers=3, edge_ops={"normal": rows, "reduce": rows})
    first = [e for node in net.network.cells[0].edges for e in node]
    assert [len(e.ops) for e in first] == [2, 2, 1, 1, 8] and all(isinstance(e, MixedOp) for e in first)
    w = net.edge_weights("normal")
    allowed = net.mask_normal
    assert torch.all(w[~allowed] == 0) and torch.allclose(w.sum(1), torch.ones(5))
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)  # a cut edge ('none' only) still gives a zero tensor
    g = net.genotype()
    assert all(op in rows[edge_offsets(2)[i // 2] + src] for i, (op, src) in enumerate(g.normal))
    with pytest.raises(ValueError, match="non-empty subset"):
        DartsSupernet(space, C=4, layers=3, edge_ops={"normal": [["conv_9x9"]] * 5, "reduce": rows})


# ------------------------------------------------------------------------------------- PDARTS
def test_pdarts_defaults_follow_spec() -> None:
    s = create_strategy("pdarts")
    assert (s.stage_layers, s.keep_ops, s.skip_dropout, s.epochs, s.weights_only_epochs) == \
        ([5, 11, 17], [5, 3], [0.0, 0.4, 0.7], 25, 10)
    assert (s.order, s.batch_size, s.alpha_lr, s.max_skip) == (1, 96, 6e-4, 2)
    assert create_strategy("pdarts", skip_dropout=[0.1, 0.2, 0.3]).skip_dropout == [0.1, 0.2, 0.3]
    with pytest.raises(ConfigError, match="keep_ops needs one positive op count per stage but the last"):
        create_strategy("pdarts", keep_ops=[5])


def test_pdarts_skip_dropout_schedule() -> None:
    assert skip_dropout_rate(0.7, 10, 25, 10) == pytest.approx(0.7)  # first α epoch: the base rate
    assert skip_dropout_rate(0.7, 15, 25, 10) == pytest.approx(0.7 * torch.exp(torch.tensor(-1.0)).item())
    assert skip_dropout_rate(0.7, 0, 25, 10) == pytest.approx(0.7 * 24 / 25)  # weights-only: linear, below p
    assert skip_dropout_rate(0.0, 12, 25, 10) == 0.0


def test_pdarts_pruning_keeps_the_strongest_ops_per_edge() -> None:
    ops = create_space("darts", n_nodes=2).candidate_ops
    full = [list(ops) for _ in range(5)]
    w = torch.rand(5, 8, generator=torch.Generator().manual_seed(0))
    pruned = prune_edge_ops({"normal": full, "reduce": full}, ops, {"normal": w, "reduce": w}, keep=3)
    for row, kept in enumerate(pruned["normal"]):
        assert set(kept) == {ops[i] for i in w[row].topk(3).indices.tolist()}
        assert kept == [op for op in ops if op in kept]  # candidate order
    again = prune_edge_ops(pruned, ops, {"normal": w, "reduce": w}, keep=1)  # only among the survivors
    assert again["normal"] == [[ops[int(w[r].argmax())]] for r in range(5)]


def test_pdarts_final_normal_cell_has_at_most_two_skip_connects() -> None:
    space = create_space("darts")
    ops = space.candidate_ops
    skip, sep = ops.index("skip_connect"), ops.index("sep_conv_3x3")
    w = torch.full((14, 8), 0.01)
    offsets = edge_offsets(4)
    strength = {0: (0.9, 0.8), 1: (0.7, 0.6), 2: (0.5, 0.4), 3: (0.3, 0.2)}
    for node, (a, b) in strength.items():  # every node's inputs 0 and 1: skip-connects, sep conv second
        for src, s in ((0, a), (1, b)):
            w[offsets[node] + src, skip] = s
            w[offsets[node] + src, sep] = s / 2
    plain = limit_skip_connects(space, w, w, max_skip=8)
    assert [op for op, _ in plain.normal].count("skip_connect") == 8
    g = limit_skip_connects(space, w, w, max_skip=2)
    normal = list(g.normal)
    assert [op for op, _ in normal].count("skip_connect") == 2
    assert normal[:2] == [("skip_connect", 0), ("skip_connect", 1)]  # the two strongest skips stay
    assert g.reduce == plain.reduce  # the limit is on the normal cell only
    assert space.validate(g) is g


# ------------------------------------------------------------------------------------ StacNAS
def test_stacnas_groups_and_edge_ops() -> None:
    space = create_space("darts", n_nodes=2)
    owner = group_of(DARTS_GROUPS)
    assert owner["avg_pool_3x3"] == owner["max_pool_3x3"] == "pooling" and owner["sep_conv_5x5"] == "separable"
    assert set(owner) == set(space.ops)  # the groups partition DARTS's ops
    with pytest.raises(ConfigError, match="in both"):
        group_of({"a": ["skip_connect"], "b": ["skip_connect"]})
    stage1 = stage1_edge_ops(space.candidate_ops, DARTS_GROUPS, num_edges(2))
    assert stage1["normal"][0] == ["max_pool_3x3", "skip_connect", "sep_conv_3x3", "dil_conv_3x3", "none"]
    # stage 2: every edge (none cut) mixes the group of its largest raw stage-1 α, plus none
    alpha = torch.full((num_edges(2), len(space.candidate_ops)), float("-inf"))
    reps = [space.candidate_ops.index(op) for op in stage1["normal"][0]]
    alpha[:, reps] = torch.tensor([0.1, 0.2, 0.3, 0.4, 9.0])  # none strongest everywhere: never chosen
    alpha[0, reps[2]], alpha[3, reps[0]], alpha[4, reps[1]] = 1.0, 1.0, 1.0
    stage2 = stage2_edge_ops({"normal": alpha, "reduce": alpha}, space.candidate_ops, DARTS_GROUPS)
    assert stage2["normal"] == [["sep_conv_3x3", "sep_conv_5x5", "none"], ["dil_conv_3x3", "dil_conv_5x5", "none"],
                                ["dil_conv_3x3", "dil_conv_5x5", "none"], ["max_pool_3x3", "avg_pool_3x3", "none"],
                                ["skip_connect", "none"]]
    # whatever α the stage-2 supernet ends with, each genotype edge's op is of that edge's group
    net = DartsSupernet(space, C=4, layers=3, edge_ops=stage2, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        net.alpha_normal.normal_(0, 3, generator=torch.Generator().manual_seed(4))
    g = net.genotype()
    offsets = edge_offsets(2)
    assert all(op in stage2["normal"][offsets[i // 2] + src] for i, (op, src) in enumerate(g.normal))
    with pytest.raises(ConfigError, match="non-empty op lists"):
        create_strategy("stacnas", groups={"x": []})
    s = create_strategy("stacnas")
    assert (s.epochs, s.layers, s.stage2_epochs, s.stage2_layers) == (100, 14, 100, 20)


# ------------------------------------------------------------------------------------ DARTS-PT
def _planted(net: DartsSupernet, x: torch.Tensor, change: dict[tuple[str, int], torch.Tensor]) -> torch.Tensor:
    """The supernet's logits with some edge rows replaced (the teacher), its own rows restored after."""
    saved = {key: getattr(net, f"fixed_{key[0]}")[key[1]].clone() for key in change}
    for (cell, row), value in change.items():
        net.set_edge_weights(cell, row, value)
    with torch.no_grad():
        out = net(x)
    for (cell, row), value in saved.items():
        net.set_edge_weights(cell, row, None if torch.isnan(value).any() else value)
    return out


def test_darts_pt_keeps_the_op_whose_removal_hurts_most() -> None:
    """The edge's function is defined by a planted op: the score is how close the supernet's output stays to
    that of the supernet whose edge is the planted op alone. Masking the planted op moves it furthest away,
    although α ranks another op higher on that edge (so this is not α's argmax in disguise)."""
    space = create_space("darts", n_nodes=2)
    ops = list(space.candidate_ops)
    torch.manual_seed(0)
    net = DartsSupernet(space, C=4, layers=3).eval()
    x = torch.randn(16, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    row = 3
    mix = torch.full((len(ops),), 0.04)
    mix[ops.index("sep_conv_3x3")] = 0.35  # the planted op
    mix[ops.index("avg_pool_3x3")] = 0.41  # α's favourite
    mix /= mix.sum()
    net.set_edge_weights("normal", row, mix)
    target = _planted(net, x, {("normal", row): _one_hot(ops.index("sep_conv_3x3"), len(ops))})

    def score() -> float:
        with torch.no_grad():
            return -float(((net(x) - target) ** 2).mean())

    op, scores = select_op(net, "normal", row, score)
    assert op == "sep_conv_3x3" and set(scores) == set(ops) - {"none"}
    assert scores["sep_conv_3x3"] == min(scores.values())
    assert torch.equal(net.fixed_normal[row], _one_hot(ops.index("sep_conv_3x3"), len(ops)))  # decided


def test_darts_pt_keeps_the_two_inputs_whose_removal_hurts_most() -> None:
    space = create_space("darts", n_nodes=2)
    torch.manual_seed(0)
    net = DartsSupernet(space, C=4, layers=3).eval()
    x = torch.randn(16, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    first = edge_offsets(2)[1]  # node 3 has inputs 0, 1, 2 on rows first .. first + 2
    zero = torch.zeros(len(space.candidate_ops))
    target = _planted(net, x, {("normal", first + 1): zero})  # the node's true inputs: 0 and 2

    def score() -> float:
        with torch.no_grad():
            return -float(((net(x) - target) ** 2).mean())

    kept, scores = select_inputs(net, "normal", 1, score)
    assert kept == [0, 2] and max(scores, key=scores.get) == 1
    assert torch.equal(net.fixed_normal[first + 1], zero)  # the cut edge stays cut
    assert torch.isnan(net.fixed_normal[first]).all() and torch.isnan(net.fixed_normal[first + 2]).all()
    assert [src for _, src in net.genotype().normal[2:]] == [0, 2]


def test_darts_pt_defaults() -> None:
    s = create_strategy("darts_pt")
    assert (s.finetune_epochs, s.epochs, s.layers, s.batch_size, s.order) == (5, 50, 8, 64, 1)
    with pytest.raises(ConfigError, match="finetune_epochs"):
        create_strategy("darts_pt", finetune_epochs=-1)


# ------------------------------------------------------------------------------------- resume
class _Killed(Exception):
    pass


# name -> (n_nodes, settings, kill after this epoch, what the resumed run logs). DARTS, first order: the
# momentum and Adam states, RNG and data order are what a resume must restore; PDARTS: a finished stage is
# reloaded (its α decides the next stage's ops) and the next one trained; DARTS-PT (1 node: 2 decisions,
# each of one normal and one reduction edge, in a tuning phase of 1·(2 − 1) + 1 = 2 epochs): decisions live in
# the supernet's state, so the reloaded phase continues the selection where it stopped.
RESUME_CASES = {
    "darts": (2, {"order": 1, "epochs": 3, "layers": 3}, 2, "resumed search after epoch 2"),
    "pdarts": (2, {"stage_epochs": 1, "weights_only_epochs": 0, "stage_layers": [3, 3], "keep_ops": [3],
                   "skip_dropout": [0.0, 0.4]}, 1, "resumed stage1 after epoch 1"),
    "darts_pt": (1, {"epochs": 1, "layers": 3, "finetune_epochs": 1}, 2, "resumed tune after epoch 1"),
    # GDAS: the Gumbel noise comes from the checkpointed RNG, so the resumed run draws the same samples
    "gdas": (2, {"epochs": 3, "layers": 3}, 2, "resumed search after epoch 2"),
}


@pytest.mark.parametrize("name", sorted(RESUME_CASES))
def test_killed_search_resumes_with_the_same_alpha_history(name: str, synthetic_root: Path, cache_dir: Path,
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNB_CACHE_DIR", str(cache_dir))
    n_nodes, method_settings, kill_at, message = RESUME_CASES[name]
    space = create_space("darts", n_nodes=n_nodes)
    settings = {**method_settings, "channels": 4, "batch_size": 10, "subset": 2, "eval_batch_size": 100,
                "alpha_lr": 0.05, "seed": 3}
    kwargs = {"data_root": synthetic_root, "dataset": "cifar10", "device": "cpu", "log": lambda _: None}
    whole = create_strategy(name, **settings).search(space, **kwargs)

    def kill(row: dict) -> None:
        if row["epoch"] == kill_at:
            raise _Killed

    checkpoints = tmp_path / "ckpt"
    with pytest.raises(_Killed):
        create_strategy(name, checkpoint_dir=checkpoints, **settings).search(space, report_epoch=kill, **kwargs)
    logs: list[str] = []
    resumed = create_strategy(name, checkpoint_dir=checkpoints, **settings).search(
        space, **{**kwargs, "log": logs.append})
    assert any(message in line for line in logs)
    assert [r["alpha"] for r in resumed.alpha_history] == [r["alpha"] for r in whole.alpha_history]
    assert resumed.genotype == whole.genotype and len(resumed.alpha_history) == len(whole.alpha_history)
    with pytest.raises(ConfigError, match="other settings"):
        create_strategy(name, checkpoint_dir=checkpoints, **{**settings, "alpha_lr": 0.01}).search(space, **kwargs)
