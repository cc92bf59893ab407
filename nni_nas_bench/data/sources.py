"""Finding a 32-px dataset under a data root and turning it into uint8 tensors.

The same CIFAR data reaches users in several shapes (torchvision's pickles, an ImageFolder tree, the
JPEG archive in ``shared/data``); trials should not care which. Sources are tried in a fixed order and
the first complete one wins, so a train set from one source is never mixed with a test set from
another. A source that exists but cannot be read is skipped with a warning, so that a valid later
source still works; when none works, ONE error lists every place looked at and how to provide the data.
"""

from __future__ import annotations

import tarfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from nni_nas_bench.data.archive import ARCHIVE_DIR, ARCHIVE_NAME, archive_candidates, decode_archive
from nni_nas_bench.data.cache import resolve_cache_dir
from nni_nas_bench.data.image_folder import TensorData, decode_tree
from nni_nas_bench.data.lookup import LookupLog, data_root_hint, folder_tree_hint, tree_is_complete
from nni_nas_bench.data.registry import DatasetInfo
from nni_nas_bench.errors import ConfigError


def load_small_dataset(
    info: DatasetInfo,
    root: str | Path,
    splits: tuple[str, ...],
    *,
    cache_dir: str | Path | None = None,
    download: bool = False,
) -> dict[str, TensorData]:
    """Load the requested ``splits`` ('train'/'test') of a 32-px dataset from the first complete source.

    Order: (1) torchvision's format (``root/cifar-10-batches-py``, ``root/cifar-100-python``);
    (2) an ImageFolder tree ``root/<folder_name>/{train,test}``; (3) cifar10 only: the JPEG archive at
    ``root/cifar10-jpeg/cifar10-jpeg.tar.gz`` (``root`` may also be that folder or the tarball);
    (4) with ``download=True``, torchvision's download into ``root``. Decoded images of (2) and (3) are
    cached in ``cache_dir``.
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
    if not download and info.name in TORCHVISION_FOLDERS:
        log.note("torchvision download", "not attempted (download=False)")
    how_to = [data_root_hint(), folder_tree_hint(info, root)]
    if info.name == "cifar10":
        how_to.append(f"put the JPEG archive at {root / ARCHIVE_DIR / ARCHIVE_NAME}")
    how_to.append(f"pass download=True (needs internet) to fetch torchvision's copy into {root}")
    raise log.error(how_to)


# torchvision's folder of each dataset it knows (``CIFAR10.base_folder``, ``CIFAR100.base_folder``; a test
# checks they match). Known without importing torchvision, which costs a trial seconds (it loads
# torch._dynamo): most data roots hold the JPEG archive or an ImageFolder tree, not torchvision's pickles.
TORCHVISION_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


def _torchvision_class(name: str) -> type:
    """The torchvision dataset class of a :data:`TORCHVISION_FOLDERS` dataset."""
    from torchvision import datasets

    return {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]


def _from_torchvision(
    info: DatasetInfo, root: Path, splits: tuple[str, ...], log: LookupLog, *, download: bool
) -> dict[str, TensorData] | None:
    """Read torchvision's pickles (about a second for all of CIFAR, so they are not cached)."""
    if info.name not in TORCHVISION_FOLDERS:
        return None
    folder = root / TORCHVISION_FOLDERS[info.name]
    label = (
        f"torchvision download of {info.name} into {root}" if download else f"{folder} (torchvision format)"
    )
    if not download and not folder.is_dir():
        log.note(label, "missing")
        return None
    cls = _torchvision_class(info.name)
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


def _from_image_folder(
    info: DatasetInfo, root: Path, splits: tuple[str, ...], log: LookupLog, cache_dir: str | Path | None
) -> dict[str, TensorData] | None:
    """Decode ``root/<folder_name>/<split>``. Errors inside a present tree are the user's to fix: raised."""
    tree = root / info.folder_name
    if not tree_is_complete(log, tree, splits):
        return None
    return decode_tree(info, tree, splits, resolve_cache_dir(cache_dir))


def _from_archive(
    info: DatasetInfo, root: Path, splits: tuple[str, ...], log: LookupLog, cache_dir: str | Path | None
) -> dict[str, TensorData] | None:
    """Decode the CIFAR-10 JPEG archive from the first candidate location that holds it."""
    for archive in archive_candidates(root):
        label = f"{archive} (CIFAR-10 JPEG archive)"
        if not archive.is_file():
            log.note(label, "missing")
            continue
        try:
            return decode_archive(info, archive, splits, resolve_cache_dir(cache_dir))
        except (OSError, EOFError, tarfile.TarError, ConfigError) as exc:
            log.note(label, f"present but unusable ({type(exc).__name__}: {exc})")
            warnings.warn(f"skipping {label}: {exc}", stacklevel=3)
    return None
