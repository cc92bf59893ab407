"""The datasets of the benchmark and the facts every other module needs about them.

One table, so that the number of classes a model head gets, the folder the loader looks for and the
normalisation statistics can never disagree between the search and the final-training code.
"""

from __future__ import annotations

from dataclasses import dataclass

from nni_nas_bench.errors import unknown_name_error

# CIFAR-10 training-set statistics. SPEC: both CIFARs are normalised with these (as DARTS does), so a
# CIFAR-100 run is comparable with the published numbers rather than "more correct".
CIFAR_MEAN: tuple[float, float, float] = (0.49139968, 0.48215827, 0.44653124)
CIFAR_STD: tuple[float, float, float] = (0.24703233, 0.24348505, 0.26158768)

# ImageNet statistics, the usual choice for 224-px transfer-style datasets (SPEC: SPORT8/MIT67/FLOWERS102).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# torchvision's CIFAR-10 class order (``batches.meta``). It is alphabetical, so an ImageFolder tree whose
# class folders carry these names gets the same label indices as the pickled original; a test checks it.
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


@dataclass(frozen=True)
class DatasetInfo:
    """What the rest of the project may assume about one dataset.

    ``folder_name`` is the directory looked for under the data root when the dataset is given as an
    ``ImageFolder`` tree (``<root>/<folder_name>/{train,test}/<class>/<image>``); ``image_size`` decides
    the pipeline: 32 -> whole set as uint8 tensors on the device, 224 -> a worker-backed DataLoader.
    """

    name: str
    folder_name: str
    num_classes: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def is_small(self) -> bool:
        """True for the 32-px datasets, which fit in device memory and get the tensor pipeline."""
        return self.image_size <= 32


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("cifar10", "CIFAR10", 10, 32, CIFAR_MEAN, CIFAR_STD),
        DatasetInfo("cifar100", "CIFAR100", 100, 32, CIFAR_MEAN, CIFAR_STD),
        DatasetInfo("sport8", "SPORT8", 8, 224, IMAGENET_MEAN, IMAGENET_STD),
        DatasetInfo("mit67", "MIT67", 67, 224, IMAGENET_MEAN, IMAGENET_STD),
        DatasetInfo("flowers102", "FLOWERS102", 102, 224, IMAGENET_MEAN, IMAGENET_STD),
    )
}


def get_dataset_info(name: str) -> DatasetInfo:
    """Look a dataset up by name (case-insensitive, so the SPEC's ``CIFAR10`` spelling works too).

    A miss names every dataset the user could have meant instead of a bare ``KeyError``.
    """
    info = DATASETS.get(str(name).lower())
    if info is None:
        raise unknown_name_error("dataset", name, list(DATASETS))
    return info
