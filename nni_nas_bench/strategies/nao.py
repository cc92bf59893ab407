"""NAO: neural architecture optimization (Luo et al., NeurIPS 2018), weight-sharing variant, as benchmarked.

An architecture is a token sequence (per cell and node: input, op, input, op). An encoder maps it to
continuous per-token embeddings, a predictor maps their mean to a performance score, and a decoder
maps embeddings back to tokens. Search = iterations of

1. train the shared weights (a :class:`~search_spaces.path_supernet.PathSupernet`) for ``epochs /
   iterations`` epochs, each batch on an architecture drawn uniformly from the pool (NAO-WS);
2. score every pool architecture on shared weights (the same ``score_batches`` validation batches);
3. fit encoder–predictor–decoder on (architecture, min-max-scaled score) with
   loss = λ·MSE(prediction) + (1 − λ)·cross-entropy(reconstruction), λ = ``tradeoff``;
4. for the ``top_k`` best-scored architectures, move their embeddings along the predictor's gradient,
   E' = E + k·η·∂f/∂E for k = 1, 2, … until the decoded architecture is new (NAO's growing step),
   and add up to ``new_archs`` new architectures to the pool.

Final: the ``final_candidates`` best-scored pool architectures (scored again after the last training)
are evaluated on the whole validation half; the best is returned.

Compact choices (documented, not NAO's exact code): the decoder is an LSTM that reads the (moved)
encoder states and emits one token per position, masked to the tokens valid there (inputs of that node,
or ops), instead of NAO's attention decoder; encoder outputs are L2-normalised per token, as in NAO.
SPEC's numbers are the defaults: embedding 48, hidden 96, Adam 1e-3, trade-off λ 0.9, step η 10,
11-cell search networks with 20 channels. Not in SPEC, from NAO-WS (an ENAS-derived code base): pool of
1000 seed architectures, 3 iterations, 300 new architectures from the top 100, SGD 0.05 cosine →
0.001, weight decay 3e-4, batch 160.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies import register_strategy
from nni_nas_bench.strategies.checks import check_int, check_number
from nni_nas_bench.strategies.weight_sharing import SearchContext, WeightSharingStrategy
from search_spaces.genotype import Genotype


class ArchCodec:
    """Architectures of an ENAS-style cell space ↔ token sequences (inputs first in the vocabulary, then ops)."""

    def __init__(self, space: Any):
        self.space = space
        self.labels = [label for label in space.mutables]
        self.n_inputs = int(space.n_nodes) + 1  # input indices 0..n_nodes
        self.ops = list(space.ops)
        self.vocab = self.n_inputs + len(self.ops)
        mask = torch.zeros(len(self.labels), self.vocab, dtype=torch.bool)
        for p, label in enumerate(self.labels):
            if "/input_" in label:
                mask[p, : len(space.mutables[label].values)] = True
            else:
                mask[p, self.n_inputs:] = True
        self.mask = mask

    def encode(self, genotype: Genotype) -> list[int]:
        sample = self.space.to_sample(genotype)
        return [int(sample[lb]) if "/input_" in lb else self.n_inputs + self.ops.index(sample[lb])
                for lb in self.labels]

    def decode(self, tokens: list[int]) -> Genotype:
        sample = {lb: int(t) if "/input_" in lb else self.ops[int(t) - self.n_inputs]
                  for lb, t in zip(self.labels, tokens)}
        return self.space.to_genotype(sample)


class EncoderPredictorDecoder(nn.Module):
    """NAO's three parts: token embedding → LSTM encoder; mean embedding → MLP score; LSTM decoder → tokens."""

    def __init__(self, vocab: int, mask: torch.Tensor, embedding: int = 48, hidden: int = 96):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embedding)
        self.encoder = nn.LSTM(embedding, hidden, batch_first=True)
        self.predictor = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.decoder = nn.LSTM(hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)
        self.register_buffer("mask", mask, persistent=False)

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.encoder(self.embedding(tokens))[0], dim=-1)

    def predict(self, states: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.predictor(states.mean(1))).squeeze(-1)

    def decode_logits(self, states: torch.Tensor) -> torch.Tensor:
        return self.out(self.decoder(states)[0]).masked_fill(~self.mask, float("-inf"))


@register_strategy("nao")
class NaoStrategy(WeightSharingStrategy):
    """NAO-WS over an ENAS-style cell space (``space: nao`` in the benchmark)."""

    name = "nao"

    def __init__(self, *, epochs: int = 150, batch_size: int = 160, layers: int = 11, channels: int = 20,
                 w_lr: float = 0.05, w_lr_min: float = 0.001, w_weight_decay: float = 3e-4, iterations: int = 3,
                 seed_archs: int = 1000, new_archs: int = 300, top_k: int = 100, score_batches: int = 1,
                 final_candidates: int = 5, embedding_size: int = 48, hidden_size: int = 96,
                 controller_lr: float = 1e-3, controller_epochs: int = 200, controller_batch_size: int = 100,
                 tradeoff: float = 0.9, step_size: float = 10.0, max_step_trials: int = 10, **common: Any):
        super().__init__(epochs=epochs, batch_size=batch_size, layers=layers, channels=channels, w_lr=w_lr,
                         w_lr_min=w_lr_min, w_weight_decay=w_weight_decay, **common)
        m = self.name
        self.iterations = check_int(m, "iterations", iterations)
        if self.iterations > self.epochs:
            raise ConfigError(f"nao.iterations ({iterations}) must be <= epochs ({epochs}): each iteration trains")
        self.seed_archs = check_int(m, "seed_archs", seed_archs, 2)
        self.new_archs = check_int(m, "new_archs", new_archs, 0)
        self.top_k = check_int(m, "top_k", top_k)
        self.score_batches = check_int(m, "score_batches", score_batches)
        self.final_candidates = check_int(m, "final_candidates", final_candidates)
        self.embedding_size = check_int(m, "embedding_size", embedding_size)
        self.hidden_size = check_int(m, "hidden_size", hidden_size)
        self.controller_lr = check_number(m, "controller_lr", controller_lr)
        self.controller_epochs = check_int(m, "controller_epochs", controller_epochs)
        self.controller_batch_size = check_int(m, "controller_batch_size", controller_batch_size)
        self.tradeoff = check_number(m, "tradeoff", tradeoff)
        if self.tradeoff > 1:
            raise ConfigError(f"nao.tradeoff (weight of the prediction loss) must be in [0, 1], got {tradeoff!r}")
        self.step_size = check_number(m, "step_size", step_size)
        self.max_step_trials = check_int(m, "max_step_trials", max_step_trials)

    @property
    def settings(self) -> dict[str, Any]:
        return {**super().settings, "iterations": self.iterations, "seed_archs": self.seed_archs,
                "new_archs": self.new_archs, "top_k": self.top_k, "score_batches": self.score_batches,
                "final_candidates": self.final_candidates, "embedding_size": self.embedding_size,
                "hidden_size": self.hidden_size, "controller_lr": self.controller_lr,
                "controller_epochs": self.controller_epochs, "controller_batch_size": self.controller_batch_size,
                "tradeoff": self.tradeoff, "step_size": self.step_size, "max_step_trials": self.max_step_trials}

    def check_space(self, space: Any) -> None:
        super().check_space(space)
        if getattr(space, "input_pairs", True):
            raise ConfigError(f"nao encodes each input of a node on its own: search an ENAS-style space "
                              f"(space: nao, enas or nsganet), not {space!r}")

    # ------------------------------------------------------------------------------------ search
    def _search(self, ctx: SearchContext) -> tuple[Genotype, float]:
        from nni_nas_bench.data._seeding import derive_seed

        rng = np.random.RandomState(derive_seed(self.name, "pool", self.seed) % (2**32))
        codec = ArchCodec(ctx.space)
        pool: list[Genotype] = []
        seen: set[Genotype] = set()
        while len(pool) < self.seed_archs:  # distinct seed architectures, drawn by the space's own sampler
            g = ctx.space.sample(rng)
            if g not in seen:
                pool.append(g)
                seen.add(g)
        scores: dict[Genotype, float] = {}

        def draw() -> Genotype:  # NAO-WS trains the shared weights on architectures of the pool
            return pool[rng.randint(len(pool))]

        bounds = [self.epochs * (i + 1) // self.iterations for i in range(self.iterations)]
        epoch = 0
        for iteration, end in enumerate(bounds):
            while epoch < end:
                row: dict[str, Any] = {"epoch": epoch + 1, **self.train_epoch(ctx, epoch, draw)}
                best = max(pool, key=lambda g: scores.get(g, -1.0))
                row.update({"valid_acc": self.valid_accuracy(ctx, best), "genotype": best.to_text(),
                            "iteration": iteration + 1, "pool_size": len(pool)})
                self.end_epoch(ctx, row)
                epoch += 1
            scores = self._score(ctx, pool)
            epd = self._fit(ctx, codec, pool, scores)
            new = self._propose(ctx, codec, epd, sorted(pool, key=lambda g: -scores[g])[: self.top_k], set(pool))
            ctx.log(f"nao iteration {iteration + 1}/{self.iterations}: best pool score "
                    f"{max(scores.values()):.2f}, {len(new)} new architectures")
            pool += new
        scores = self._score(ctx, pool)
        finalists = sorted(pool, key=lambda g: -scores[g])[: self.final_candidates]
        evaluated = [(self.valid_accuracy(ctx, g), -i, g) for i, g in enumerate(finalists)]
        best_acc, _, best = max(evaluated, key=lambda t: (t[0], t[1]))
        return best, best_acc

    def _score(self, ctx: SearchContext, pool: list[Genotype]) -> dict[Genotype, float]:
        """Accuracy (%) of every pool architecture on the same validation batches (shared weights)."""
        batches = [next(ctx.valid_stream) for _ in range(self.score_batches)]
        return {g: float(np.mean([self.batch_accuracy(ctx, g, b) for b in batches])) for g in pool}

    def _fit(self, ctx: SearchContext, codec: ArchCodec, pool: list[Genotype],
             scores: dict[Genotype, float]) -> EncoderPredictorDecoder:
        """Train a fresh encoder–predictor–decoder on the scored pool (seeded: same pool, same model)."""
        from nni_nas_bench.data._seeding import make_generator

        generator = make_generator(self.name, "epd", self.seed, len(pool))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
            epd = EncoderPredictorDecoder(codec.vocab, codec.mask, self.embedding_size, self.hidden_size)
        epd = epd.to(ctx.device)
        tokens = torch.tensor([codec.encode(g) for g in pool], device=ctx.device)
        y = torch.tensor([scores[g] for g in pool], device=ctx.device)
        y = (y - y.min()) / (y.max() - y.min()).clamp_min(1e-8)  # NAO scales performance to [0, 1]
        optimizer = torch.optim.Adam(epd.parameters(), lr=self.controller_lr)
        epd.train()
        for _ in range(self.controller_epochs):
            order = torch.randperm(len(pool), generator=generator).to(ctx.device)
            for start in range(0, len(pool), self.controller_batch_size):
                idx = order[start: start + self.controller_batch_size]
                states = epd.encode(tokens[idx])
                mse = nn.functional.mse_loss(epd.predict(states), y[idx])
                ce = nn.functional.cross_entropy(epd.decode_logits(states).flatten(0, 1), tokens[idx].flatten())
                loss = self.tradeoff * mse + (1 - self.tradeoff) * ce
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(epd.parameters(), 5.0)
                optimizer.step()
        return epd.eval()

    def _propose(self, ctx: SearchContext, codec: ArchCodec, epd: EncoderPredictorDecoder, top: list[Genotype],
                 known: set[Genotype]) -> list[Genotype]:
        """New architectures decoded from the top ones' embeddings moved up the predictor's gradient."""
        new: list[Genotype] = []
        tokens = torch.tensor([codec.encode(g) for g in top], device=ctx.device)
        states = epd.encode(tokens).detach().requires_grad_(True)
        grad = torch.autograd.grad(epd.predict(states).sum(), states)[0]
        pending = list(range(len(top)))
        with torch.no_grad():
            for k in range(1, self.max_step_trials + 1):
                if not pending or len(new) >= self.new_archs:
                    break
                moved = states[pending] + k * self.step_size * grad[pending]
                decoded = epd.decode_logits(moved).argmax(-1).tolist()
                still = []
                for i, seq in zip(pending, decoded):
                    g = codec.decode(seq)
                    if g in known:
                        still.append(i)
                    elif len(new) < self.new_archs:
                        new.append(g)
                        known.add(g)
                pending = still
        return new
