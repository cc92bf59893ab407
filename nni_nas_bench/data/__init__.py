"""Datasets of the benchmark: where they are, how they are split, and how batches reach the device.

Typical use::

    split = load_split("cifar10", data_root, "search", seed=seed)
    train_loader, valid_loader = make_loaders(split, batch_size=64, device="cuda", cutout=16)
    for epoch in range(epochs):
        train_loader.set_epoch(epoch)
        for x, y in train_loader: ...

Modules: ``registry`` (the dataset table); ``sources`` (finding 32-px data) with ``image_folder``,
``archive``, ``cache`` and ``lookup`` (decoding, caching, the not-found message);
``folder`` (the 224-px pipeline), ``splits`` (search/final splits), ``gpu_loader`` and ``loaders``
(batches on the device), ``synthetic`` (a learnable stand-in for tests).
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> submodule. Loaded on first use (PEP 562): ``data.lookup`` and ``data._seeding`` serve torch-free
# processes (NNI's tuner, a NAS-Bench-201 table lookup), which must not pay for torch and torchvision.
_EXPORTS = {
    "CACHE_ENV": "lookup",
    "CIFAR10_CLASSES": "registry",
    "CIFAR_MEAN": "registry",
    "CIFAR_STD": "registry",
    "Cutout": "folder",
    "DATASETS": "registry",
    "DATA_ROOT_ENV": "lookup",
    "DatasetInfo": "registry",
    "DeviceDataLoader": "loaders",
    "FolderDataset": "folder",
    "FolderSplit": "splits",
    "GpuBatchLoader": "gpu_loader",
    "IMAGENET_MEAN": "registry",
    "IMAGENET_STD": "registry",
    "Loader": "loaders",
    "PHASES": "splits",
    "Split": "splits",
    "TensorSplit": "splits",
    "default_cache_dir": "lookup",
    "default_data_root": "lookup",
    "eval_transform": "folder",
    "get_dataset_info": "registry",
    "load_split": "splits",
    "make_loaders": "loaders",
    "train_transform": "folder",
    "write_synthetic_image_folder": "synthetic",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
