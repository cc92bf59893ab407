"""ENAS: efficient NAS via parameter sharing (Pham et al., ICML 2018), micro space, as benchmarked by Yang et al.

Two alternating phases per epoch, on a :class:`~search_spaces.path_supernet.PathSupernet` of the space:

1. shared weights w: one pass over the training half, each batch on an architecture sampled from the
   controller (no controller gradient);
2. controller: ``controller_steps`` REINFORCE steps, each sampling an architecture and rewarding it with
   its accuracy on a validation batch (a fraction in [0, 1]) plus ``entropy_weight`` × the sample's
   entropy per decision (ENAS adds the entropy bonus to the reward; ENAS sums the entropy over the
   decisions, which with SPEC's weight 0.1 and 40 decisions would outweigh the accuracy about six times
   over, so the mean over decisions is used); the baseline is an exponential moving average
   of the rewards (decay ``baseline_decay``); loss = −log p(arch) · (reward − baseline).

The controller is an LSTM that emits the space's decisions one after another (every categorical of
``space.mutables``, in label order: per cell and node its inputs, then its ops); each decision has its
own softmax head and each chosen value its embedding, fed to the next step. Logits are shaped as in
ENAS: ``tanh_constant · tanh(logits / temperature)``. This is the generic form of ENAS's controller
(NNI's ENAS controller is built the same way); ENAS's attention over earlier nodes for the input
choices is replaced by a plain head per input decision.

Final architecture: the best of ``final_samples`` controller samples by accuracy on the whole validation
half (ENAS's "sample several, keep the best on validation").

Defaults are SPEC's ENAS search protocol: 150 epochs, 8 cells, batch 160, 20 channels; w: SGD Nesterov
0.05 → 0.001 cosine with warm restarts (T0 10, Tmul 2), weight decay 1e-4, clip 5; controller Adam 3.5e-4
(betas (0.5, 0.999), SPEC's common Adam setting), tanh constant 1.10, temperature 2.5, entropy 0.1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from nni_nas_bench.strategies import register_strategy
from nni_nas_bench.strategies.checks import check_int, check_number
from nni_nas_bench.strategies.weight_sharing import SearchContext, WeightSharingStrategy
from search_spaces.genotype import Genotype


class Controller(nn.Module):
    """An LSTM that samples one value per categorical, in order, ENAS-style (tanh constant, temperature)."""

    def __init__(self, sizes: list[int], hidden: int = 64, tanh_constant: float = 1.10, temperature: float = 2.5):
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
        logits = self.heads[step](h) / self.temperature
        return self.tanh_constant * torch.tanh(logits)

    def sample(self, generator: torch.Generator, greedy: bool = False) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """(choices, summed log-probability, summed entropy) of one architecture."""
        x, state = self.start, None
        choices, log_prob, entropy = [], self.start.new_zeros(()), self.start.new_zeros(())
        for step in range(len(self.sizes)):
            state = self.lstm(x, state)
            dist = torch.distributions.Categorical(logits=self.logits(step, state[0])[0])
            if greedy:
                choice = int(dist.probs.argmax())
            else:
                choice = int(torch.multinomial(dist.probs.detach().cpu(), 1, generator=generator))
            choices.append(choice)
            log_prob = log_prob + dist.log_prob(torch.tensor(choice, device=x.device))
            entropy = entropy + dist.entropy()
            x = self.embeddings[step](torch.tensor([choice], device=x.device))
        return choices, log_prob, entropy


@register_strategy("enas")
class EnasStrategy(WeightSharingStrategy):
    """ENAS micro search with SPEC's defaults; searches any cell space (``space: enas`` in the benchmark) and
    NB201 (``space: nb201``: six decisions, one op per edge, on NB201's path supernet)."""

    name = "enas"

    def __init__(self, *, epochs: int = 150, batch_size: int = 160, layers: int = 8, channels: int = 20,
                 w_lr: float = 0.05, w_lr_min: float = 0.001, w_momentum: float = 0.9, w_nesterov: bool = True,
                 w_weight_decay: float = 1e-4, w_restart_period: int | None = 10, w_restart_mult: int = 2,
                 controller_lr: float = 3.5e-4, controller_betas: tuple[float, float] = (0.5, 0.999),
                 controller_hidden: int = 64, controller_steps: int = 30, tanh_constant: float = 1.10,
                 temperature: float = 2.5, entropy_weight: float = 0.1, baseline_decay: float = 0.99,
                 final_samples: int = 10, **common: Any):
        super().__init__(epochs=epochs, batch_size=batch_size, layers=layers, channels=channels, w_lr=w_lr,
                         w_lr_min=w_lr_min, w_momentum=w_momentum, w_nesterov=w_nesterov,
                         w_weight_decay=w_weight_decay, w_restart_period=w_restart_period,
                         w_restart_mult=w_restart_mult, **common)
        m = self.name
        self.controller_lr = check_number(m, "controller_lr", controller_lr)
        self.controller_betas = (float(controller_betas[0]), float(controller_betas[1]))
        self.controller_hidden = check_int(m, "controller_hidden", controller_hidden)
        self.controller_steps = check_int(m, "controller_steps", controller_steps, 0)
        self.tanh_constant = check_number(m, "tanh_constant", tanh_constant)
        self.temperature = check_number(m, "temperature", temperature, 1e-6)
        self.entropy_weight = check_number(m, "entropy_weight", entropy_weight)
        self.baseline_decay = check_number(m, "baseline_decay", baseline_decay)
        self.final_samples = check_int(m, "final_samples", final_samples)

    @property
    def settings(self) -> dict[str, Any]:
        return {**super().settings, "controller_lr": self.controller_lr,
                "controller_betas": list(self.controller_betas), "controller_hidden": self.controller_hidden,
                "controller_steps": self.controller_steps, "tanh_constant": self.tanh_constant,
                "temperature": self.temperature, "entropy_weight": self.entropy_weight,
                "baseline_decay": self.baseline_decay, "final_samples": self.final_samples}

    def _search(self, ctx: SearchContext) -> tuple[Genotype, float]:
        from nni_nas_bench.data._seeding import make_generator

        labels = list(ctx.space.mutables)
        values = [list(ctx.space.mutables[label].values) for label in labels]
        # The controller stays on the CPU: 40 tiny LSTM steps per sample are faster there than as 40
        # GPU launches, and its sampling never waits on the device.
        controller = Controller([len(v) for v in values], self.controller_hidden, self.tanh_constant,
                                self.temperature)
        optimizer = torch.optim.Adam(controller.parameters(), lr=self.controller_lr, betas=self.controller_betas)
        generator = make_generator(self.name, "controller", self.seed)

        def to_genotype(choices: list[int]) -> Genotype:
            return ctx.space.to_genotype({label: v[c] for label, v, c in zip(labels, values, choices)})

        def propose() -> Genotype:
            with torch.no_grad():
                return to_genotype(controller.sample(generator)[0])

        baseline: float | None = None
        for epoch in range(self.epochs):
            row: dict[str, Any] = {"epoch": epoch + 1, **self.train_epoch(ctx, epoch, propose)}
            rewards = []
            for _ in range(self.controller_steps):
                choices, log_prob, entropy = controller.sample(generator)
                reward = self.batch_accuracy(ctx, to_genotype(choices)) / 100.0
                reward += self.entropy_weight * float(entropy.detach()) / len(labels)
                baseline = reward if baseline is None else baseline - (1 - self.baseline_decay) * (baseline - reward)
                loss = -log_prob * (reward - baseline)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                rewards.append(reward)
            with torch.no_grad():
                greedy = to_genotype(controller.sample(generator, greedy=True)[0])
            row.update({"valid_acc": self.valid_accuracy(ctx, greedy), "genotype": greedy.to_text(),
                        "mean_reward": float(np.mean(rewards)) if rewards else float("nan"),
                        "baseline": float("nan") if baseline is None else baseline})
            self.end_epoch(ctx, row)
        candidates = [propose() for _ in range(self.final_samples)]
        scored = [(self.valid_accuracy(ctx, g), i, g) for i, g in enumerate(candidates)]
        best_acc, _, best = max(scored, key=lambda t: (t[0], -t[1]))  # ties: the earliest sample
        ctx.log(f"enas: best of {self.final_samples} samples: " + ", ".join(f"{a:.2f}" for a, _, _ in scored))
        return best, best_acc

