"""The training step as one CUDA graph (issue 18): on by default on CUDA, the eager step on a CPU.

The CPU tests run everywhere: the fallback, the error for an impossible request, and the learning-rate
plumbing the graph depends on (a tensor filled in place, kept through a checkpoint load). The CUDA tests
run where a GPU is (``benchmarks/device_check.sh`` runs this file first on the GPU machine): the graphed
step trains the same weights as the eager one, reads the learning rate on every replay, and keeps
training with the default GPU path (bf16, channels_last, DropPath).
"""

from __future__ import annotations

import pytest
import torch

from nni_nas_bench.data.gpu_loader import GpuBatchLoader
from nni_nas_bench.errors import ConfigError
from nni_nas_bench.training import from_dict
from nni_nas_bench.training.cuda_graph import CudaGraphStep
from nni_nas_bench.training.trainer import (
    load_optimizer_state,
    make_optimizer,
    make_train_step,
    memory_format_for,
    set_lr,
    train,
    train_epoch,
    use_cuda_graphs,
)
from search_spaces.cell_space import build_cell_network
from search_spaces.genotype import PUBLISHED

CPU = torch.device("cpu")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on the device machine)")


def _tiny(seed: int, **protocol: object) -> tuple[torch.nn.Module, object]:
    settings = {"preset": "darts", "epochs": 2, "channels": 4, "layers": 3, "batch_size": 8, "seed": seed,
                "eval_batch_size": 16, **protocol}
    torch.manual_seed(seed)
    net = build_cell_network(PUBLISHED["DARTS_V2"], C=4, num_classes=10, layers=3, auxiliary=True)
    return net, from_dict(settings)


def _loader(device: torch.device, train_mode: bool, n: int = 32, seed: int = 0) -> GpuBatchLoader:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (n,), generator=generator)
    return GpuBatchLoader(images, labels, batch_size=8, device=device, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
                          train=train_mode, cutout=0, seed=seed)


# ----------------------------------------------------------------------------------------- CPU fallback
def test_graphs_are_on_for_cuda_and_off_for_a_cpu_by_default() -> None:
    protocol = from_dict({"preset": "darts"})
    assert protocol.cuda_graphs is None
    assert use_cuda_graphs(protocol, torch.device("cuda")) is True
    assert use_cuda_graphs(protocol, CPU) is False
    assert use_cuda_graphs(protocol.replace(cuda_graphs=False), torch.device("cuda")) is False


def test_asking_for_graphs_on_a_cpu_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="CUDA graphs need a CUDA device; set cuda_graphs to null"):
        use_cuda_graphs(from_dict({"cuda_graphs": True}), CPU)
    with pytest.raises(ConfigError, match=r"protocol\.cuda_graphs must be bool"):
        from_dict({"cuda_graphs": "yes"})


def test_on_a_cpu_the_default_trains_exactly_as_the_eager_step() -> None:
    results = []
    for graphs in (None, False):
        net, protocol = _tiny(0, cuda_graphs=graphs)
        metrics = train(net, _loader(CPU, True), _loader(CPU, False), protocol, image_size=32, device="cpu",
                        log=lambda _: None)
        results.append((metrics, [p.detach().clone() for p in net.parameters()]))
    (auto, auto_weights), (eager, eager_weights) = results
    assert auto["cuda_graphs"] is False and eager["cuda_graphs"] is False
    assert auto["default"] == eager["default"]
    assert all(torch.equal(a, b) for a, b in zip(auto_weights, eager_weights))
    net, protocol = _tiny(0)
    step = make_train_step(net, make_optimizer(net, protocol, CPU), torch.nn.CrossEntropyLoss(), protocol, CPU,
                           memory_format_for(protocol, CPU))
    assert not isinstance(step, CudaGraphStep)


def test_a_tensor_learning_rate_is_filled_in_place_and_survives_a_checkpoint_load() -> None:
    # The captured graph reads the lr tensor it saw at capture: replacing the object would freeze the schedule.
    net, protocol = _tiny(0)
    eager = make_optimizer(net, protocol, CPU)
    assert isinstance(eager.param_groups[0]["lr"], float)
    state = eager.state_dict()
    graphed = torch.optim.SGD(net.parameters(), lr=torch.tensor(0.5), momentum=0.9)
    lr_tensor = graphed.param_groups[0]["lr"]
    load_optimizer_state(graphed, state)
    assert graphed.param_groups[0]["lr"] is lr_tensor
    assert lr_tensor.item() == pytest.approx(protocol.lr)
    load_optimizer_state(eager, graphed.state_dict())  # and back: an eager run resumes a graphed one's state
    assert isinstance(eager.param_groups[0]["lr"], float)


# ------------------------------------------------------------------------------------------- on a GPU
@needs_cuda
def test_the_graphed_step_trains_the_eager_step_s_weights_and_reads_the_lr_every_replay() -> None:
    cuda = torch.device("cuda")
    torch.backends.cudnn.deterministic = True
    weights = {}
    for graphs in (False, True):
        # fp32, no DropPath: the two runs do the same arithmetic, so they must agree to rounding.
        net, protocol = _tiny(1, precision="fp32", channels_last=False, drop_path=0.0, cuda_graphs=graphs)
        net.to(cuda)
        optimizer = make_optimizer(net, protocol, cuda)
        step = make_train_step(net, optimizer, torch.nn.CrossEntropyLoss(), protocol, cuda,
                               torch.contiguous_format)
        loader = _loader(cuda, True, n=64)
        for epoch, lr in enumerate((0.05, 0.01)):
            set_lr(optimizer, lr)
            loader.set_epoch(epoch)
            train_epoch(net, loader, step, cuda)
        weights[graphs] = [p.detach().clone() for p in net.parameters()]
        if graphs:
            assert isinstance(step, CudaGraphStep) and step.captured and step.replays == 16 - step.warmup_steps
            # lr 0: a replay must leave every weight as it is (a baked-in lr would keep moving them).
            lr_tensor = optimizer.param_groups[0]["lr"]
            set_lr(optimizer, 0.0)
            assert optimizer.param_groups[0]["lr"] is lr_tensor
            before = [p.detach().clone() for p in net.parameters()]
            loader.set_epoch(2)
            train_epoch(net, loader, step, cuda)
            assert all(torch.equal(a, p) for a, p in zip(before, net.parameters()))
    for eager_w, graph_w in zip(weights[False], weights[True]):
        torch.testing.assert_close(graph_w, eager_w, rtol=1e-3, atol=1e-4)


@needs_cuda
def test_the_default_gpu_path_captures_and_trains() -> None:
    # bf16 + channels_last + DropPath + the auxiliary head, through train(): what a trial runs on a GPU.
    net, protocol = _tiny(2, epochs=4, drop_path=0.2, lr=0.05)
    rows: list[dict] = []
    metrics = train(net, _loader(torch.device("cuda"), True, n=64), _loader(torch.device("cuda"), False, n=64),
                    protocol, image_size=32, device="cuda", report=rows.append, log=lambda _: None)
    assert metrics["cuda_graphs"] is True and metrics["epochs"] == 4
    losses = [row["train_loss"] for row in rows]
    assert all(torch.isfinite(torch.tensor(losses))) and len(set(losses)) == 4
