"""A training step captured once as a CUDA graph and replayed for every later batch.

Why: a DARTS network at batch 96 is launch-bound on a large GPU. One step is ~2,000 small kernels
(20 cells x 8 edges, forward and backward, plus the optimiser), and the CPU cannot issue them as fast
as an H200 runs them; NNI's hub model trained with a plain loop reaches 740-890 img/s there. Replaying a
captured graph issues the whole step (forward, loss, backward, gradient clipping, SGD) with one launch:
2,460 img/s on the same H200 (``benchmarks/README.md``, "GPU targets").

What the captured step needs, and where the project provides it:

* static shapes: the training loader drops the last incomplete batch (:mod:`nni_nas_bench.data.gpu_loader`);
  a batch of another shape is run eagerly (see :class:`CudaGraphStep`);
* no host synchronisation inside the step: the loss and accuracy totals stay on the device
  (:func:`nni_nas_bench.training.epoch.run_epoch`), gradient clipping uses torch's sync-free path;
* per-epoch settings as device tensors changed in place, never Python numbers baked into kernels: the
  DropPath probability is a 0-d buffer (``search_spaces.cells.drop_path``), the learning rate a 0-d
  tensor in the fused SGD's parameter group (:func:`nni_nas_bench.training.trainer.make_optimizer`);
* randomness from CUDA's Philox generator, which graphs advance on every replay (DropPath masks differ
  from step to step, as eagerly);
* augmentation on the device (:class:`~nni_nas_bench.data.gpu_loader.GpuBatchLoader`), outside the graph:
  each batch is copied into the graph's static input.

The capture follows PyTorch's "whole network capture" recipe: a few eager warm-up steps on a side stream
(cuDNN picks its algorithms, the optimiser creates its momentum buffers), then one capture. Warm-up
steps are real training steps, and the batch seen at capture time is trained by a replay right after it,
so no batch is skipped or trained twice.
"""

from __future__ import annotations

import torch

from nni_nas_bench.training.epoch import Step

# PyTorch's recipe uses 3 eager iterations before capture (11 with DistributedDataParallel, not used here).
WARMUP_STEPS = 3


class CudaGraphStep:
    """``step(x, y) -> (logits, loss)`` run eagerly ``warmup_steps`` times, then captured and replayed.

    The returned tensors are the graph's static outputs: valid until the next call, which overwrites them
    (the epoch loop reads them on the same stream before that, so it sees each step's values). A batch whose
    shape differs from the captured one is run eagerly; the graph stays valid for later batches.
    """

    def __init__(self, step: Step, warmup_steps: int = WARMUP_STEPS) -> None:
        self.step = step
        self.warmup_steps = warmup_steps
        self.eager_steps = 0
        self.replays = 0
        self._graph: torch.cuda.CUDAGraph | None = None
        self._x: torch.Tensor | None = None
        self._y: torch.Tensor | None = None
        self._out: tuple[torch.Tensor, torch.Tensor] | None = None
        self._side: torch.cuda.Stream | None = None

    @property
    def captured(self) -> bool:
        """Whether the step has been captured (after the warm-up steps)."""
        return self._graph is not None

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self._graph is None and self.eager_steps < self.warmup_steps:
            return self._eager_on_side_stream(x, y)
        if self._graph is None:
            self._capture(x, y)
        assert self._x is not None and self._y is not None and self._out is not None
        if x.shape != self._x.shape or y.shape != self._y.shape:
            return self._eager_on_side_stream(x, y)
        self._x.copy_(x)
        self._y.copy_(y)
        self._graph.replay()
        self.replays += 1
        return self._out

    def _eager_on_side_stream(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Warm-up on a side stream, as the recipe says: the allocator then keeps the warm-up's memory out of
        # the pool the capture uses.
        if self._side is None:
            self._side = torch.cuda.Stream(device=x.device)
        side = self._side
        side.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(side):
            out = self.step(x, y)
        torch.cuda.current_stream(x.device).wait_stream(side)
        self.eager_steps += 1
        return out

    def _capture(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self._x = torch.empty_like(x)
        self._y = torch.empty_like(y)
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize(x.device)
        with torch.cuda.graph(graph):
            self._out = self.step(self._x, self._y)
        self._graph = graph
