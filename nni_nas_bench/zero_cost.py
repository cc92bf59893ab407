"""Training-free (zero-cost) proxies: score an untrained network from one real minibatch.

Five proxies, each computed as its reference code computes it (read from the code, cited per function):

- ``naswot`` (Mellor et al., ICML 2021; BayesWatch/nas-without-training ``score_networks.py`` and
  ``scores.py``): every ReLU's input is turned into a binary code per image (``> 0``); the kernel
  ``K = sum over ReLUs of (c c^T + (1 - c)(1 - c)^T)`` counts, for each pair of images, the units on which
  they agree; the score is ``log |det K|`` (``np.linalg.slogdet``). One forward pass of the batch.
- ``synflow``, ``grad_norm``, ``snip``, ``jacob_cov`` (Abdelfattah et al., ICLR 2021;
  SamsungLabs/zero-cost-nas ``foresight/pruners/measures/*.py``, summed over layers by
  ``foresight/pruners/predictive.py`` ``find_measures``): each on its own deep copy of the network
  (``measure(copy_net=True)``), over the weights of every ``Conv2d`` and ``Linear`` layer
  (``p_utils.get_layer_metric_array``):

  - ``synflow``: BatchNorm layers do nothing (``bn=False``: their forward is the identity), every
    parameter is replaced by its absolute value, the network runs in float64 on ONE all-ones input, and the
    score is the sum of ``|w * d(sum of outputs)/dw|``; no data is used;
  - ``grad_norm``: the sum over layers of the L2 norm of the cross-entropy loss's weight gradient;
  - ``snip``: the sum of ``|dL/dm|`` for a multiplicative mask ``m = 1`` on each weight, which is
    ``|w * dL/dw|`` (the reference patches each layer's forward with ``weight * weight_mask``);
  - ``jacob_cov``: the input gradient of the sum of outputs, per image, flattened; ``-sum(log(v + k) +
    1 / (v + k))`` over the eigenvalues ``v`` of its correlation matrix across images, ``k = 1e-5``
    (NaN where the reference's ``try`` would print an error).

All run on the network as built (train mode, as the references leave it: BatchNorm uses batch statistics).
Higher is better for every proxy. Deterministic for a given network and batch: the caller seeds the
initialisation (``torch.manual_seed``) and picks the batch.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from nni_nas_bench.errors import ConfigError, unknown_name_error

PROXIES = ("naswot", "synflow", "grad_norm", "snip", "jacob_cov")
JACOB_COV_K = 1e-5  # zero-cost-nas jacob_cov.py eval_score


def check_proxy(name: Any) -> str:
    """``name`` if it is a proxy of :data:`PROXIES`, else the one-line error naming them."""
    if name not in PROXIES:
        raise unknown_name_error("zero-cost proxy", name, PROXIES)
    return name


def _logits(output: Any) -> torch.Tensor:
    """A network's logits (networks with an auxiliary head return ``(logits, aux)`` in train mode)."""
    return output[0] if isinstance(output, (tuple, list)) else output


def _weighted_layers(model: nn.Module) -> list[nn.Module]:
    """The layers the zero-cost-nas measures sum over (``p_utils.get_layer_metric_array``)."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def naswot(model: nn.Module, inputs: torch.Tensor) -> float:
    """NASWOT's ``hook_logdet`` score of ``model`` on ``inputs`` (module docstring)."""
    return _input_pass(model, inputs, naswot=True, jacobian=False)["naswot"]


def synflow(model: nn.Module, inputs: torch.Tensor) -> float:
    """SynFlow of ``model`` (module docstring); ``inputs`` only gives the input shape."""
    net = copy.deepcopy(model)
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.forward = lambda x: x  # the reference's bn=False copy (predictive.copynet: no_op)
    with torch.no_grad():
        for value in net.state_dict().values():
            value.abs_()
    net.double()
    net.zero_grad()
    torch.sum(_logits(net(torch.ones((1, *inputs.shape[1:]), dtype=torch.float64)))).backward()
    return _sum_over_layers(net, lambda w: (w * w.grad).abs().sum())


def grad_norm(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Sum over layers of the L2 norm of the loss's weight gradient (module docstring)."""
    return _loss_pass(model, inputs, targets)["grad_norm"]


def snip(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """SNIP saliency summed over all weights: ``|w * dL/dw|`` (module docstring)."""
    return _loss_pass(model, inputs, targets)["snip"]


def jacob_cov(model: nn.Module, inputs: torch.Tensor) -> float:
    """Score of the correlation of the per-image input Jacobians (module docstring)."""
    return _input_pass(model, inputs, naswot=False, jacobian=True)["jacob_cov"]


def _loss_pass(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """grad_norm and snip from one loss gradient on a copy (each reference measure makes its own copy of the
    same network and runs the same pass: the gradients, hence the values, are the same)."""
    net = copy.deepcopy(model)
    net.zero_grad()
    F.cross_entropy(_logits(net(inputs)), targets).backward()
    return {"grad_norm": _sum_over_layers(net, lambda w: w.grad.norm()),
            "snip": _sum_over_layers(net, lambda w: (w * w.grad).abs().sum())}


def _input_pass(model: nn.Module, inputs: torch.Tensor, naswot: bool, jacobian: bool) -> dict[str, float]:
    """NASWOT's kernel (ReLU codes of a forward pass) and jacob_cov (the input gradient) from one pass on a
    copy: NASWOT's forward and jacob_cov's are the same train-mode forward of the same batch."""
    n = inputs.shape[0]
    net = copy.deepcopy(model)  # a train-mode forward updates BatchNorm's running statistics
    kernel = torch.zeros(n, n, dtype=torch.float64)

    def count(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        codes = (args[0].detach().reshape(n, -1) > 0).to(torch.float64)
        kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, nn.ReLU)] if naswot else []
    x = inputs.detach().clone().requires_grad_(jacobian)
    try:
        with torch.set_grad_enabled(jacobian):
            output = _logits(net(x))
    finally:
        for hook in hooks:
            hook.remove()
    result = {}
    if naswot:
        result["naswot"] = float(np.linalg.slogdet(kernel.numpy())[1])
    if jacobian:
        if output.requires_grad:
            output.backward(torch.ones_like(output))
        # No gradient reaches the input where every path from it is a `none` op (our Zero op is a constant): the
        # Jacobians are zero, whose correlation the reference cannot take (its try gives NaN) -> NaN here too.
        grad = x.grad if x.grad is not None else torch.zeros_like(x)
        result["jacob_cov"] = _jacob_cov_score(grad.detach().reshape(n, -1).to(torch.float64).numpy())
    return result


def _jacob_cov_score(jacobians: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        correlations = np.corrcoef(jacobians)
        if not np.all(np.isfinite(correlations)):
            return math.nan
        values = np.linalg.eigvalsh(correlations)  # symmetric: the reference's np.linalg.eig, real
        score = -np.sum(np.log(values + JACOB_COV_K) + 1.0 / (values + JACOB_COV_K))
    return float(score) if np.isfinite(score) else math.nan


def _sum_over_layers(net: nn.Module, per_layer: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """Sum of a per-layer value over the weighted layers; layers without a gradient add 0 (the reference's
    ``zeros_like``)."""
    total = 0.0
    with torch.no_grad():
        for layer in _weighted_layers(net):
            if layer.weight.grad is not None:
                total += float(per_layer(layer.weight))
    return total


def score(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
          proxies: tuple[str, ...] | list[str] = PROXIES) -> dict[str, float]:
    """Every proxy in ``proxies`` of ``model`` on one batch; ``model`` itself is left as it was."""
    for proxy in proxies:
        check_proxy(proxy)
    if inputs.shape[0] < 2:
        raise ConfigError(f"zero-cost proxies need a batch of at least 2 images, got {inputs.shape[0]}")
    wanted = set(proxies)
    values: dict[str, float] = {}
    if wanted & {"naswot", "jacob_cov"}:
        values.update(_input_pass(model, inputs, naswot="naswot" in wanted, jacobian="jacob_cov" in wanted))
    if wanted & {"grad_norm", "snip"}:
        values.update(_loss_pass(model, inputs, targets))
    if "synflow" in wanted:
        values["synflow"] = synflow(model, inputs)
    return {name: values[name] for name in proxies}


def proxy_batch(dataset: str, data_root: Any, batch_size: int = 64, seed: int = 0,
                download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """One real minibatch for the proxies: ``batch_size`` images drawn (seeded) from the search split's training
    half of ``dataset``, normalised with the dataset's mean and std, without augmentation.

    The references score on one batch of their training loader (zero-cost-nas ``p_utils.get_some_data``,
    NASWOT ``score_networks.py``); the search split keeps the test set out of the search.
    """
    from nni_nas_bench.data import load_split

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise ConfigError(f"zero-cost batch_size must be an integer >= 2, got {batch_size!r}")
    split = load_split(dataset, data_root, "search", seed=seed, download=download)
    if not hasattr(split, "train_x"):
        raise ConfigError(f"zero-cost proxies support the 32-px datasets (CIFAR-10/100), not {dataset!r}")
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(split.train_y), generator=generator)[:batch_size]
    mean = torch.tensor(split.info.mean).view(1, 3, 1, 1)
    std = torch.tensor(split.info.std).view(1, 3, 1, 1)
    images = (split.train_x[chosen].float() / 255.0 - mean) / std
    return images, split.train_y[chosen].clone()


def score_candidate(params: dict[str, Any], *, data_root: Any, device: str = "auto",
                    download: bool = False) -> dict[str, Any]:
    """A zero-cost candidate trial: score the architecture of ``params`` with its proxy, untrained.

    The network is the candidate protocol's (``channels``, ``layers``) for the dataset's classes, initialised
    from the protocol's seed; the batch is :func:`proxy_batch` of the same seed. The metrics' ``default`` is the
    score (what the strategy ranks by); a NaN score fails the trial with the reason (a failed candidate).
    """
    import json

    from nni_nas_bench.contract import identity, with_arch_id
    from nni_nas_bench.errors import TrialFailedError, mapping_arg
    from nni_nas_bench.provenance import code_version
    from nni_nas_bench.training.trainer import resolve_device
    from nni_nas_bench.trial_network import TrialNetwork

    settings = mapping_arg("zero_cost", params.get("zero_cost"))
    proxy, batch_size = settings.get("proxy", "naswot"), settings.get("batch_size", 64)
    check_proxy(proxy)
    network = TrialNetwork.of(params)
    protocol, genotype = network.protocol, network.genotype
    device_ = resolve_device(device)
    inputs, targets = proxy_batch(network.info.name, data_root, batch_size, protocol.seed, download=download)
    model = network.build().to(device_)
    value = score(model, inputs.to(device_), targets.to(device_), [proxy])[proxy]
    if not math.isfinite(value):
        raise TrialFailedError(f"the {proxy} score of this network is {value} (a degenerate network for this "
                               "proxy): the candidate counts as failed")
    return with_arch_id({
        "default": value, proxy: value, "zero_cost_proxy": proxy, "zero_cost_batch_size": batch_size,
        **identity(params), "genotype": genotype.to_text(), "train_seed": protocol.seed,
        "protocol_name": protocol.name, "space_args": json.dumps(network.space.settings, sort_keys=True),
        "code_version": code_version()})


class ProxyEvaluator:
    """``evaluate(sample) -> metrics`` for an in-process zero-cost search (``strategy.search``): every sample's
    network scored on one batch, the metrics carrying ``default`` = the score."""

    def __init__(self, space: Any, dataset: str, data_root: Any, proxy: str = "naswot", batch_size: int = 64,
                 seed: int = 0, C: int = 16, layers: int = 5):
        from nni_nas_bench.data import get_dataset_info

        check_proxy(proxy)
        self.space, self.proxy, self.seed, self.C, self.layers = space, proxy, seed, C, layers
        self.num_classes = get_dataset_info(dataset).num_classes
        self.inputs, self.targets = proxy_batch(dataset, data_root, batch_size, seed)
        self.queries = 0

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any] | None:
        torch.manual_seed(self.seed)
        model = self.space.build_network(self.space.to_genotype(sample), C=self.C, num_classes=self.num_classes,
                                         layers=self.layers)
        self.queries += 1
        value = score(model, self.inputs, self.targets, [self.proxy])[self.proxy]
        return {"default": value, self.proxy: value} if math.isfinite(value) else None
