"""The train/eval split of a dataset for one phase of the benchmark.

SPEC: the search trains on half of the training set and validates on the other half; the final
training uses the whole training set and reports on the test set. The test set must never be seen by
the search, so the search split is carved out of the train set only. Splits are stratified per class
(every class keeps its share) and seeded, so 8 search seeds can differ while a rerun of one seed sees
exactly the same images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

import torch

from nni_nas_bench.data._seeding import make_generator
from nni_nas_bench.data.folder import FolderDataset, eval_transform, locate_image_folder, train_transform
from nni_nas_bench.data.registry import DatasetInfo, get_dataset_info
from nni_nas_bench.data.sources import load_small_dataset
from nni_nas_bench.errors import ConfigError

PHASES = ("search", "final")


@dataclass(eq=False)
class TensorSplit:
    """A 32-px split held as tensors: images uint8 N×3×32×32 on the CPU, labels int64.

    Kept as raw uint8 (not normalised floats) because that is 4x smaller to move to the device and is
    what AutoAugment needs; the loader normalises per batch. ``classes`` names the labels in order.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    eval_x: torch.Tensor
    eval_y: torch.Tensor
    info: DatasetInfo
    classes: tuple[str, ...] = ()


@dataclass(eq=False)
class FolderSplit:
    """A 224-px split: datasets of image paths with the SPEC train / eval transforms attached."""

    train: FolderDataset
    eval: FolderDataset
    info: DatasetInfo


# typing.Union, not ``|``: this alias is evaluated at runtime and setup.py still allows Python 3.9.
Split = Union[TensorSplit, FolderSplit]


def load_split(
    name: str,
    root: str | Path,
    phase: str,
    *,
    seed: int = 0,
    subset: int | None = None,
    cache_dir: str | Path | None = None,
    download: bool = False,
) -> Split:
    """Load dataset ``name`` from ``root`` for ``phase`` ('search' or 'final').

    ``search``: the train set halved per class (seeded by ``seed``) into train / valid. ``final``: the
    full train set and the test set. ``subset`` keeps at most that many images per class on each side,
    after the split, for quick runs. 32-px datasets come back as a :class:`TensorSplit`, 224-px ones as
    a :class:`FolderSplit`. See :mod:`nni_nas_bench.data.sources` for where 32-px data is looked for;
    224-px data must be an ImageFolder tree ``root/<folder_name>/{train,test}`` (``download`` only
    applies to the CIFARs, which torchvision can fetch).
    """
    info = get_dataset_info(name)
    if phase not in PHASES:
        raise ConfigError(f"unknown phase {phase!r}; choose one of: {', '.join(PHASES)}")
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, int) or subset < 1):
        raise ConfigError(f"subset must be a positive number of images per class or None, got {subset!r}")
    needed = ("train",) if phase == "search" else ("train", "test")

    if info.is_small:
        data = load_small_dataset(info, root, needed, cache_dir=cache_dir, download=download)
        train = data["train"]
        if phase == "search":
            train_idx, eval_idx = stratified_halves(train.y, seed)
            eval_x, eval_y = train.x, train.y
        else:
            train_idx, eval_idx = torch.arange(len(train.y)), torch.arange(len(data["test"].y))
            eval_x, eval_y = data["test"].x, data["test"].y
        if subset is not None:
            train_idx = per_class_subset(train.y, train_idx, subset, seed, "train")
            eval_idx = per_class_subset(eval_y, eval_idx, subset, seed, "eval")
        return TensorSplit(
            train.x[train_idx].contiguous(),
            train.y[train_idx].contiguous(),
            eval_x[eval_idx].contiguous(),
            eval_y[eval_idx].contiguous(),
            info,
            train.classes,
        )

    folders = locate_image_folder(info, root, needed)
    train_set = folders["train"]
    eval_set = train_set if phase == "search" else folders["test"]
    train_labels = torch.as_tensor(train_set.targets, dtype=torch.int64)
    eval_labels = torch.as_tensor(eval_set.targets, dtype=torch.int64)
    if phase == "search":
        train_idx, eval_idx = stratified_halves(train_labels, seed)
    else:
        train_idx, eval_idx = torch.arange(len(train_labels)), torch.arange(len(eval_labels))
    if subset is not None:
        train_idx = per_class_subset(train_labels, train_idx, subset, seed, "train")
        eval_idx = per_class_subset(eval_labels, eval_idx, subset, seed, "eval")
    return FolderSplit(
        train_set.subset(train_idx.tolist()).with_transform(train_transform(info)),
        eval_set.subset(eval_idx.tolist()).with_transform(eval_transform(info)),
        info,
    )


def stratified_halves(labels: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of a seeded per-class 50/50 split; an odd class gives its extra image to the train half.

    Both halves come back sorted, so the order of a split does not leak the random draw and the eval
    order is the dataset's own.
    """
    generator = make_generator("search-split", seed)
    train_parts, valid_parts = [], []
    for label in torch.unique(labels).tolist():
        members = torch.nonzero(labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        cut = (len(members) + 1) // 2
        train_parts.append(members[:cut])
        valid_parts.append(members[cut:])
    return torch.sort(torch.cat(train_parts)).values, torch.sort(torch.cat(valid_parts)).values


def per_class_subset(
    labels: torch.Tensor, indices: torch.Tensor, per_class: int, seed: int, side: str
) -> torch.Tensor:
    """At most ``per_class`` of ``indices`` for each class, chosen at random (seeded), returned sorted."""
    generator = make_generator("subset", side, seed)
    kept = []
    chosen_labels = labels[indices]
    for label in torch.unique(chosen_labels).tolist():
        members = indices[chosen_labels == label]
        kept.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.sort(torch.cat(kept)).values
