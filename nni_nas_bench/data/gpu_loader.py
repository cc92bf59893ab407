"""A device-resident batch loader for 32-px datasets.

CIFAR at uint8 is 150 MB: it fits on any GPU, and per-image PIL augmentation in DataLoader workers is
the bottleneck of a small CNN's training on few CPU cores. So the whole set is moved to the device
once and augmented in batched tensor ops there.

Every random draw comes from the loader's own generator seeded with (seed, epoch): a resumed run
replays the same epochs exactly, and nothing here disturbs (or depends on) the global RNG that the
model's own randomness (DropPath, dropout) uses. The draws are made on the CPU, so CPU and GPU runs of
one seed see the same order and the same augmentation parameters.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from nni_nas_bench.data._seeding import derive_seed, make_generator
from nni_nas_bench.errors import ConfigError

CROP_PADDING = 4


class GpuBatchLoader:
    """Yield normalised float32 batches ``(x, y)`` on ``device`` from uint8 images N×3×H×W.

    Train mode (``train=True``): a fresh seeded permutation per epoch, the last incomplete batch dropped,
    random crop (zero padding 4) + horizontal flip, optional AutoAugment (CIFAR10 policy, per image, on
    uint8), normalisation, then optional cutout. Eval mode: dataset order, no augmentation, the last
    partial batch kept, so every sample is seen exactly once.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        device: str | torch.device,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        train: bool,
        cutout: int = 0,
        autoaugment: bool = False,
        seed: int = 0,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ConfigError(f"images must be uint8 N×C×H×W, got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ConfigError(f"{len(images)} images but {len(labels)} labels")
        if len(images) == 0:
            raise ConfigError("the dataset split is empty; check the data root and the subset setting")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if cutout < 0:
            raise ConfigError(f"cutout must be >= 0 (0 = off), got {cutout}")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device, dtype=torch.int64)
        self.batch_size = int(batch_size)
        self.train = train
        self.cutout = int(cutout)
        self.autoaugment = autoaugment
        self.seed = seed
        self.epoch = 0
        self._mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self._autoaugment = None
        if autoaugment:
            from torchvision.transforms import AutoAugment, AutoAugmentPolicy

            self._autoaugment = AutoAugment(AutoAugmentPolicy.CIFAR10)

    @property
    def num_samples(self) -> int:
        """Images in this split (train mode uses ``len(self) * batch_size`` of them per epoch)."""
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and augmentation the next iteration replays."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        """Batches per epoch.

        Train mode drops the incomplete last batch (a batch of one breaks BatchNorm) unless it is the
        only batch: a quick run whose subset is smaller than the batch size should still train.
        """
        n = self.num_samples
        if self.train:
            return max(n // self.batch_size, 1)
        return (n + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not self.train:
            for start in range(0, self.num_samples, self.batch_size):
                stop = start + self.batch_size
                yield self._normalise(self.images[start:stop]), self.labels[start:stop]
            return
        generator = make_generator("loader", self.seed, self.epoch)
        n, (_, _, height, width) = self.num_samples, self.images.shape
        order = torch.randperm(n, generator=generator)
        # All parameters of the epoch drawn up front, in a fixed sequence: one small transfer, and the
        # stream cannot depend on how the caller interleaves iteration with other work.
        offsets = torch.randint(0, 2 * CROP_PADDING + 1, (n, 2), generator=generator)
        flips = torch.rand(n, generator=generator) < 0.5
        centres = torch.stack(
            [
                torch.randint(0, height, (n,), generator=generator),
                torch.randint(0, width, (n,), generator=generator),
            ],
            dim=1,
        )
        augment_seeds = torch.randint(0, 2**62, (len(self),), generator=generator)
        order, offsets, flips, centres = (t.to(self.device) for t in (order, offsets, flips, centres))
        for batch in range(len(self)):
            positions = slice(batch * self.batch_size, min((batch + 1) * self.batch_size, n))
            index = order[positions]
            x = crop_and_flip(self.images[index], offsets[positions], flips[positions], CROP_PADDING)
            if self._autoaugment is not None:
                x = self._apply_autoaugment(x, int(augment_seeds[batch]))
            x = self._normalise(x)
            if self.cutout > 0:
                x = cutout(x, centres[positions], self.cutout)
            yield x, self.labels[index]

    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 0..255 to float32 standardised with the dataset's per-channel statistics."""
        return (images.float().div_(255.0) - self._mean) / self._std

    def _apply_autoaugment(self, images: torch.Tensor, seed: int) -> torch.Tensor:
        """AutoAugment each image with its own random sub-policy, reproducibly.

        torchvision's AutoAugment draws from the global CPU RNG and picks one sub-policy per call, so it
        runs once per image inside ``fork_rng`` seeded from our generator: the draws are repeatable and
        the caller's RNG state is restored afterwards. Slow (one call per image), but exact.
        """
        out = torch.empty_like(images)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(derive_seed("autoaugment", seed))
            for i in range(len(images)):
                out[i] = self._autoaugment(images[i])
        return out


def crop_and_flip(
    images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, padding: int
) -> torch.Tensor:
    """Per-image random crop of the original size from a zero-padded copy, then per-image h-flip.

    Zero padding on uint8 is black, the same as torchvision's ``RandomCrop(32, padding=4)``. The crop
    is one gather with per-image row/column indices instead of a Python loop.
    """
    batch, channels, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    rows = offsets[:, 0:1] + torch.arange(height, device=images.device)  # B×H
    cols = offsets[:, 1:2] + torch.arange(width, device=images.device)  # B×W
    cols = torch.where(flips[:, None], cols.flip(1), cols)  # flipping = reading the columns backwards
    b = torch.arange(batch, device=images.device)[:, None, None, None]
    c = torch.arange(channels, device=images.device)[None, :, None, None]
    return padded[b, c, rows[:, None, :, None], cols[:, None, None, :]]


def cutout(images: torch.Tensor, centres: torch.Tensor, length: int) -> torch.Tensor:
    """Zero a ``length``-sided square per image around ``centres`` (y, x), clipped at the borders.

    DARTS's Cutout: the centre is anywhere in the image, the square spans [c - length//2, c + length//2)
    so it can be partly outside. Applied after normalisation, so the hole is the mean colour.
    """
    height, width = images.shape[-2:]
    half = length // 2
    ys = torch.arange(height, device=images.device)
    xs = torch.arange(width, device=images.device)
    cy, cx = centres[:, 0:1], centres[:, 1:2]
    in_rows = (ys >= cy - half) & (ys < cy + half)  # B×H
    in_cols = (xs >= cx - half) & (xs < cx + half)  # B×W
    hole = in_rows[:, None, :, None] & in_cols[:, None, None, :]
    return images.masked_fill(hole, 0.0)
