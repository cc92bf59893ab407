"""Conformance of ``reinforce`` with NAS-Bench-201's REINFORCE baseline: D-X-Y/AutoDL-Projects@
f46486e21b71ae6459a700be720d7648b5429569, ``exps/NAS-Bench-201-algos/reinforce.py`` (policy 30-70,
EMA 73-89, update 183-213) and its reported command ``docs/NAS-Bench-201.md:235`` (lr 0.5; EMA 0.9 in
``scripts-search/NAS-Bench-201-algos/REINFORCE.sh``)."""

from __future__ import annotations

import inspect

import numpy as np

from nni_nas_bench.strategies import create_strategy
from nni_nas_bench.strategies.reinforce import ReinforceStrategy
from tests.conformance.multi_trial_toy import ToySpace

SPACE = ToySpace({"e0": ["a", "b", "c"], "e1": ["x", "y"]})


def test_defaults_are_the_nb201_baseline() -> None:
    """docs/NAS-Bench-201.md:235 ``REINFORCE.sh cifar10 0.5``; REINFORCE.sh ``--EMA_momentum 0.9``."""
    defaults = {k: p.default for k, p in inspect.signature(ReinforceStrategy.__init__).parameters.items()}
    assert (defaults["lr"], defaults["baseline_decay"]) == (0.5, 0.9)


def test_initial_policy_is_near_uniform_noise() -> None:
    """reinforce.py:40-42: ``arch_parameters = 1e-3 * randn``, one row per edge."""
    strategy = create_strategy("reinforce", seed=4)
    strategy.start(SPACE)
    expected_rng = np.random.RandomState(4)
    for p, k in zip(strategy.probabilities(), (3, 2)):
        logits = 1e-3 * expected_rng.randn(k)
        np.testing.assert_allclose(p, np.exp(logits) / np.exp(logits).sum(), rtol=1e-12)


def adam(params: list[np.ndarray], grads: list[list[np.ndarray]], lr: float) -> list[np.ndarray]:
    """Adam (Kingma & Ba; torch.optim.Adam defaults betas (0.9, 0.999), eps 1e-8) over a gradient sequence."""
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    params = [p.copy() for p in params]
    for t, step in enumerate(grads, start=1):
        for j, g in enumerate(step):
            m[j] = 0.9 * m[j] + 0.1 * g
            v[j] = 0.999 * v[j] + 0.001 * g * g
            params[j] -= lr * (m[j] / (1 - 0.9**t)) / (np.sqrt(v[j] / (1 - 0.999**t)) + 1e-8)
    return params


def test_two_updates_on_a_tiny_case() -> None:
    """reinforce.py:195-200: ``baseline.update(reward)`` FIRST, then ``loss = -log_prob * (reward -
    baseline.value())``, one Adam step; the EMA is bias-corrected (73-89: numerator and denominator both
    averaged). The reward is the accuracy in percent, as the NB201 API returns it. Before the fix: plain
    SGD on rewards/100 with the baseline updated after the advantage. The second update also checks that
    the policy a proposal and its gradient share is recomputed after each step (a stale one fails it)."""
    strategy = create_strategy("reinforce", seed=1, budget=10)
    strategy.start(SPACE)
    logits = [1e-3 * x for x in (lambda r: [r.randn(3), r.randn(2)])(np.random.RandomState(1))]
    rewards, grads, num, den = [91.0, 93.5], [], 0.0, 0.0
    for reward in rewards:
        sample = strategy.ask()
        idx = strategy.indices(sample)
        num, den = 0.9 * num + 0.1 * reward, 0.9 * den + 0.1
        advantage = reward - num / den
        probs = [np.exp(x) / np.exp(x).sum() for x in logits]
        # d(-log pi)/d logits = -(onehot - p); times the advantage
        grads.append([-advantage * (np.eye(len(p))[i] - p) for p, i in zip(probs, idx)])
        strategy.tell(sample, {"default": reward})
        logits = adam([1e-3 * x for x in (lambda r: [r.randn(3), r.randn(2)])(np.random.RandomState(1))],
                      grads, lr=0.5)
        assert abs(strategy.baseline - num / den) < 1e-12
    assert np.abs(grads[0][0]).max() < 1e-12  # first reward = its own baseline: (almost) no step
    for p, x in zip(strategy.probabilities(), logits):
        np.testing.assert_allclose(p, np.exp(x) / np.exp(x).sum(), rtol=1e-6)  # float noise of the ~0 step
    assert max(max(abs(p - 1 / len(p))) for p in strategy.probabilities()) > 0.1  # Adam: a step of ~lr


def test_pick_is_the_best_evaluated() -> None:
    """reinforce.py:213 ``best_arch = max(trace, key=reward)`` (not the policy's argmax)."""
    strategy = create_strategy("reinforce", seed=0, budget=6)
    result = strategy.search(SPACE, lambda s: {"default": {"a": 1.0, "b": 3.0, "c": 2.0}[s["e0"]]})
    assert result.best_metrics["default"] == max(h["metrics"]["default"] for h in result.history)


def test_decisions_of_different_sizes_keep_their_own_policies() -> None:
    """reinforce.py:40-42 keeps one row per edge; ours keeps all rows in one matrix, padded with -inf where a
    decision has fewer values. After updates the padding still has probability 0 and every decision's
    probabilities sum to 1 over its own values, so the sampler never proposes a value the decision lacks."""
    strategy = create_strategy("reinforce", seed=2, budget=30)
    result = strategy.search(SPACE, lambda s: {"default": {"a": 90.0, "b": 93.0, "c": 91.0}[s["e0"]]
                                               + {"x": 0.0, "y": 1.0}[s["e1"]]})
    assert [len(p) for p in strategy.probabilities()] == [3, 2]
    assert all(abs(p.sum() - 1) < 1e-12 for p in strategy.probabilities())
    assert bool(np.isneginf(strategy._logits[1, 2]))
    assert {h["sample"]["e1"] for h in result.history} <= {"x", "y"}


def test_the_policy_optimizer_is_torch_adam() -> None:
    """reinforce.py:164 ``torch.optim.Adam(policy.parameters(), lr=xargs.learning_rate)``: ours is a NumPy copy
    of its arithmetic (torch's step costs ~1 ms on a CPU-only machine); 50 steps of random gradients on a -inf
    padded matrix end where torch's ends, to the last bits, and padding stays -inf."""
    import torch

    from nni_nas_bench.strategies.reinforce import _Adam

    rng = np.random.RandomState(0)
    start = rng.randn(3, 4)
    start[2, 3] = -np.inf
    ours, theirs = start.copy(), torch.nn.Parameter(torch.from_numpy(start.copy()))
    adam, reference = _Adam(start.shape, lr=0.5), torch.optim.Adam([theirs], lr=0.5)
    for _ in range(50):
        grad = rng.randn(3, 4) * rng.choice([1e-3, 1.0, 50.0])
        grad[2, 3] = 0.0
        adam.step(ours, grad)
        theirs.grad = torch.from_numpy(grad.copy())
        reference.step()
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-13, atol=0)
    assert np.isneginf(ours[2, 3])


def test_proposals_are_numpy_choice_draws() -> None:
    """reinforce.py:92-95 samples each edge from its softmax (``Categorical(probs).sample()``); ours draws each
    decision as ``RandomState.choice(n, p=probs)`` would, all decisions at once: same draws, same stream."""
    strategy = create_strategy("reinforce", seed=5, budget=40)
    strategy.start(SPACE)
    for step in range(40):
        probabilities = strategy.probabilities()
        twin = np.random.RandomState()
        twin.set_state(strategy.rng.get_state())
        expected = [twin.choice(len(p), p=p / p.sum()) for p in probabilities]
        sample = strategy.ask()
        assert strategy.indices(sample) == expected, step
        assert strategy.rng.get_state()[2] == twin.get_state()[2]  # the stream advanced as choice's would
        strategy.tell(sample, {"default": 90.0 + 3 * (sample["e0"] == "b") + step % 3})
