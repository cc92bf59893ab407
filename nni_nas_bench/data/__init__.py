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

from nni_nas_bench.data.cache import CACHE_ENV, default_cache_dir
from nni_nas_bench.data.folder import Cutout, FolderDataset, eval_transform, train_transform
from nni_nas_bench.data.gpu_loader import GpuBatchLoader
from nni_nas_bench.data.loaders import DeviceDataLoader, Loader, make_loaders
from nni_nas_bench.data.lookup import DATA_ROOT_ENV, default_data_root
from nni_nas_bench.data.registry import (
    CIFAR10_CLASSES,
    CIFAR_MEAN,
    CIFAR_STD,
    DATASETS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    DatasetInfo,
    get_dataset_info,
)
from nni_nas_bench.data.splits import PHASES, FolderSplit, Split, TensorSplit, load_split
from nni_nas_bench.data.synthetic import write_synthetic_image_folder

__all__ = [
    "CACHE_ENV",
    "CIFAR10_CLASSES",
    "CIFAR_MEAN",
    "CIFAR_STD",
    "DATASETS",
    "DATA_ROOT_ENV",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PHASES",
    "Cutout",
    "DatasetInfo",
    "DeviceDataLoader",
    "FolderDataset",
    "FolderSplit",
    "GpuBatchLoader",
    "Loader",
    "Split",
    "TensorSplit",
    "default_cache_dir",
    "default_data_root",
    "eval_transform",
    "get_dataset_info",
    "load_split",
    "make_loaders",
    "train_transform",
    "write_synthetic_image_folder",
]
