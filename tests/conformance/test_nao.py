"""NAO conformance: the suite's NAO against the code the benchmark ran.

Reference (facts only, no code copied): antoyang/NAS-Benchmark @ c2758da73192d408aad458768f26d3537dd78c40,
``NAO/`` (a copy of renqianluo/NAO_pytorch @ 418ff717e6a6e9b22ec163fd4d21f2f8013f03c5 ``NAO_V1`` with the
224-px datasets added) and its README search command.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from nni_nas_bench.strategies.nao import ArchCodec, EncoderPredictorDecoder, NaoStrategy, count_parameters
from nni_nas_bench.training.protocol import from_dict
from search_spaces import create_space
from search_spaces.genotype import Genotype
from search_spaces.path_supernet import PathSupernet

ROOT = Path(__file__).resolve().parents[2]
CPU = SimpleNamespace(device=torch.device("cpu"))


class HashDecoder(nn.Module):
    """A tiny deterministic model with the three calls NAO's generation makes.

    Encoder outputs: per (input, op) pair, the normalised vector (input token, op token, 1); predictor f: the
    mean of the third feature over the 20 pairs, so ∂f/∂E is 1/20 on that feature; decoding: the moved
    outputs, rounded, seed the space's sampler (distinct moved outputs give distinct architectures).
    """

    def __init__(self, space: object, codec: ArchCodec):
        super().__init__()
        self.space, self.codec, self.calls = space, codec, 0

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        pairs = tokens.view(tokens.shape[0], -1, 2).float()
        return nn.functional.normalize(torch.cat([pairs, torch.ones_like(pairs[..., :1])], -1), dim=-1)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs[..., 2].mean(1)

    def generate(self, moved: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        assert torch.allclose(moved.norm(dim=-1), torch.ones(moved.shape[:2]))  # moved outputs re-normalised
        seeds = [abs(hash(tuple((row * 1e5).round().long().flatten().tolist()))) % 2**31 for row in moved]
        return torch.tensor([self.codec.encode(self.space.sample(s)) for s in seeds])


def test_one_iteration_proposes_300_from_100_tops_at_step_sizes_1_2_3() -> None:
    """NAO/train_search.py:615-635: while fewer than 300 new, step size += 1, ALL top-100 are re-decoded
    (nao_infer on the whole top-100 queue) and each decoded arch not in the pool nor already new is kept;
    encoder.py:72-84: E' = normalize(E + λ ∂f/∂E) per step, λ = the step size."""
    space = create_space("nao")
    codec = ArchCodec(space)
    top = [space.sample(s) for s in range(100)]
    model = HashDecoder(space, codec)
    new = NaoStrategy()._propose(CPU, codec, model, top, set(top))  # type: ignore[arg-type]
    assert len(new) == 300 and model.calls == 3 and not set(new) & set(top)
    outputs = model.encode(torch.tensor([codec.encode(g) for g in top]))
    step = torch.zeros_like(outputs)
    step[..., 2] = 1 / 20  # ∂f/∂E of the mean of feature 2 over 20 pairs
    for k in (1, 2, 3):
        moved = nn.functional.normalize(outputs + k * step, dim=-1)
        expected = [codec.decode(t) for t in model.generate(moved).tolist()]
        assert new[100 * (k - 1): 100 * k] == expected


def test_step_sizes_stop_after_51_tries() -> None:
    """NAO/train_search.py:616 (max_step_size 50) and :633-634 (break once the step size exceeds it): a decoder
    that keeps returning one architecture is tried at step sizes 1..51, then generation gives up."""
    space = create_space("nao")
    codec = ArchCodec(space)
    top = [space.sample(s) for s in range(3)]

    class Constant(HashDecoder):
        def generate(self, moved: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            return torch.tensor([codec.encode(space.sample(999))] * moved.shape[0])

    model = Constant(space, codec)
    new = NaoStrategy()._propose(CPU, codec, model, top, set(top))  # type: ignore[arg-type]
    assert new == [space.sample(999)] and model.calls == 51


def test_encoder_predictor_decoder_shapes_and_normalisation() -> None:
    """NAO/train_search.py:58-79 (encoder 96 hidden, 48 embedding, source 40 / encoder length 20, mlp 3 x 200,
    mlp dropout 0.1, l2 1e-4, trade-off 0.8, 1000 epochs, vocabulary 12); encoder.py:36-50 (MLP layers
    linear-ReLU-dropout, regressor to 1), :52-70 (pairs of embeddings per LSTM step; outputs and their mean
    L2-normalised; sigmoid score)."""
    s = NaoStrategy()
    assert (s.mlp_layers, s.mlp_hidden_size, s.mlp_dropout, s.controller_weight_decay, s.controller_epochs,
            s.tradeoff, s.embedding_size, s.hidden_size) == (3, 200, 0.1, 1e-4, 1000, 0.8, 48, 96)
    codec = ArchCodec(create_space("nao"))
    assert codec.vocab == 12 and codec.length == 40
    epd = EncoderPredictorDecoder(codec.vocab, codec.mask).eval()
    linears = [m for m in epd.mlp if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(96, 200), (200, 200), (200, 200)]
    assert [m.p for m in epd.mlp if isinstance(m, nn.Dropout)] == [0.1] * 3
    assert (epd.regressor.in_features, epd.regressor.out_features) == (200, 1)
    assert epd.encoder.input_size == 96  # one (input, op) pair of 48-d embeddings per step
    tokens = torch.tensor([codec.encode(create_space("nao").sample(s)) for s in range(4)])
    outputs = epd.encode(tokens)
    assert outputs.shape == (4, 20, 96) and torch.allclose(outputs.norm(dim=-1), torch.ones(4, 20))
    assert torch.allclose(epd.arch_embedding(outputs).norm(dim=-1), torch.ones(4))
    assert ((epd.predict(outputs) > 0) & (epd.predict(outputs) < 1)).all()


def test_branch_swap_augmentation_expands_90_percent_eightfold() -> None:
    """NAO/train_search.py:570-595 (controller_expand 8 in the README: a shuffled 90 % split plus 7 copies of it,
    each with node a of the normal and node b of the reduction cell branch-swapped); utils.py:358-364 (the swap:
    tokens 4a..4a+1 and 4a+2..4a+3 exchanged, likewise at 20 + 4b)."""
    space = create_space("nao")
    codec = ArchCodec(space)
    tokens = list(range(40))
    swapped = codec.swap_branches(tokens, 1, 4)
    assert swapped[4:8] == [6, 7, 4, 5] and swapped[36:40] == [38, 39, 36, 37]
    assert swapped[:4] == tokens[:4] and swapped[8:36] == tokens[8:36]
    pool = [space.sample(s) for s in range(10)]
    scores = {g: float(i) for i, g in enumerate(pool)}
    inputs, targets = NaoStrategy().training_set(codec, pool, scores, np.random.RandomState(0))
    assert len(inputs) == len(targets) == 9 * 8 and min(targets) >= 0 and max(targets) <= 1
    for seq in inputs[9:]:  # a swap reorders a node's two edges: the same network
        g = codec.decode(seq)
        assert any(sorted(g.normal) == sorted(p.normal) and sorted(g.reduce) == sorted(p.reduce) for p in pool)


def test_child_sampling_is_proportional_to_parameter_count() -> None:
    """NAO/train_search.py:488-522 and :657-689 (child_sample_policy params: each pool architecture weighted by
    count_parameters_in_MB of its search-size child network), utils.py:442-452 (prob / prob.sum())."""
    space = create_space("nao", n_nodes=2)
    heavy = Genotype([("sep_conv_5x5", 0), ("sep_conv_5x5", 1), ("sep_conv_5x5", 2), ("sep_conv_5x5", 1)], [3],
                     [("sep_conv_5x5", 0), ("sep_conv_5x5", 1), ("sep_conv_5x5", 2), ("sep_conv_5x5", 1)], [3])
    light = Genotype([("identity", 0), ("identity", 1), ("identity", 2), ("identity", 1)], [3],
                     [("identity", 0), ("identity", 1), ("identity", 2), ("identity", 1)], [3])
    heavy, light = (space.to_genotype(space.to_sample(g)) for g in (heavy, light))
    strategy = NaoStrategy(channels=4, layers=3)
    ctx = SimpleNamespace(space=space, net=PathSupernet(space, C=4, layers=3, num_classes=10))
    p = strategy._sampling_weights(ctx)([heavy, light, heavy])  # type: ignore[arg-type]
    counts = [count_parameters(space, g, 4, 10, 3, "cifar") for g in (heavy, light, heavy)]
    assert counts[0] > counts[1] and p == pytest.approx(np.array(counts) / sum(counts))
    assert NaoStrategy(sample_policy="uniform")._sampling_weights(ctx)([heavy, light]) is None


def test_search_cells_score_batches_and_final_batch_follow_the_readme() -> None:
    """NAS-Benchmark NAO/README.md search command (--child_layers 3 for CIFAR, 2 for Sport8/MIT67/flowers102,
    i.e. 3N + 2 = 11 or 8 cells; --child_eval_batch_size 500 / 128; --child_epochs 200 --child_eval_epochs 50)
    and train_cifar.py:27 (final batch 128); train_search.py:52,55,56 (600 seeds, 300 new, 100 random)."""
    s = NaoStrategy()
    assert (s.seed_archs, s.new_archs, s.random_archs, s.top_k, s.epochs, s.iterations) == (600, 300, 100, 100, 200, 4)
    assert from_dict("nao").batch_size == 128
    for dataset, cells, batch in [("cifar10", 11, 500), ("cifar100", 11, 500), ("sport8", 8, 128),
                                  ("mit67", 8, 128), ("flowers102", 8, 128)]:
        args = yaml.safe_load((ROOT / "experiments" / dataset / "nao.yml").read_text())["tuner"]["classArgs"]
        search = args["search"]
        assert (search["layers"], search["score_batch_size"], search["sample_policy"]) == (cells, batch, "params")
