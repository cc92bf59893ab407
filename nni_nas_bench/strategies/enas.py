"""ENAS: efficient NAS via parameter sharing (Pham et al., ICML 2018), micro space, as benchmarked by Yang et al.

Reference: the benchmark ran melodyguan/enas's TensorFlow code for CIFAR (antoyang/NAS-Benchmark
``ENASTF``, README search command = melodyguan/enas ``scripts/cifar10_micro_search.sh``) and a PyTorch port
for Sport8, MIT67 and flowers102 (``ENASPytorch``). Defaults are the CIFAR command's; the 224-px YAMLs set
the port's values (temperature 5, Adam betas (0.1, 0.999), 300 single-sample steps). docs/fidelity.md
lists every setting.

Two alternating phases per epoch, on a :class:`~search_spaces.path_supernet.PathSupernet` of the space:

1. shared weights w: one pass over the training half, each batch on an architecture sampled from the
   controller (no controller gradient);
2. controller: ``controller_steps`` × ``controller_aggregate`` samples (30 × 10 = 300), each rewarded
   with its accuracy (a fraction) on a shuffled, *unaugmented* validation batch (``build_valid_rl()``
   without shuffle augmentation) plus ``entropy_weight`` × the sample's entropy summed over its
   decisions; the baseline (starting at 0) moves towards each reward by ``1 − baseline_decay`` before
   the sample's loss −log p(arch) · (reward − baseline); the gradients of ``controller_aggregate``
   samples are averaged into one Adam step (ENAS's ``SyncReplicasOptimizer``, ``num_aggregate`` 10).

The controller of an ENAS-style cell space is ENAS's micro controller (:class:`CellController`): one
LSTM runs through the normal cell, then, from its last state, the reduction cell; an input decision is
attention over the states so far, shaped ``tanh_constant · tanh(logits / temperature)``; an op decision
is ``(tanh_constant / op_tanh_reduce) · tanh((W h + b) / temperature)`` with the learnt bias ``b``
starting at ``op_bias`` on the first two ops (ENAS's sep3 and sep5) and 0 elsewhere, plus a fixed
``±op_bias_fixed`` (first two ops +, the rest −) in the normal cell only. ``temperature`` ``None``
divides by nothing (the CIFAR command sets none). Other spaces (NB201, DARTS) get :class:`Controller`, a
plain LSTM with one head per decision shaped ``tanh_constant · tanh(logits / temperature)``.

Final architecture: the best of ``final_samples`` controller samples by accuracy on the whole validation
half (ENAS prints 10 samples and their validation accuracy after each controller phase).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies.checks import check_int, check_number
from nni_nas_bench.strategies.weight_sharing import SearchContext, WeightSharingStrategy
from search_spaces.genotype import Genotype


class Controller(nn.Module):
    """A plain LSTM that samples one value per categorical, in order (spaces without ENAS's cell decisions)."""

    def __init__(self, sizes: list[int], hidden: int = 64, tanh_constant: float = 1.10,
                 temperature: float | None = 2.5):
        super().__init__()
        self.sizes = list(sizes)
        self.tanh_constant, self.temperature = tanh_constant, temperature
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.lstm = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in self.sizes)
        self.embeddings = nn.ModuleList(nn.Embedding(n, hidden) for n in self.sizes)
        for p in self.parameters():  # ENAS initialises the controller uniformly in [-0.1, 0.1]
            nn.init.uniform_(p, -0.1, 0.1)

    def logits(self, step: int, h: torch.Tensor) -> torch.Tensor:
        logits = self.heads[step](h)
        if self.temperature is not None:
            logits = logits / self.temperature
        return self.tanh_constant * torch.tanh(logits)

    def sample(self, generator: torch.Generator, greedy: bool = False) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """(choices, summed log-probability, summed entropy) of one architecture."""
        x, state = self.start, None
        choices, log_prob, entropy = [], self.start.new_zeros(()), self.start.new_zeros(())
        for step in range(len(self.sizes)):
            state = self.lstm(x, state)
            choice, lp, ent = _draw(self.logits(step, state[0])[0], generator, greedy)
            choices.append(choice)
            log_prob, entropy = log_prob + lp, entropy + ent
            x = self.embeddings[step](torch.tensor([choice], device=x.device))
        return choices, log_prob, entropy


def _draw(logits: torch.Tensor, generator: torch.Generator, greedy: bool) -> tuple[int, torch.Tensor, torch.Tensor]:
    """One decision: (choice, its log-probability, the distribution's entropy without gradient, as ENAS)."""
    dist = torch.distributions.Categorical(logits=logits)
    if greedy:
        choice = int(dist.probs.argmax())
    else:
        choice = int(torch.multinomial(dist.probs.detach().cpu(), 1, generator=generator))
    return choice, dist.log_prob(torch.tensor(choice, device=logits.device)), dist.entropy().detach()


class CellController(nn.Module):
    """ENAS's micro controller (melodyguan/enas ``src/cifar10/micro_controller.py``), for ENAS-style cell spaces.

    Per cell: two LSTM steps on the start embedding give the two cell inputs' anchors (zeros) and their
    attention keys; per node, two input steps (attention over the anchors so far; the chosen anchor is
    the next input), two op steps (a softmax over the ops; the op's embedding is the next input), then
    one step whose output becomes the node's anchor. The reduction cell continues from the normal cell's
    last LSTM state. Decisions come out in the space's label order (per node: input, input, op, op).
    """

    def __init__(self, n_nodes: int, n_ops: int, hidden: int = 64, tanh_constant: float | None = 1.10,
                 op_tanh_reduce: float = 2.5, temperature: float | None = None, op_bias: float = 10.0,
                 op_bias_fixed: float = 0.25):
        super().__init__()
        self.n_nodes, self.n_ops = n_nodes, n_ops
        self.tanh_constant, self.op_tanh_reduce, self.temperature = tanh_constant, op_tanh_reduce, temperature
        self.lstm = nn.LSTMCell(hidden, hidden, bias=False)  # ENAS's stack_lstm has no bias
        self.g_emb = nn.Parameter(torch.empty(1, hidden))
        self.w_emb = nn.Embedding(n_ops, hidden)
        self.w_soft = nn.Linear(hidden, n_ops, bias=False)
        self.w_attn_1 = nn.Linear(hidden, hidden, bias=False)
        self.w_attn_2 = nn.Linear(hidden, hidden, bias=False)
        self.v_attn = nn.Linear(hidden, 1, bias=False)
        for p in self.parameters():  # ENAS: every variable uniform in [-0.1, 0.1] except the op bias
            nn.init.uniform_(p, -0.1, 0.1)
        first_two = torch.arange(n_ops) < 2
        self.b_soft = nn.Parameter((first_two * op_bias).float().view(1, n_ops))
        self.register_buffer("b_soft_no_learn", torch.where(first_two, op_bias_fixed, -op_bias_fixed).view(1, n_ops),
                             persistent=False)

    def input_logits(self, keys: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Attention logits over the states so far, then ENAS's shaping of an input decision."""
        logits = self.v_attn(torch.tanh(keys + self.w_attn_2(h))).view(-1)
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * torch.tanh(logits)
        return logits

    def op_logits(self, h: torch.Tensor, normal: bool) -> torch.Tensor:
        """ENAS's op logits: learnt bias inside the tanh, the fixed bias after it (normal cell only)."""
        logits = self.w_soft(h) + self.b_soft
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = (self.tanh_constant / self.op_tanh_reduce) * torch.tanh(logits)
        if normal:
            logits = logits + self.b_soft_no_learn
        return logits.view(-1)

    def sample(self, generator: torch.Generator, greedy: bool = False) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """(choices, summed log-probability, summed entropy) of one architecture (normal, then reduction cell)."""
        choices: list[int] = []
        log_prob, entropy = self.g_emb.new_zeros(()), self.g_emb.new_zeros(())
        state = None
        for normal in (True, False):
            x = self.g_emb
            anchors, keys = [], []
            for _ in range(2):
                state = self.lstm(x, state)
                anchors.append(torch.zeros_like(state[0]))
                keys.append(self.w_attn_1(state[0]))
            for _node in range(self.n_nodes):
                for _ in range(2):
                    state = self.lstm(x, state)
                    choice, lp, ent = _draw(self.input_logits(torch.cat(keys), state[0]), generator, greedy)
                    choices.append(choice)
                    log_prob, entropy = log_prob + lp, entropy + ent
                    x = anchors[choice]
                for _ in range(2):
                    state = self.lstm(x, state)
                    choice, lp, ent = _draw(self.op_logits(state[0], normal), generator, greedy)
                    choices.append(choice)
                    log_prob, entropy = log_prob + lp, entropy + ent
                    x = self.w_emb(torch.tensor([choice], device=x.device))
                state = self.lstm(x, state)
                anchors.append(state[0])
                keys.append(self.w_attn_1(state[0]))
                x = self.g_emb
        return choices, log_prob, entropy


def enas_cell_decisions(space: Any) -> bool:
    """True when the space's decisions are ENAS's (per cell and node: input, input, op, op over ``space.ops``)."""
    if getattr(space, "input_pairs", True) or not hasattr(space, "n_nodes"):
        return False
    expected = [f"{cell}/{kind}_{node}_{k}" for cell in ("normal", "reduce") for node in range(2, space.n_nodes + 2)
                for kind in ("input", "op") for k in (0, 1)]
    return list(space.mutables) == expected


class EnasStrategy(WeightSharingStrategy):
    """ENAS micro search with the benchmark's CIFAR command as defaults; searches any cell space (``space:
    enas`` in the benchmark) and NB201 (``space: nb201``: six decisions, one op per edge)."""

    setting_names = (*WeightSharingStrategy.setting_names, "controller_lr", "controller_betas", "controller_eps",
                     "controller_hidden", "controller_steps", "controller_aggregate", "tanh_constant",
                     "op_tanh_reduce", "temperature", "op_bias", "op_bias_fixed", "entropy_weight", "baseline_decay",
                     "reward_augment", "final_samples")

    name = "enas"

    def __init__(self, *, epochs: int = 150, batch_size: int = 160, layers: int = 8, channels: int = 20,
                 w_lr: float = 0.05, w_lr_min: float = 0.0005, w_momentum: float = 0.9, w_nesterov: bool = True,
                 w_weight_decay: float = 1e-4, w_restart_period: int | None = 10, w_restart_mult: int = 2,
                 controller_lr: float = 3.5e-3, controller_betas: tuple[float, float] = (0.0, 0.999),
                 controller_eps: float = 1e-3, controller_hidden: int = 64, controller_steps: int = 30,
                 controller_aggregate: int = 10, tanh_constant: float = 1.10, op_tanh_reduce: float = 2.5,
                 temperature: float | None = None, op_bias: float = 10.0, op_bias_fixed: float = 0.25,
                 entropy_weight: float = 1e-4, baseline_decay: float = 0.99, reward_augment: bool = False,
                 final_samples: int = 10, **common: Any):
        super().__init__(epochs=epochs, batch_size=batch_size, layers=layers, channels=channels, w_lr=w_lr,
                         w_lr_min=w_lr_min, w_momentum=w_momentum, w_nesterov=w_nesterov,
                         w_weight_decay=w_weight_decay, w_restart_period=w_restart_period,
                         w_restart_mult=w_restart_mult, **common)
        m = self.name
        self.controller_lr = check_number(m, "controller_lr", controller_lr)
        self.controller_betas = (float(controller_betas[0]), float(controller_betas[1]))
        self.controller_eps = check_number(m, "controller_eps", controller_eps, 1e-12)
        self.controller_hidden = check_int(m, "controller_hidden", controller_hidden)
        self.controller_steps = check_int(m, "controller_steps", controller_steps, 0)
        self.controller_aggregate = check_int(m, "controller_aggregate", controller_aggregate)
        self.tanh_constant = check_number(m, "tanh_constant", tanh_constant)
        self.op_tanh_reduce = check_number(m, "op_tanh_reduce", op_tanh_reduce, 1e-6)
        self.temperature = None if temperature is None else check_number(m, "temperature", temperature, 1e-6)
        self.op_bias = check_number(m, "op_bias", op_bias, float("-inf"))
        self.op_bias_fixed = check_number(m, "op_bias_fixed", op_bias_fixed, float("-inf"))
        self.entropy_weight = check_number(m, "entropy_weight", entropy_weight)
        self.baseline_decay = check_number(m, "baseline_decay", baseline_decay)
        if not isinstance(reward_augment, bool):
            raise ConfigError(f"enas.reward_augment must be true or false, got {reward_augment!r}")
        self.reward_augment = reward_augment
        self.plain_valid_batches = not reward_augment  # WeightSharingStrategy.search builds ctx.plain_stream
        self.final_samples = check_int(m, "final_samples", final_samples)

    def make_controller(self, space: Any) -> Controller | CellController:
        """ENAS's micro controller for ENAS-style cell spaces, the plain one for any other space."""
        if enas_cell_decisions(space):
            return CellController(space.n_nodes, len(space.ops), self.controller_hidden, self.tanh_constant,
                                  self.op_tanh_reduce, self.temperature, self.op_bias, self.op_bias_fixed)
        sizes = [len(space.mutables[label].values) for label in space.mutables]
        return Controller(sizes, self.controller_hidden, self.tanh_constant, self.temperature)

    def train_controller(self, controller: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator,
                         reward_of: Callable[[list[int]], float], baseline: float) -> tuple[list[float], float]:
        """One controller phase: ``controller_steps`` Adam steps, each averaging ``controller_aggregate`` samples.

        ``reward_of(choices)`` is a sample's accuracy as a fraction; returns the rewards and the baseline.
        """
        rewards = []
        for _ in range(self.controller_steps):
            optimizer.zero_grad(set_to_none=True)
            for _ in range(self.controller_aggregate):
                choices, log_prob, entropy = controller.sample(generator)
                reward = reward_of(choices) + self.entropy_weight * float(entropy)
                baseline -= (1 - self.baseline_decay) * (baseline - reward)  # updated before the loss, as ENAS
                loss = -log_prob * (reward - baseline) / self.controller_aggregate
                loss.backward()
                rewards.append(reward)
            optimizer.step()
        return rewards, baseline

    def _search(self, ctx: SearchContext) -> tuple[Genotype, float]:
        from nni_nas_bench.data._seeding import make_generator

        labels = list(ctx.space.mutables)
        values = [list(ctx.space.mutables[label].values) for label in labels]
        # The controller stays on the CPU: 40 tiny LSTM steps per sample are faster there than as 40
        # GPU launches, and its sampling never waits on the device.
        controller = self.make_controller(ctx.space)
        optimizer = torch.optim.Adam(controller.parameters(), lr=self.controller_lr, betas=self.controller_betas,
                                     eps=self.controller_eps)
        generator = make_generator(self.name, "controller", self.seed)
        reward_stream = ctx.valid_stream if ctx.plain_stream is None else ctx.plain_stream

        def to_genotype(choices: list[int]) -> Genotype:
            return ctx.space.to_genotype({label: v[c] for label, v, c in zip(labels, values, choices)})

        def propose() -> Genotype:
            with torch.no_grad():
                return to_genotype(controller.sample(generator)[0])

        def reward_of(choices: list[int]) -> float:
            return self.batch_accuracy(ctx, to_genotype(choices), next(reward_stream)) / 100.0

        baseline = 0.0  # ENAS's baseline variable starts at 0
        for epoch in range(self.epochs):
            row: dict[str, Any] = {"epoch": epoch + 1, **self.train_epoch(ctx, epoch, propose)}
            rewards, baseline = self.train_controller(controller, optimizer, generator, reward_of, baseline)
            with torch.no_grad():
                greedy = to_genotype(controller.sample(generator, greedy=True)[0])
            row.update({"valid_acc": self.valid_accuracy(ctx, greedy), "genotype": greedy.to_text(),
                        "mean_reward": float(np.mean(rewards)) if rewards else float("nan"),
                        "baseline": baseline})
            self.end_epoch(ctx, row)
        candidates = [propose() for _ in range(self.final_samples)]
        scored = [(self.valid_accuracy(ctx, g), i, g) for i, g in enumerate(candidates)]
        best_acc, _, best = max(scored, key=lambda t: (t[0], -t[1]))  # ties: the earliest sample
        ctx.log(f"enas: best of {self.final_samples} samples: " + ", ".join(f"{a:.2f}" for a, _, _ in scored))
        return best, best_acc
