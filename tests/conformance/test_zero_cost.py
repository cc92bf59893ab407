"""Zero-cost proxies against their reference code, on networks small enough to score by hand.

References (fetched snapshots): BayesWatch/nas-without-training (NASWOT) and SamsungLabs/zero-cost-nas
(synflow, grad_norm, snip, jacob_cov). Each test names the lines it encodes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from nni_nas_bench import zero_cost
from nni_nas_bench.errors import ConfigError

E = math.e


def _linear(weight: list[list[float]], bias: list[float] | None = None) -> nn.Linear:
    layer = nn.Linear(len(weight[0]), len(weight), bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        if bias is not None:
            layer.bias.copy_(torch.tensor(bias))
    return layer


def test_naswot_kernel_counts_agreeing_relu_codes() -> None:
    """score_networks.py:107-110: codes ``inp > 0`` of each ReLU's input, K += x x^T + (1-x)(1-x)^T;
    scores.py:8: ``slogdet(K)``. Two images whose codes agree on 1 of 2 units: K = [[2, 1], [1, 2]], log 3."""
    net = nn.Sequential(_linear([[1, 0], [0, 1]]), nn.ReLU(), _linear([[1, 1]]))
    x = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    assert zero_cost.naswot(net, x) == pytest.approx(math.log(3))
    two = nn.Sequential(_linear([[1, 0], [0, 1]]), nn.ReLU(), _linear([[1, 0], [0, 1]]), nn.ReLU())
    # both ReLUs see the same codes: K doubles, [[4, 2], [2, 4]], det 12
    assert zero_cost.naswot(two, x) == pytest.approx(math.log(12))


def test_synflow_takes_absolute_weights_on_one_all_ones_input_without_batchnorm() -> None:
    """synflow.py:34 (``param.abs_()``), :51 (one all-ones float64 input), :58 (``|w * dR/dw|``), summed over
    Conv2d/Linear (p_utils.py:62); predictive.py:35: BatchNorm's forward is a no-op (``bn=False``).
    |W1| = [[1, 2], [3, 4]], |W2| = [[1, 1]]: h = [3, 7], R = 10; W2's term 3 + 7, W1's term sum |W1| = 10."""
    net = nn.Sequential(_linear([[1, -2], [3, 4]]), nn.BatchNorm1d(2), nn.ReLU(), _linear([[-1, 1]]))
    assert zero_cost.synflow(net, torch.zeros(8, 2)) == pytest.approx(20.0)
    assert net[0].weight[0, 1].item() == -2.0  # the caller's network is untouched


def test_grad_norm_and_snip_on_a_hand_computed_cross_entropy_gradient() -> None:
    """grad_norm.py:36 (per-layer ``weight.grad.norm()``, summed) and snip.py:63 (``|d L / d mask|`` =
    ``|w * dL/dw|``). Identity weights, inputs e1 and e2 with targets 0 and 1: dL/dW = (P - Y)^T / 2 has four
    entries of magnitude q / 2, q = 1 / (e + 1); norm = q, and snip keeps the diagonal: 2 (q / 2) = q."""
    net = nn.Sequential(_linear([[1, 0], [0, 1]]))
    x, y = torch.eye(2), torch.tensor([0, 1])
    q = 1 / (E + 1)
    assert zero_cost.grad_norm(net, x, y) == pytest.approx(q, rel=1e-6)
    assert zero_cost.snip(net, x, y) == pytest.approx(q, rel=1e-6)


def test_jacob_cov_of_identical_jacobians() -> None:
    """jacob_cov.py:40: -sum(log(v + k) + 1 / (v + k)), k = 1e-5, v the eigenvalues of the images' Jacobian
    correlation matrix. A linear map gives every image the same Jacobian: correlations all 1, v = (2, 0)."""
    net = nn.Sequential(_linear([[1, 2, 3]]))
    k = 1e-5
    expected = -(math.log(2 + k) + 1 / (2 + k) + math.log(k) + 1 / k)
    assert zero_cost.jacob_cov(net, torch.randn(2, 3)) == pytest.approx(expected, rel=1e-6)


def test_jacob_cov_is_nan_where_no_gradient_reaches_the_input() -> None:
    """jacob_cov.py:51-55: the score is taken in a ``try`` whose failure gives NaN; zero Jacobians (an NB201
    cell whose every path is ``none``) have no correlation matrix, so the score is NaN, not an error."""
    from search_spaces import create_space

    space = create_space("nb201")
    net = space.build_network(space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"), C=4, layers=1)
    assert math.isnan(zero_cost.jacob_cov(net, torch.randn(4, 3, 32, 32)))


def test_score_shares_passes_but_equals_each_proxy_alone() -> None:
    """One forward for NASWOT + jacob_cov and one loss gradient for grad_norm + snip give the values each
    reference measure computes on its own copy (same network, same batch)."""
    from search_spaces import create_space

    space = create_space("nb201")
    torch.manual_seed(0)
    net = space.build_network(space.sample(3), C=4, layers=1)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    together = zero_cost.score(net, x, y)
    alone = {p: zero_cost.score(net, x, y, [p])[p] for p in zero_cost.PROXIES}
    assert together == alone and all(np.isfinite(v) for v in together.values())
    state = {k: v.clone() for k, v in net.state_dict().items()}
    zero_cost.score(net, x, y)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())  # BN statistics included


def test_bad_proxy_names_and_batches_get_one_line() -> None:
    net = nn.Sequential(_linear([[1, 0]]))
    with pytest.raises(ConfigError, match="unknown zero-cost proxy 'nawot'; choose one of: grad_norm"):
        zero_cost.score(net, torch.zeros(2, 2), torch.zeros(2, dtype=torch.long), ["nawot"])
    with pytest.raises(ConfigError, match="at least 2 images"):
        zero_cost.score(net, torch.zeros(1, 2), torch.zeros(1, dtype=torch.long))
