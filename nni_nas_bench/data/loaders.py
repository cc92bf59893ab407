"""One loader interface for both pipelines, so training code never branches on the dataset.

Whatever the split, a loader is iterable, knows its batches per epoch and takes ``set_epoch`` before
each epoch, and yields ``(x, y)`` already on the training device: float32 normalised images and int64
labels. Seeding by (seed, epoch) lets a run resumed from a checkpoint replay the remaining epochs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import torch
from torch.utils.data import DataLoader

from nni_nas_bench.data._seeding import derive_seed
from nni_nas_bench.data.folder import FolderDataset, train_transform
from nni_nas_bench.data.gpu_loader import GpuBatchLoader
from nni_nas_bench.data.splits import FolderSplit, Split, TensorSplit
from nni_nas_bench.errors import ConfigError


@runtime_checkable
class Loader(Protocol):
    """What the training loop may rely on, whichever pipeline produced the loader."""

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int) -> None: ...


class DeviceDataLoader:
    """A torch DataLoader whose shuffling and worker seeds follow (seed, epoch), with batches moved to device.

    The DataLoader draws its sampler seed and its workers' base seed from its generator at the start of
    each iteration, so re-seeding that generator per epoch makes the order and the per-worker
    augmentation repeatable (with ``num_workers=0`` augmentation runs in this process on the global RNG
    and only the order is repeatable). Workers are not persistent for the same reason: fresh workers
    pick up the new seed each epoch.
    """

    def __init__(
        self,
        dataset: FolderDataset,
        *,
        batch_size: int,
        device: str | torch.device,
        train: bool,
        seed: int = 0,
        num_workers: int = 2,
    ) -> None:
        if len(dataset) == 0:
            raise ConfigError("the dataset split is empty; check the data root and the subset setting")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.seed = seed
        self.epoch = 0
        self._generator = torch.Generator()
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=train,
            # Same rule as GpuBatchLoader: drop the ragged last train batch unless it is the only one.
            drop_last=train and len(dataset) >= batch_size,
            num_workers=num_workers,
            pin_memory=self.device.type == "cuda",
            generator=self._generator,
        )

    @property
    def num_samples(self) -> int:
        """Images in this split."""
        return len(self.loader.dataset)  # type: ignore[arg-type]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order (and worker augmentation) the next iteration replays."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self._generator.manual_seed(derive_seed("loader", self.seed, self.epoch))
        non_blocking = self.device.type == "cuda"
        for x, y in self.loader:
            yield x.to(self.device, non_blocking=non_blocking), y.to(self.device, non_blocking=non_blocking)


def make_loaders(
    split: Split,
    *,
    batch_size: int,
    device: str | torch.device,
    cutout: int = 0,
    autoaugment: bool = False,
    seed: int = 0,
    eval_batch_size: int | None = None,
    num_workers: int = 2,
) -> tuple[Loader, Loader]:
    """(train_loader, eval_loader) for ``split``: device-resident tensors for 32-px data, workers for 224.

    ``cutout`` is the side of the zeroed square (0 = off), ``autoaugment`` adds torchvision's AutoAugment
    (CIFAR10 policy for 32 px, ImageNet policy for 224 px). Only the train loader augments.
    """
    eval_batch_size = eval_batch_size or batch_size
    if isinstance(split, TensorSplit):
        common = {"device": device, "mean": split.info.mean, "std": split.info.std, "seed": seed}
        train = GpuBatchLoader(
            split.train_x,
            split.train_y,
            batch_size=batch_size,
            train=True,
            cutout=cutout,
            autoaugment=autoaugment,
            **common,
        )
        evaluation = GpuBatchLoader(
            split.eval_x, split.eval_y, batch_size=eval_batch_size, train=False, **common
        )
        return train, evaluation
    if isinstance(split, FolderSplit):
        if cutout < 0:
            raise ConfigError(f"cutout must be >= 0 (0 = off), got {cutout}")
        train_set = split.train.with_transform(
            train_transform(split.info, cutout=cutout, autoaugment=autoaugment)
        )
        common = {"device": device, "seed": seed, "num_workers": num_workers}
        return (
            DeviceDataLoader(train_set, batch_size=batch_size, train=True, **common),
            DeviceDataLoader(split.eval, batch_size=eval_batch_size, train=False, **common),
        )
    raise ConfigError(
        f"make_loaders needs a TensorSplit or FolderSplit from load_split, got {type(split).__name__}"
    )
