"""Finding a 32-px dataset on disk and turning it into uint8 tensors.

The same CIFAR data reaches users in several shapes (torchvision's pickles, an ImageFolder tree, the
JPEG archive in ``shared/data``); trials should not care which. Sources are tried in a fixed order and
the first complete one wins, so the result never mixes a train set from one source with a test set from
another. When none is found, ONE error lists every place that was looked at and how to fix it, because
a trial that dies on a remote NNI worker leaves only that message behind.
"""

from __future__ import annotations

import functools
import tarfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from nni_nas_bench.data.cache import (
    CACHE_FORMAT,
    extract_once,
    hash_file,
    hash_parts,
    load_or_build_tensors,
    resolve_cache_dir,
)
from nni_nas_bench.data.registry import CIFAR10_CLASSES, DatasetInfo
from nni_nas_bench.errors import ConfigError, DatasetNotFoundError

DATA_ROOT_ENV = "NNB_DATA_ROOT"
SPLITS = ("train", "test")
ARCHIVE_DIR = "cifar10-jpeg"
ARCHIVE_NAME = "cifar10-jpeg.tar.gz"


@dataclass
class TensorData:
    """One split of a small dataset: ``x`` uint8 N×3×H×W, ``y`` int64 N, class names in label order."""

    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[str, ...]


@dataclass
class LookupLog:
    """Every place a loader looked at, with why it was not used, for the one not-found message."""

    dataset: str
    root: Path
    entries: list[str] = field(default_factory=list)

    def note(self, what: str, why: str) -> None:
        """Record one candidate and the reason it was rejected."""
        self.entries.append(f"  - {what}: {why}")

    def error(self, how_to: list[str]) -> DatasetNotFoundError:
        """The single error raised when no candidate worked: where we looked, then how to fix it."""
        looked = "\n".join(self.entries) if self.entries else "  (nothing)"
        fixes = "\n".join(f"  * {line}" for line in how_to)
        return DatasetNotFoundError(
            f"dataset {self.dataset!r} not found under data root {str(self.root)!r}. Looked at:\n{looked}\n"
            f"Provide it in one of these ways:\n{fixes}"
        )


def folder_tree_hint(info: DatasetInfo, root: Path) -> str:
    """How to lay out an ImageFolder tree for ``info`` (shared by the 32-px and 224-px messages)."""
    return (
        f"place an ImageFolder tree at {root / info.folder_name}/{{train,test}}/<class>/<image> "
        "(class index = sorted class folder names)"
    )


def data_root_hint() -> str:
    """How to point the benchmark at a folder that already holds the data."""
    return f"pass the folder that holds the data with --data-root (or set {DATA_ROOT_ENV})"


def load_small_dataset(
    info: DatasetInfo,
    root: str | Path,
    splits: tuple[str, ...],
    *,
    cache_dir: str | Path | None = None,
    download: bool = False,
) -> dict[str, TensorData]:
    """Load the requested ``splits`` ('train'/'test') of a 32-px dataset from the first complete source.

    Order: torchvision's pickled format, an ImageFolder tree, (cifar10 only) the JPEG archive, and
    finally torchvision's download when ``download=True``. A source that exists but cannot be read is
    skipped with a warning so that a valid later source still works; its reason is kept for the error.
    """
    root = Path(root).expanduser()
    log = LookupLog(info.name, root)
    if not root.exists():
        log.note(str(root), "does not exist")
    attempts: list[Callable[[], dict[str, TensorData] | None]] = [
        lambda: _from_torchvision(info, root, splits, log, download=False),
        lambda: _from_image_folder(info, root, splits, log, cache_dir),
    ]
    if info.name == "cifar10":
        attempts.append(lambda: _from_archive(info, root, splits, log, cache_dir))
    if download:
        attempts.append(lambda: _from_torchvision(info, root, splits, log, download=True))
    for attempt in attempts:
        result = attempt()
        if result is not None:
            return result
    if not download and _torchvision_class(info) is not None:
        log.note("torchvision download", "not attempted (download=False)")
    how_to = [data_root_hint(), folder_tree_hint(info, root)]
    if info.name == "cifar10":
        how_to.append(f"put the JPEG archive at {root / ARCHIVE_DIR / ARCHIVE_NAME}")
    how_to.append(f"pass download=True (needs internet) to fetch torchvision's copy into {root}")
    raise log.error(how_to)


# --- torchvision's own format -------------------------------------------------------------------------


def _torchvision_class(info: DatasetInfo) -> type | None:
    """The torchvision dataset class for ``info``, or None when torchvision has no such dataset."""
    from torchvision import datasets

    return {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}.get(info.name)


def _from_torchvision(
    info: DatasetInfo, root: Path, splits: tuple[str, ...], log: LookupLog, *, download: bool
) -> dict[str, TensorData] | None:
    """Read torchvision's pickles (they load in about a second, so they are not cached)."""
    cls = _torchvision_class(info)
    if cls is None:
        return None
    folder = root / cls.base_folder
    label = f"{folder} (torchvision format)"
    if not download and not folder.is_dir():
        log.note(label, "missing")
        return None
    if download:
        label = f"torchvision download of {info.name} into {root}"
    try:
        out = {}
        for split in splits:
            dataset = cls(str(root), train=(split == "train"), download=download)
            x = torch.from_numpy(np.ascontiguousarray(dataset.data)).permute(0, 3, 1, 2).contiguous()
            y = torch.as_tensor(dataset.targets, dtype=torch.int64)
            out[split] = TensorData(x, y, tuple(dataset.classes))
        return out
    except Exception as exc:  # corrupt files and network errors alike end in the report
        log.note(label, f"present but unusable ({type(exc).__name__}: {exc})")
        if not download:
            warnings.warn(f"skipping {label}: {exc}", stacklevel=3)
        return None


# --- ImageFolder trees and the JPEG archive -----------------------------------------------------------


def _from_image_folder(
    info: DatasetInfo, root: Path, splits: tuple[str, ...], log: LookupLog, cache_dir: str | Path | None
) -> dict[str, TensorData] | None:
    """Decode ``root/<folder_name>/<split>`` trees, cached per split and keyed on every file's stat."""
    tree = root / info.folder_name
    if not tree_is_complete(log, tree, splits):
        return None
    return decode_tree(info, tree, splits, resolve_cache_dir(cache_dir), source_key=None)


def tree_is_complete(log: LookupLog, tree: Path, splits: tuple[str, ...]) -> bool:
    """True when every split folder exists; otherwise note each one (found or missing) in ``log``."""
    if all((tree / split).is_dir() for split in splits):
        return True
    for split in splits:
        found = (tree / split).is_dir()
        log.note(f"{tree / split} (ImageFolder {split} folder)", "found" if found else "missing")
    return False


def archive_candidates(root: Path) -> list[Path]:
    """Where the CIFAR-10 JPEG archive may be: under the root, in the root itself, or the root itself."""
    if root.is_file():
        return [root]
    return [root / ARCHIVE_DIR / ARCHIVE_NAME, root / ARCHIVE_NAME]


def _from_archive(
    info: DatasetInfo, root: Path, splits: tuple[str, ...], log: LookupLog, cache_dir: str | Path | None
) -> dict[str, TensorData] | None:
    """Use the JPEG archive: tensors cached by archive content; extracted once only when decoding."""
    for archive in archive_candidates(root):
        if not archive.is_file():
            log.note(f"{archive} (CIFAR-10 JPEG archive)", "missing")
            continue
        cache = resolve_cache_dir(cache_dir)
        key = hash_file(archive)[:16]

        tree = functools.partial(_extract_archive, archive, cache / f"{ARCHIVE_DIR}-{key}")
        try:
            return decode_tree(info, tree, splits, cache, source_key=f"jpeg-{key}")
        except (OSError, EOFError, tarfile.TarError, ConfigError) as exc:
            log.note(
                f"{archive} (CIFAR-10 JPEG archive)", f"present but unusable ({type(exc).__name__}: {exc})"
            )
            warnings.warn(f"skipping {archive}: {exc}", stacklevel=3)
    return None


def _extract_archive(archive: Path, target: Path) -> Path:
    """Extract (once) and return the folder holding ``train/`` and ``test/``.

    The archive may or may not wrap them in a top-level folder.
    """
    extracted = extract_once(archive, target)
    if (extracted / "train").is_dir():
        return extracted
    children = [child for child in extracted.iterdir() if child.is_dir()]
    if len(children) == 1 and (children[0] / "train").is_dir():
        return children[0]
    raise ConfigError(f"the archive extracted into {extracted} has no train/ folder")


class _LazyTree:
    """An ImageFolder tree that is located (for an archive: extracted) and scanned only when needed.

    When every split is in the tensor cache the tree is never touched, so a cached archive is not even
    extracted, and an extracted copy may be deleted to save disk space.
    """

    def __init__(self, info: DatasetInfo, locate: Path | Callable[[], Path]) -> None:
        self.info = info
        self._locate = locate

    @functools.cached_property
    def root(self) -> Path:
        return self._locate() if callable(self._locate) else self._locate

    @functools.cached_property
    def class_index(self) -> tuple[list[str], dict[str, int]]:
        return tree_classes(self.info, self.root)

    def samples(self, split: str) -> list[tuple[str, int]]:
        return scan_split(self.root / split, self.class_index[1])

    def decode(self, split: str) -> dict[str, object]:
        x, y = _decode_images(self.samples(split), self.info.image_size)
        return {"x": x, "y": y, "classes": list(self.class_index[0])}


def decode_tree(
    info: DatasetInfo,
    tree: Path | Callable[[], Path],
    splits: tuple[str, ...],
    cache: Path,
    source_key: str | None,
) -> dict[str, TensorData]:
    """Decode each split of an ImageFolder tree into tensors, through the per-split tensor cache.

    ``tree`` may be a callable so that an archive is only extracted when some split is not cached yet;
    ``source_key`` then identifies its content. With ``source_key`` None the key is built from the
    tree's file listing (names, sizes, mtimes), so adding, removing or editing an image invalidates it.
    """
    lazy = _LazyTree(info, tree)
    out: dict[str, TensorData] = {}
    for split in splits:
        if source_key is None:
            listing = _stat_listing(lazy.root / split, lazy.samples(split))
            key = hash_parts([CACHE_FORMAT, info.image_size, lazy.class_index[0], *listing])
            origin = hash_parts([str(lazy.root.resolve())])[:8]
            name = f"{info.name}-{split}-folder-{origin}-{key[:16]}.pt"
        else:
            key = hash_parts([CACHE_FORMAT, info.image_size, source_key, split])
            name = f"{info.name}-{split}-{source_key}-{key[:16]}.pt"
        payload = load_or_build_tensors(cache / "tensors" / name, key, functools.partial(lazy.decode, split))
        out[split] = TensorData(payload["x"], payload["y"], tuple(payload["classes"]))
    return out


def tree_classes(info: DatasetInfo, tree: Path) -> tuple[list[str], dict[str, int]]:
    """Class names from the train folder, sorted as ImageFolder sorts them (that order is the label)."""
    from torchvision.datasets.folder import find_classes

    classes, class_to_idx = find_classes(str(tree / "train"))
    check_class_count(info, classes, tree / "train")
    if info.name == "cifar10" and set(classes) == set(CIFAR10_CLASSES) and tuple(classes) != CIFAR10_CLASSES:
        # Unreachable while the torchvision names stay alphabetical; kept so a renamed class can never
        # silently permute labels relative to torchvision's pickles.
        raise ConfigError(f"class folders in {tree} do not sort to torchvision's CIFAR-10 order")
    return classes, class_to_idx


def check_class_count(info: DatasetInfo, classes: list[str], where: Path) -> None:
    """Reject trees with more classes than the model head has; fewer is fine (quick synthetic runs)."""
    if not classes:
        raise ConfigError(f"{where} holds no class folders; expected <class>/<image> below it")
    if len(classes) > info.num_classes:
        raise ConfigError(
            f"{where} holds {len(classes)} class folders but {info.name} has {info.num_classes} classes"
        )


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


def _stat_listing(split_dir: Path, samples: list[tuple[str, int]]) -> list[tuple[str, int, int, int]]:
    """(relative path, label, size, mtime) per image: cheap to compute, changes whenever a file does."""
    listing = []
    for path, label in samples:
        stat = Path(path).stat()
        listing.append((str(Path(path).relative_to(split_dir)), label, stat.st_size, stat.st_mtime_ns))
    return listing


def _decode_images(samples: list[tuple[str, int]], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode every image to RGB uint8 N×3×size×size; a wrongly sized image is an error, not a resize."""
    from PIL import Image

    pixels = np.empty((len(samples), size, size, 3), dtype=np.uint8)
    for index, (path, _) in enumerate(samples):
        with Image.open(path) as image:
            if image.size != (size, size):
                raise ConfigError(f"{path} is {image.size[0]}x{image.size[1]}; expected {size}x{size}")
            pixels[index] = np.asarray(image.convert("RGB"))
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
    y = torch.tensor([label for _, label in samples], dtype=torch.int64)
    return x, y
