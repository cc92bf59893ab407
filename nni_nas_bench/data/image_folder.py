"""ImageFolder trees (``<split>/<class>/<image>``) decoded into uint8 tensors, through the tensor cache.

The label of an image is the index of its class folder among the TRAIN folder's sorted class names,
exactly as torchvision's ImageFolder assigns it; torchvision's own scanning functions are used so the
order can never drift from ImageFolder's. Decoding 60k small images takes seconds, so each split is
decoded once and cached, keyed on the tree's file listing (computed without torchvision).
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nni_nas_bench.data.cache import CACHE_FORMAT, hash_parts, load_or_build_tensors
from nni_nas_bench.data.registry import CIFAR10_CLASSES, DatasetInfo
from nni_nas_bench.errors import ConfigError


@dataclass
class TensorData:
    """One split of a small dataset: ``x`` uint8 N×3×H×W, ``y`` int64 N, class names in label order."""

    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[str, ...]


def check_classes(info: DatasetInfo, classes: list[str], where: str | Path) -> None:
    """Reject class lists that would give wrong labels.

    More classes than the model head has is an error; fewer is allowed (quick synthetic runs). For
    CIFAR-10 class names, the sorted folder order must be torchvision's order (true: that order is
    alphabetical), so a JPEG tree and the pickles label every image the same way.
    """
    if not classes:
        raise ConfigError(f"{where} holds no class folders; expected <class>/<image> below it")
    if len(classes) > info.num_classes:
        raise ConfigError(
            f"{where} holds {len(classes)} class folders but {info.name} has {info.num_classes} classes"
        )
    if info.name == "cifar10" and set(classes) == set(CIFAR10_CLASSES) and tuple(classes) != CIFAR10_CLASSES:
        raise ConfigError(f"class folders in {where} do not sort to torchvision's CIFAR-10 order")


def tree_classes(info: DatasetInfo, tree: Path) -> tuple[list[str], dict[str, int]]:
    """Class names of ``tree/train`` sorted as ImageFolder sorts them (that order is the label)."""
    from torchvision.datasets.folder import find_classes

    classes, class_to_idx = find_classes(str(tree / "train"))
    check_classes(info, classes, tree / "train")
    return classes, class_to_idx


def scan_split(split_dir: Path, class_to_idx: dict[str, int]) -> list[tuple[str, int]]:
    """(path, label) pairs in ImageFolder order, labels from the TRAIN folder's class list."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    classes, _ = find_classes(str(split_dir))
    unknown = sorted(set(classes) - set(class_to_idx))
    if unknown:
        raise ConfigError(f"{split_dir} has class folders that the train folder lacks: {unknown}")
    samples = make_dataset(str(split_dir), class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)
    if not samples:
        raise ConfigError(f"{split_dir} holds no images ({', '.join(IMG_EXTENSIONS)})")
    return samples


def decode_images(
    samples: list[tuple[str, int]], size: int, contents: Mapping[str, bytes] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode images to RGB uint8 N×3×size×size with PIL (what ImageFolder uses, so pixels match).

    ``samples`` name files on disk, or keys of ``contents`` when the bytes were read from an archive.
    A wrongly sized image is an error, not a silent resize: it means the wrong data was passed.
    """
    from PIL import Image

    pixels = np.empty((len(samples), size, size, 3), dtype=np.uint8)
    for index, (name, _) in enumerate(samples):
        with Image.open(io.BytesIO(contents[name]) if contents is not None else name) as image:
            if image.size != (size, size):
                raise ConfigError(f"{name} is {image.size[0]}x{image.size[1]}; expected {size}x{size}")
            pixels[index] = np.asarray(image.convert("RGB"))
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
    y = torch.tensor([label for _, label in samples], dtype=torch.int64)
    return x, y


class _LazyTree:
    """A tree scanned only when some split is not in the tensor cache yet."""

    def __init__(self, info: DatasetInfo, root: Path) -> None:
        self.info = info
        self.root = root

    @functools.cached_property
    def class_index(self) -> tuple[list[str], dict[str, int]]:
        return tree_classes(self.info, self.root)

    def samples(self, split: str) -> list[tuple[str, int]]:
        return scan_split(self.root / split, self.class_index[1])

    def decode(self, split: str) -> dict[str, object]:
        x, y = decode_images(self.samples(split), self.info.image_size)
        return {"x": x, "y": y, "classes": list(self.class_index[0])}


def decode_tree(info: DatasetInfo, tree: Path, splits: tuple[str, ...], cache: Path) -> dict[str, TensorData]:
    """Tensors of each split of ``tree``, decoded once and then read from ``cache``.

    The key covers every file below the split's folder (relative path, size, mtime: a stat per file, well
    under a second for 60k files) and the train folder's entries (they fix the labels), so adding, removing
    or editing an image invalidates the cached tensors. Computing it needs no torchvision: a trial with a
    warm cache never imports it (seconds per process); ImageFolder's own scanning runs only to decode.
    """
    lazy = _LazyTree(info, tree)
    origin = hash_parts([str(tree.resolve())])[:8]
    train_entries = sorted(entry.name for entry in _scandir(tree / "train"))
    out: dict[str, TensorData] = {}
    for split in splits:
        key = hash_parts([CACHE_FORMAT, info.image_size, train_entries, *_file_listing(tree / split)])
        name = f"{info.name}-{split}-folder-{origin}-{key[:16]}.pt"
        out[split] = cached_tensor_data(cache / "tensors" / name, key, functools.partial(lazy.decode, split))
    return out


def cached_tensor_data(path: Path, key: str, build: Callable[[], dict[str, object]]) -> TensorData:
    """TensorData from the cache file at ``path`` (built by ``build`` if missing or stale)."""
    payload = load_or_build_tensors(path, key, build)
    return TensorData(payload["x"], payload["y"], tuple(payload["classes"]))


def _scandir(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError as exc:
        raise ConfigError(f"cannot list {folder}: {exc}") from None


def _file_listing(split_dir: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime) of every file below ``split_dir``, links followed as ImageFolder does."""
    listing = []
    for folder, _, files in os.walk(split_dir, followlinks=True):
        for name in files:
            path = Path(folder) / name
            stat = path.stat()
            listing.append((str(path.relative_to(split_dir)), stat.st_size, stat.st_mtime_ns))
    return sorted(listing)
