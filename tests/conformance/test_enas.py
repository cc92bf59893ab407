"""ENAS conformance: the suite's ENAS against the code the benchmark ran.

References (facts only, no code copied):
- melodyguan/enas @ 4bcfd73b524627ea96574e5fed33da74bc7855d5 (the benchmark's ``ENASTF`` for CIFAR is this code);
- antoyang/NAS-Benchmark @ c2758da73192d408aad458768f26d3537dd78c40 (``ENASTF/README.md`` commands,
  ``ENASPytorch`` for the 224-px datasets).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import yaml

from nni_nas_bench.data import GpuBatchLoader, TensorSplit, get_dataset_info
from nni_nas_bench.strategies import create_strategy
from nni_nas_bench.strategies.enas import CellController, Controller, EnasStrategy
from nni_nas_bench.strategies.weight_sharing import plain_valid_loader
from nni_nas_bench.training.protocol import from_dict
from search_spaces import create_space
from search_spaces.genotype import Genotype
from search_spaces.path_supernet import PathSupernet

ROOT = Path(__file__).resolve().parents[2]

# Normal cell: node 2 reads 1 twice, node 3 reads 2 and 1 -> cell input 0 is never read (and node 3 neither).
# Reduce cell: nodes read 0 only -> cell input 1 and node 3 are unread.
_N = [("sep_conv_3x3", 1), ("identity", 1), ("max_pool_3x3", 2), ("avg_pool_3x3", 1)]
_R = [("sep_conv_5x5", 0), ("identity", 0), ("max_pool_3x3", 0), ("sep_conv_3x3", 2)]


def test_cell_output_concatenates_unused_cell_inputs() -> None:
    """melodyguan/enas src/cifar10/micro_child.py:426-431 and :637-665 count the uses of all num_cells + 2
    states (cell inputs included) and concatenate those used 0 times; :369-401 (_fixed_combine) halves an
    unused input of a reduction cell with a factorised reduction. NSGA-Net concatenates blocks only."""
    space = create_space("enas", n_nodes=2)
    g = space.to_genotype(space.to_sample(Genotype(_N, [0, 3], _R, [1, 3])))
    assert g.normal_concat == (0, 3) and g.reduce_concat == (1, 3)
    assert create_space("nao", n_nodes=2).to_genotype(space.to_sample(g)) == g  # NAO-WS: same rule
    nsga = create_space("nsganet", op_set="enas", n_nodes=2)
    assert nsga.to_genotype(space.to_sample(g)).normal_concat == (3,)
    net = space.build_network(g, C=4, layers=3, num_classes=3)
    reduction = net.cells[1]
    assert net.cells[0].out_channels == 8 and reduction.out_channels == 2 * reduction.preprocess1[1].out_channels
    assert list(reduction.calibrate) == ["1"]  # the unused reduction input is halved before the concat
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 3)


def test_supernet_combines_an_unused_cell_input_in_search() -> None:
    """NAS-Benchmark NAO/model_search.py:119-148 (the ENAS-derived NAO-WS supernet): the combine conv has
    nodes + 2 input groups and an unused cell input takes its group (after fac_1/fac_2 in reductions)."""
    space = create_space("enas", n_nodes=2)
    g = space.to_genotype(space.to_sample(Genotype(_N, [0, 3], _R, [1, 3])))
    net = PathSupernet(space, C=4, layers=3)
    net(torch.randn(2, 3, 32, 32), g).sum().backward()
    normal = net.network.cells[0]
    grad = normal.combine.grad.view(4, 4, 4)  # (out, state 0..3, in)
    assert grad[:, 0].abs().sum() > 0 and grad[:, 3].abs().sum() > 0  # input 0 and node 3 concatenated
    assert grad[:, 1].abs().sum() == 0 and grad[:, 2].abs().sum() == 0


def test_controller_phase_samples_300_architectures_in_30_averaged_steps() -> None:
    """melodyguan/enas scripts/cifar10_micro_search.sh:32-34 (sync replicas, num_aggregate 10, train_steps 30),
    src/cifar10/main.py:279-280 (train_steps x num_aggregate runs per epoch), src/utils.py:223-231 (the
    SyncReplicasOptimizer applies one update per num_aggregate gradients)."""
    strategy = create_strategy("enas")
    assert strategy.controller_steps * strategy.controller_aggregate == 300
    controller = Controller([2], hidden=2)  # one decision: the phase's structure, not the LSTM's size, is tested

    class CountingAdam(torch.optim.Adam):
        steps = 0

        def step(self, closure=None):  # torch's signature
            CountingAdam.steps += 1
            return super().step(closure)

    optimizer = CountingAdam(controller.parameters(), lr=3.5e-3)
    seen: list[list[int]] = []
    rewards, _ = strategy.train_controller(controller, optimizer, torch.Generator().manual_seed(0),
                                           lambda choices: seen.append(choices) or 0.5, 0.0)
    assert len(seen) == len(rewards) == 300 and CountingAdam.steps == 30


def test_baseline_starts_at_zero_and_moves_before_the_loss() -> None:
    """melodyguan/enas src/cifar10/micro_controller.py:237-248: reward += entropy_weight x entropy (summed over
    decisions); baseline starts at 0.0, baseline -= (1 - bl_dec)(baseline - reward) before the loss;
    main.py:72 bl_dec 0.99; cifar10_micro_search.sh:30 entropy weight 1e-4."""
    strategy = create_strategy("enas", controller_steps=1, controller_aggregate=1)
    controller = CellController(2, 5, hidden=8)
    optimizer = torch.optim.Adam(controller.parameters(), lr=3.5e-3)
    torch.manual_seed(0)
    rewards, baseline = strategy.train_controller(controller, optimizer, torch.Generator().manual_seed(0),
                                                  lambda choices: 1.0, 0.0)
    assert rewards[0] > 1.0  # the entropy bonus, summed over 16 decisions: about 1e-4 x 16 x ~1.3
    assert 1.0 + 1e-4 * 16 * 0.5 < rewards[0] < 1.0 + 1e-4 * 16 * math.log(5)
    assert math.isclose(baseline, 0.01 * rewards[0], rel_tol=1e-9)


def test_logit_shaping_of_input_and_op_decisions() -> None:
    """melodyguan/enas src/cifar10/micro_controller.py:100-109 (op bias b starts [10, 10, 0, 0, 0]; fixed
    [0.25, 0.25, -0.25, -0.25, -0.25]), :158-161 (input: /temperature, then tanh_constant x tanh), :178-185
    (op: (W h + b) / temperature, then (tanh_constant / op_tanh_reduce) x tanh, then + fixed bias when
    use_bias, i.e. the normal cell's sampler, :79); cifar10_micro_search.sh:36-37 (1.10, 2.5, no temperature)."""
    strategy = create_strategy("enas")
    assert (strategy.tanh_constant, strategy.op_tanh_reduce, strategy.temperature) == (1.1, 2.5, None)
    ctrl = strategy.make_controller(create_space("enas"))
    assert isinstance(ctrl, CellController)
    assert ctrl.b_soft.tolist() == [[10.0, 10.0, 0.0, 0.0, 0.0]] and ctrl.b_soft.requires_grad
    assert ctrl.b_soft_no_learn.tolist() == [[0.25, 0.25, -0.25, -0.25, -0.25]]
    with torch.no_grad():
        ctrl.w_soft.weight.zero_()
        h = torch.zeros(1, 64)
        normal, reduce = ctrl.op_logits(h, normal=True), ctrl.op_logits(h, normal=False)
    op = 1.1 / 2.5 * math.tanh(10.0)
    assert torch.allclose(reduce, torch.tensor([op, op, 0.0, 0.0, 0.0]))
    assert torch.allclose(normal, torch.tensor([op + 0.25, op + 0.25, -0.25, -0.25, -0.25]))
    # Input decisions: a raw attention logit of 0.8 (v = 1, W2 = 0, keys atanh(0.8)) becomes 1.1 tanh(0.8).
    one = CellController(2, 5, hidden=1)
    hot = CellController(2, 5, hidden=1, temperature=5.0)
    for c in (one, hot):
        with torch.no_grad():
            c.v_attn.weight.fill_(1.0)
            c.w_attn_2.weight.zero_()
    keys = torch.tensor([[math.atanh(0.8)], [0.0]])
    assert torch.allclose(one.input_logits(keys, torch.zeros(1, 1)), torch.tensor([1.1 * math.tanh(0.8), 0.0]))
    assert torch.allclose(hot.input_logits(keys, torch.zeros(1, 1)), torch.tensor([1.1 * math.tanh(0.16), 0.0]))


def test_controller_decisions_follow_the_space_labels() -> None:
    """melodyguan/enas src/cifar10/micro_controller.py:79-83 and :135-200: the normal cell's sampler, then the
    reduction cell's from its last LSTM state; per node: index_1, index_2 (< node), op_1, op_2 (< branches)."""
    space = create_space("enas")
    ctrl = create_strategy("enas").make_controller(space)
    choices, log_prob, entropy = ctrl.sample(torch.Generator().manual_seed(1))
    labels = list(space.mutables)
    assert len(choices) == len(labels) == 40 and log_prob.requires_grad and not entropy.requires_grad
    for label, choice in zip(labels, choices):
        assert 0 <= choice < len(space.mutables[label].values)
    space.to_genotype({lb: space.mutables[lb].values[c] for lb, c in zip(labels, choices)})


def test_reward_batches_are_shuffled_and_unaugmented() -> None:
    """melodyguan/enas src/cifar10/micro_child.py:773-809 and :820-: build_valid_rl() is called with
    shuffle=False, so the reward batches are shuffled validation images without crop or flip."""
    assert create_strategy("enas").plain_valid_batches and not EnasStrategy(reward_augment=True).plain_valid_batches
    info = get_dataset_info("cifar10")
    x = torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8)
    y = torch.arange(12)
    split = TensorSplit(x[:0], y[:0], x, y, info)
    loader = plain_valid_loader(split, batch_size=4, device=torch.device("cpu"), seed=0)
    plain = GpuBatchLoader(x, y, batch_size=12, device="cpu", mean=info.mean, std=info.std, train=False)
    reference, _ = next(iter(plain))
    batches = list(loader)
    order = torch.cat([b[1] for b in batches])
    assert len(batches) == 3 and sorted(order.tolist()) == list(range(12)) and order.tolist() != list(range(12))
    for images, labels in batches:
        assert torch.equal(images, reference[labels])


def test_cifar_final_training_follows_the_readme_command() -> None:
    """NAS-Benchmark ENASTF/README.md augment command (= melodyguan/enas scripts/cifar10_micro_final.sh:13-29):
    batch 144, 630 epochs, child_num_layers 15 (+2 reduction cells), 36 filters, keep_prob 0.8 (dropout before
    the classifier), drop_path_keep_prob 0.6, l2 2e-4, SGDR 0.05 -> 0.0001 T0 10 Tmul 2, aux heads, no
    cutout flag; src/utils.py:212-214 (momentum 0.9, Nesterov); micro_child.py:707-711 (aux weight 0.4)."""
    p = from_dict("enas")
    assert (p.layers, p.epochs, p.batch_size, p.channels, p.lr, p.lr_min, p.restart_period, p.restart_mult) == (
        17, 630, 144, 36, 0.05, 0.0001, 10, 2)
    assert (p.lr_schedule, p.nesterov, p.weight_decay, p.drop_path, p.cutout, p.auxiliary_weight) == (
        "cosine_restarts", True, 2e-4, 0.4, 0, 0.4)
    space = create_space("enas", dropout=0.2)
    net = space.build_network(space.sample(0), C=4, layers=3)
    assert isinstance(net.classifier[0], torch.nn.Dropout) and net.classifier[0].p == 0.2
    for dataset in ("cifar10", "cifar100"):
        args = yaml.safe_load((ROOT / "experiments" / dataset / "enas.yml").read_text())["tuner"]["classArgs"]
        assert args["space_args"]["dropout"] == 0.2 and args["protocol"]["preset"] == "enas"
        assert (args["search"]["controller_steps"], args["search"]["controller_aggregate"]) == (30, 10)
