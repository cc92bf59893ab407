"""The 224-px pipeline (SPORT8, MIT67, FLOWERS102): image folders decoded by DataLoader workers.

These sets are too large at 224 px to keep decoded on the device, so images stay on disk and are
decoded and augmented per sample with the SPEC's transforms. Transforms are built from parameters
(cutout, AutoAugment) rather than baked into the dataset, so one located split serves every protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import Dataset

from nni_nas_bench.data.image_folder import scan_split, tree_classes
from nni_nas_bench.data.lookup import LookupLog, data_root_hint, folder_tree_hint, tree_is_complete
from nni_nas_bench.data.registry import DatasetInfo


class FolderDataset(Dataset):
    """Images given as (path, label) pairs, read with PIL and passed through ``transform``.

    Like a torchvision ``ImageFolder`` restricted to some of its samples (``samples``, ``targets`` and
    ``classes`` mean the same), but the transform can be swapped with :meth:`with_transform`: the search
    split takes train and valid halves from the same folder and each needs a different pipeline.
    """

    def __init__(
        self,
        samples: list[tuple[str, int]],
        classes: tuple[str, ...],
        transform: Callable[[object], object] | None = None,
    ) -> None:
        self.samples = list(samples)
        self.targets = [label for _, label in self.samples]
        self.classes = tuple(classes)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[object, int]:
        from PIL import Image

        path, label = self.samples[index]
        with Image.open(path) as image:
            image = image.convert("RGB")
        return (self.transform(image) if self.transform is not None else image), label

    def with_transform(self, transform: Callable[[object], object] | None) -> FolderDataset:
        """The same samples with another transform (the original is left untouched)."""
        return FolderDataset(self.samples, self.classes, transform)

    def subset(self, indices: list[int]) -> FolderDataset:
        """The given samples only, in the given order, with the same transform."""
        return FolderDataset([self.samples[i] for i in indices], self.classes, self.transform)


class Cutout:
    """Zero a ``length``-sided square of a normalised C×H×W tensor, centred anywhere (DARTS semantics).

    The centre is uniform over the image and the square is clipped at the borders, so it may cover
    less than length² pixels. Randomness comes from torch's RNG, which DataLoader seeds per worker from
    the loader's generator, so a seeded run is repeatable.
    """

    def __init__(self, length: int) -> None:
        self.length = int(length)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        cy = int(torch.randint(height, ()).item())
        cx = int(torch.randint(width, ()).item())
        half = self.length // 2
        y1, y2 = max(cy - half, 0), min(cy + half, height)
        x1, x2 = max(cx - half, 0), min(cx + half, width)
        image = image.clone()
        image[..., y1:y2, x1:x2] = 0.0
        return image

    def __repr__(self) -> str:
        return f"Cutout(length={self.length})"


def train_transform(info: DatasetInfo, *, cutout: int = 0, autoaugment: bool = False) -> Callable:
    """SPEC train pipeline: RandomResizedCrop, flip (, AutoAugment), ColorJitter, normalise (, cutout)."""
    from torchvision import transforms as T

    steps: list[Callable] = [T.RandomResizedCrop(info.image_size), T.RandomHorizontalFlip()]
    if autoaugment:
        steps.append(T.AutoAugment(T.AutoAugmentPolicy.IMAGENET))
    steps += [
        T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.2),
        T.ToTensor(),
        T.Normalize(info.mean, info.std),
    ]
    if cutout > 0:
        steps.append(Cutout(cutout))
    return T.Compose(steps)


def eval_transform(info: DatasetInfo) -> Callable:
    """SPEC test pipeline: resize the short side to 256 (for 224 crops), centre-crop, normalise."""
    from torchvision import transforms as T

    resize = round(info.image_size * 256 / 224)
    return T.Compose(
        [T.Resize(resize), T.CenterCrop(info.image_size), T.ToTensor(), T.Normalize(info.mean, info.std)]
    )


def locate_image_folder(
    info: DatasetInfo, root: str | Path, splits: tuple[str, ...]
) -> dict[str, FolderDataset]:
    """Scan ``root/<folder_name>/<split>`` for each split; one DatasetNotFoundError if any is missing.

    Datasets come back without a transform; the caller attaches the train or eval pipeline.
    """
    root = Path(root).expanduser()
    tree = root / info.folder_name
    log = LookupLog(info.name, root)
    if not root.exists():
        log.note(str(root), "does not exist")
    if not tree_is_complete(log, tree, splits):
        raise log.error([data_root_hint(), folder_tree_hint(info, root)])
    classes, class_to_idx = tree_classes(info, tree)
    return {split: FolderDataset(scan_split(tree / split, class_to_idx), tuple(classes)) for split in splits}
