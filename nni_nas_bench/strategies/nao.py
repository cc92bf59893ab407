"""NAO: neural architecture optimization (Luo et al., NeurIPS 2018), weight-sharing variant, as benchmarked.

Reference: the benchmark's ``NAO/train_search.py`` (antoyang/NAS-Benchmark, a copy of renqianluo/NAO_pytorch
``NAO_V1`` with 224-px datasets added) run with its README command (200 child epochs, evaluation every 50,
``controller_expand 8``, ``child_sample_policy params``, 3 search layers on CIFAR and 2 on the 224-px
datasets). docs/fidelity.md lists every setting.

An architecture is NAO's token sequence: per cell (normal, then reduction) and node ``input, op, input, op``
with ``0`` the start token, inputs ``1 + state`` and ops after them (12 tokens for 5 nodes and 5 ops, as
NAO). Search = ``iterations`` training blocks of ``epochs / iterations`` epochs; after each block but the last:

1. shared weights (a :class:`~search_spaces.path_supernet.PathSupernet`) trained on architectures drawn
   from the pool in proportion to their child network's parameter count (``sample_policy: params``);
2. every pool architecture scored on its own shuffled, unaugmented validation batch (``score_batch_size``);
3. a fresh encoder–predictor–decoder fitted ``controller_epochs`` epochs on (architecture, min-max-scaled
   score), loss = λ·MSE + (1 − λ)·NLL, Adam with weight decay; 90 % of the pool plus
   ``controller_expand − 1`` copies of it, each with one random node of each cell branch-swapped;
4. for step sizes k = 1, 2, … (at most ``max_step_size`` + 1 tries), all ``top_k`` best architectures'
   encoder outputs move to ``normalize(E + k·step_size·∂f/∂E)``, are decoded, and every decoded
   architecture not yet in the pool or among the new ones is kept, until ``new_archs`` are found;
5. the pool grows by the new architectures and ``random_archs`` random ones.

After the last block the pool is scored once more; the ``final_candidates`` best are evaluated on the
whole validation half and the best is returned.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from nni_nas_bench.errors import ConfigError
from nni_nas_bench.strategies.checks import check_int, check_number
from nni_nas_bench.strategies.weight_sharing import SearchContext, WeightSharingStrategy
from search_spaces.genotype import Genotype

SOS = 0  # NAO's start (and end) token; no architecture token is 0


class ArchCodec:
    """Architectures of an ENAS-style cell space ↔ NAO token sequences (per node: input, op, input, op)."""

    def __init__(self, space: Any):
        self.space = space
        self.n_nodes = int(space.n_nodes)
        self.ops = list(space.ops)
        self.first_op = self.n_nodes + 2  # tokens 1..n_nodes + 1 are the input states 0..n_nodes
        self.vocab = self.first_op + len(self.ops)
        self.length = 8 * self.n_nodes
        mask = torch.zeros(self.length, self.vocab, dtype=torch.bool)
        for p in range(self.length):
            node = (p % (4 * self.n_nodes)) // 4
            if p % 2 == 0:
                mask[p, 1: node + 3] = True  # node i + 2 reads states 0..i + 1
            else:
                mask[p, self.first_op:] = True
        self.mask = mask

    def encode(self, genotype: Genotype) -> list[int]:
        sample = self.space.to_sample(genotype)
        tokens = []
        for cell in ("normal", "reduce"):
            for node in range(2, self.n_nodes + 2):
                for k in (0, 1):
                    tokens += [1 + int(sample[f"{cell}/input_{node}_{k}"]),
                               self.first_op + self.ops.index(sample[f"{cell}/op_{node}_{k}"])]
        return tokens

    def decode(self, tokens: list[int]) -> Genotype:
        sample: dict[str, Any] = {}
        it = iter(tokens)
        for cell in ("normal", "reduce"):
            for node in range(2, self.n_nodes + 2):
                for k in (0, 1):
                    sample[f"{cell}/input_{node}_{k}"] = int(next(it)) - 1
                    sample[f"{cell}/op_{node}_{k}"] = self.ops[int(next(it)) - self.first_op]
        return self.space.to_genotype(sample)

    def swap_branches(self, tokens: list[int], a: int, b: int) -> list[int]:
        """The same network with node ``a`` of the normal and node ``b`` of the reduction cell branch-swapped.

        NAO's data augmentation (``train_search.py`` ``controller_expand``, ``utils.NAODataset`` swap).
        """
        out = list(tokens)
        for start in (4 * a, 4 * self.n_nodes + 4 * b):
            out[start: start + 2], out[start + 2: start + 4] = tokens[start + 2: start + 4], tokens[start: start + 2]
        return out


class EncoderPredictorDecoder(nn.Module):
    """NAO's encoder (LSTM over (input, op) token pairs), MLP predictor and attention decoder.

    The encoder's outputs are L2-normalised per step; the architecture embedding is the normalised mean of
    them; the predictor is ``mlp_layers`` × (linear, ReLU, dropout) then a linear to one sigmoid score;
    the decoder is an LSTM started from (embedding, embedding) that attends over the encoder outputs and
    emits one token per position (NAO's ``encoder.py``, ``decoder.py``, ``controller.py``).
    """

    def __init__(self, vocab: int, mask: torch.Tensor, embedding: int = 48, hidden: int = 96, mlp_layers: int = 3,
                 mlp_hidden: int = 200, mlp_dropout: float = 0.1):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embedding)
        self.encoder = nn.LSTM(2 * embedding, hidden, batch_first=True)
        layers: list[nn.Module] = []
        width = hidden
        for _ in range(mlp_layers):
            layers += [nn.Linear(width, mlp_hidden), nn.ReLU(), nn.Dropout(mlp_dropout)]
            width = mlp_hidden
        self.mlp = nn.Sequential(*layers)
        self.regressor = nn.Linear(width, 1)
        self.dec_embedding = nn.Embedding(vocab, hidden)
        self.decoder = nn.LSTM(hidden, hidden, batch_first=True)
        self.attn_in = nn.Linear(hidden, hidden, bias=False)
        self.attn_out = nn.Linear(2 * hidden, hidden, bias=False)
        self.out = nn.Linear(hidden, vocab)
        self.register_buffer("mask", mask, persistent=False)
        for p in self.parameters():  # NAO: every matrix uniform in [-0.04, 0.04], vectors as torch leaves them
            if p.dim() >= 2:
                nn.init.uniform_(p, -0.04, 0.04)

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Per-step encoder outputs, L2-normalised: (batch, length / 2, hidden)."""
        embedded = self.embedding(tokens).reshape(tokens.shape[0], tokens.shape[1] // 2, -1)
        return nn.functional.normalize(self.encoder(embedded)[0], dim=-1)

    @staticmethod
    def arch_embedding(outputs: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(outputs.mean(1), dim=-1)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.regressor(self.mlp(self.arch_embedding(outputs)))).squeeze(-1)

    def _attend(self, h: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(torch.bmm(self.attn_in(h), outputs.transpose(1, 2)), dim=-1)
        return torch.tanh(self.attn_out(torch.cat([torch.bmm(weights, outputs), h], dim=-1)))

    def _start(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.arch_embedding(outputs).unsqueeze(0)
        return emb, emb

    def decode_logits(self, outputs: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits over the whole vocabulary (NAO's training: input = start token + tokens[:-1])."""
        inputs = torch.cat([torch.full_like(tokens[:, :1], SOS), tokens[:, :-1]], dim=1)
        h = self.decoder(self.dec_embedding(inputs), self._start(outputs))[0]
        return self.out(self._attend(h, outputs))

    def generate(self, outputs: torch.Tensor) -> torch.Tensor:
        """Greedy decoding, each position restricted to the tokens valid there (NAO's Decoder.decode)."""
        state = self._start(outputs)
        x = torch.full((outputs.shape[0], 1), SOS, dtype=torch.long, device=outputs.device)
        tokens = []
        for position in range(self.mask.shape[0]):
            h, state = self.decoder(self.dec_embedding(x), state)
            logits = self.out(self._attend(h, outputs))[:, 0].masked_fill(~self.mask[position], float("-inf"))
            x = logits.argmax(-1, keepdim=True)
            tokens.append(x)
        return torch.cat(tokens, dim=1)


class NaoStrategy(WeightSharingStrategy):
    """NAO-WS over an ENAS-style cell space (``space: nao`` in the benchmark); defaults: its CIFAR command."""

    setting_names = (*WeightSharingStrategy.setting_names, "iterations", "seed_archs", "new_archs", "random_archs",
                     "top_k", "sample_policy", "score_batch_size", "score_batches", "final_candidates",
                     "embedding_size", "hidden_size", "mlp_layers", "mlp_hidden_size", "mlp_dropout", "controller_lr",
                     "controller_weight_decay", "controller_epochs", "controller_batch_size", "controller_expand",
                     "tradeoff", "step_size", "max_step_size")

    name = "nao"

    def __init__(self, *, epochs: int = 200, batch_size: int = 64, layers: int = 11, channels: int = 20,
                 w_lr: float = 0.025, w_lr_min: float = 0.001, w_weight_decay: float = 3e-4, iterations: int = 4,
                 seed_archs: int = 600, new_archs: int = 300, random_archs: int = 100, top_k: int = 100,
                 sample_policy: str = "params", score_batch_size: int = 500, score_batches: int = 1,
                 final_candidates: int = 5, embedding_size: int = 48, hidden_size: int = 96, mlp_layers: int = 3,
                 mlp_hidden_size: int = 200, mlp_dropout: float = 0.1, controller_lr: float = 1e-3,
                 controller_weight_decay: float = 1e-4, controller_epochs: int = 1000,
                 controller_batch_size: int = 100, controller_expand: int | None = 8, tradeoff: float = 0.8,
                 step_size: float = 1.0, max_step_size: int = 50, **common: Any):
        super().__init__(epochs=epochs, batch_size=batch_size, layers=layers, channels=channels, w_lr=w_lr,
                         w_lr_min=w_lr_min, w_weight_decay=w_weight_decay, **common)
        m = self.name
        self.iterations = check_int(m, "iterations", iterations)
        if self.iterations > self.epochs:
            raise ConfigError(f"nao.iterations ({iterations}) must be <= epochs ({epochs}): each iteration trains")
        self.seed_archs = check_int(m, "seed_archs", seed_archs, 2)
        self.new_archs = check_int(m, "new_archs", new_archs, 0)
        self.random_archs = check_int(m, "random_archs", random_archs, 0)
        self.top_k = check_int(m, "top_k", top_k)
        if sample_policy not in ("params", "uniform"):
            raise ConfigError(f"nao.sample_policy must be 'params' (NAO's child_sample_policy) or 'uniform', "
                              f"got {sample_policy!r}")
        self.sample_policy = sample_policy
        self.score_batch_size = check_int(m, "score_batch_size", score_batch_size)
        self.plain_batch_size = self.score_batch_size  # the batches of ctx.plain_stream
        self.plain_valid_batches = True  # NAO scores on its valid_transform (no augmentation) queue
        self.score_batches = check_int(m, "score_batches", score_batches)
        self.final_candidates = check_int(m, "final_candidates", final_candidates)
        self.embedding_size = check_int(m, "embedding_size", embedding_size)
        self.hidden_size = check_int(m, "hidden_size", hidden_size)
        self.mlp_layers = check_int(m, "mlp_layers", mlp_layers, 0)
        self.mlp_hidden_size = check_int(m, "mlp_hidden_size", mlp_hidden_size)
        self.mlp_dropout = check_number(m, "mlp_dropout", mlp_dropout)
        if self.mlp_dropout >= 1:
            raise ConfigError(f"nao.mlp_dropout must be in [0, 1), got {mlp_dropout!r}")
        self.controller_lr = check_number(m, "controller_lr", controller_lr)
        self.controller_weight_decay = check_number(m, "controller_weight_decay", controller_weight_decay)
        self.controller_epochs = check_int(m, "controller_epochs", controller_epochs)
        self.controller_batch_size = check_int(m, "controller_batch_size", controller_batch_size)
        self.controller_expand = None if controller_expand is None else check_int(m, "controller_expand",
                                                                                   controller_expand)
        self.tradeoff = check_number(m, "tradeoff", tradeoff)
        if self.tradeoff > 1:
            raise ConfigError(f"nao.tradeoff (weight of the prediction loss) must be in [0, 1], got {tradeoff!r}")
        self.step_size = check_number(m, "step_size", step_size)
        self.max_step_size = check_int(m, "max_step_size", max_step_size)

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
        pool = [ctx.space.sample(rng) for _ in range(self.seed_archs)]  # NAO's generate_arch: not deduplicated
        scores: dict[Genotype, float] = {}
        weights = self._sampling_weights(ctx)
        probs = weights(pool)

        def draw() -> Genotype:  # NAO's utils.sample_arch
            return pool[rng.choice(len(pool), p=probs)]

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
            if iteration == self.iterations - 1:
                break  # NAO's last evaluation point: score the pool, propose nothing (train_search.py:558)
            ranked = sorted(pool, key=lambda g: -scores[g])
            epd = self._fit(ctx, codec, ranked, scores, rng)
            new = self._propose(ctx, codec, epd, ranked[: self.top_k], set(pool))
            ctx.log(f"nao iteration {iteration + 1}/{self.iterations}: best pool score "
                    f"{max(scores.values()):.2f}, {len(new)} new architectures")
            pool = ranked + new + [ctx.space.sample(rng) for _ in range(self.random_archs)]
            probs = weights(pool)
        finalists = sorted(dict.fromkeys(pool), key=lambda g: -scores[g])[: self.final_candidates]
        evaluated = [(self.valid_accuracy(ctx, g), -i, g) for i, g in enumerate(finalists)]
        best_acc, _, best = max(evaluated, key=lambda t: (t[0], t[1]))
        return best, best_acc

    def _sampling_weights(self, ctx: SearchContext) -> Any:
        """Pool → probabilities: uniform, or proportional to each child network's parameter count (NAO's
        ``child_sample_policy params``: ``count_parameters_in_MB`` of the search-size child network)."""
        counts: dict[Genotype, int] = {}
        network = ctx.net.network
        classes, stem = network.classifier.out_features, "cifar" if network.stem1 is None else "imagenet"

        def weights(pool: list[Genotype]) -> np.ndarray | None:
            if self.sample_policy == "uniform":
                return None
            for g in pool:
                if g not in counts:
                    counts[g] = count_parameters(ctx.space, g, self.channels, classes, self.layers, stem)
            p = np.array([counts[g] for g in pool], dtype=np.float64)
            return p / p.sum()

        return weights

    def _score(self, ctx: SearchContext, pool: list[Genotype]) -> dict[Genotype, float]:
        """Accuracy (%) of every pool architecture on its own next unaugmented validation batch(es) (NAO's
        ``child_valid``: a fresh shuffled batch per architecture, BN on batch statistics)."""
        stream = ctx.valid_stream if ctx.plain_stream is None else ctx.plain_stream
        return {g: float(np.mean([self.batch_accuracy(ctx, g, next(stream)) for _ in range(self.score_batches)]))
                for g in pool}

    def training_set(self, codec: ArchCodec, ranked: list[Genotype], scores: dict[Genotype, float],
                     rng: np.random.RandomState) -> tuple[list[list[int]], list[float]]:
        """NAO's encoder data: min-max-scaled scores; with ``controller_expand`` a shuffled 90 % of the pool
        plus ``expand − 1`` branch-swapped copies of it (train_search.py:563-595)."""
        values = [scores[g] for g in ranked]
        low, high = min(values), max(values)
        targets = [(v - low) / max(high - low, 1e-8) for v in values]
        inputs = [codec.encode(g) for g in ranked]
        if self.controller_expand is None:
            return inputs, targets
        order = rng.permutation(len(inputs))
        split = int(len(inputs) * 0.9)
        inputs, targets = [inputs[i] for i in order[:split]], [targets[i] for i in order[:split]]
        base = list(zip(inputs, targets))
        for _ in range(self.controller_expand - 1):
            for tokens, target in base:
                a, b = rng.randint(codec.n_nodes), rng.randint(codec.n_nodes)
                inputs.append(codec.swap_branches(tokens, a, b))
                targets.append(target)
        return inputs, targets

    def _fit(self, ctx: SearchContext, codec: ArchCodec, ranked: list[Genotype], scores: dict[Genotype, float],
             rng: np.random.RandomState) -> EncoderPredictorDecoder:
        """Train a fresh encoder–predictor–decoder on the scored pool (seeded: same pool, same model)."""
        from nni_nas_bench.data._seeding import make_generator

        generator = make_generator(self.name, "epd", self.seed, len(ranked))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
            epd = EncoderPredictorDecoder(codec.vocab, codec.mask, self.embedding_size, self.hidden_size,
                                          self.mlp_layers, self.mlp_hidden_size, self.mlp_dropout)
            epd = epd.to(ctx.device)
            inputs, targets = self.training_set(codec, ranked, scores, rng)
            tokens = torch.tensor(inputs, device=ctx.device)
            y = torch.tensor(targets, device=ctx.device, dtype=torch.float32)
            optimizer = torch.optim.Adam(epd.parameters(), lr=self.controller_lr,
                                         weight_decay=self.controller_weight_decay)
            epd.train()
            for _ in range(self.controller_epochs):
                batch_tokens = tokens
                if self.controller_expand is None:  # NAODataset(swap=True): a fresh branch swap per item
                    batch_tokens = torch.tensor([codec.swap_branches(t, rng.randint(codec.n_nodes),
                                                                     rng.randint(codec.n_nodes)) for t in inputs],
                                                device=ctx.device)
                order = torch.randperm(len(inputs), generator=generator).to(ctx.device)
                for start in range(0, len(inputs), self.controller_batch_size):
                    idx = order[start: start + self.controller_batch_size]
                    outputs = epd.encode(batch_tokens[idx])
                    mse = nn.functional.mse_loss(epd.predict(outputs), y[idx])
                    logits = epd.decode_logits(outputs, batch_tokens[idx])
                    nll = nn.functional.cross_entropy(logits.flatten(0, 1), batch_tokens[idx].flatten())
                    loss = self.tradeoff * mse + (1 - self.tradeoff) * nll
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    nn.utils.clip_grad_norm_(epd.parameters(), 5.0)
                    optimizer.step()
        return epd.eval()

    def _propose(self, ctx: SearchContext, codec: ArchCodec, epd: EncoderPredictorDecoder, top: list[Genotype],
                 known: set[Genotype]) -> list[Genotype]:
        """New architectures: all ``top`` re-decoded at step sizes 1, 2, … until ``new_archs`` are new
        (train_search.py:615-635; encoder.py ``infer``: E' = normalize(E + k·∂f/∂E), embedding = normalised mean)."""
        new: list[Genotype] = []
        if self.new_archs == 0 or not top:
            return new
        tokens = torch.tensor([codec.encode(g) for g in top], device=ctx.device)
        with torch.enable_grad():
            outputs = epd.encode(tokens).detach().requires_grad_(True)
            grad = torch.autograd.grad(epd.predict(outputs).sum(), outputs)[0]
        k = 0
        with torch.no_grad():
            while len(new) < self.new_archs:
                k += 1
                moved = nn.functional.normalize(outputs + k * self.step_size * grad, dim=-1)
                for seq in epd.generate(moved).tolist():
                    g = codec.decode(seq)
                    if g not in known and g not in new:
                        new.append(g)
                    if len(new) >= self.new_archs:
                        break
                if k > self.max_step_size:
                    break
        return new


def count_parameters(space: Any, genotype: Genotype, channels: int, num_classes: int, layers: int, stem: str) -> int:
    """Parameters of the child network of ``genotype`` at the search size (NAO weights its sampling by them)."""
    with torch.random.fork_rng(devices=[]):
        net = space.build_network(genotype, C=channels, num_classes=num_classes, layers=layers, stem=stem)
    return sum(p.numel() for p in net.parameters())
