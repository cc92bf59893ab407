"""Tests of nni_nas_bench.data: registry, sources, splits, loaders and the synthetic stand-in.

Everything except the last section runs on small synthetic data written into pytest's temporary
folders; the real CIFAR-10 JPEG archive is only used when it is present beside the repository.
"""

from __future__ import annotations

import pickle
import tarfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from nni_nas_bench.data import (
    CIFAR10_CLASSES,
    CIFAR_MEAN,
    CIFAR_STD,
    DATASETS,
    IMAGENET_MEAN,
    FolderSplit,
    GpuBatchLoader,
    Loader,
    TensorSplit,
    get_dataset_info,
    load_split,
    make_loaders,
    write_synthetic_image_folder,
)
from nni_nas_bench.data.gpu_loader import crop_and_flip, cutout
from nni_nas_bench.errors import ConfigError, DatasetNotFoundError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CIFAR10_ARCHIVE = SHARED_DATA / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"


def image_keys(images: torch.Tensor) -> list[bytes]:
    """Identify images by content (every synthetic image is unique: random phase and noise)."""
    return [image.numpy().tobytes() for image in images]


# --- registry -----------------------------------------------------------------------------------------


def test_registry_has_the_five_datasets() -> None:
    assert set(DATASETS) == {"cifar10", "cifar100", "sport8", "mit67", "flowers102"}
    expected = {"cifar10": 10, "cifar100": 100, "sport8": 8, "mit67": 67, "flowers102": 102}
    for name, classes in expected.items():
        info = get_dataset_info(name)
        assert info.name == name and info.num_classes == classes
        assert info.folder_name == name.upper()
    # SPEC: both CIFARs use CIFAR-10 statistics, the 224-px sets ImageNet statistics.
    assert get_dataset_info("cifar100").mean == CIFAR_MEAN and get_dataset_info("cifar100").std == CIFAR_STD
    assert {DATASETS[n].image_size for n in ("cifar10", "cifar100")} == {32}
    assert all(
        DATASETS[n].image_size == 224 and DATASETS[n].mean == IMAGENET_MEAN for n in ("sport8", "mit67")
    )
    assert get_dataset_info("CIFAR10") is DATASETS["cifar10"]


def test_unknown_dataset_names_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"unknown dataset 'imagenet'.*cifar10.*flowers102"):
        get_dataset_info("imagenet")
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_split("imagenet", "/nonexistent", "final")


def test_cifar10_class_names_sort_to_torchvision_order() -> None:
    # An ImageFolder tree labels classes by sorted folder name; torchvision's batches.meta order is
    # alphabetical, so the JPEG tree and the pickles give every image the same label.
    assert tuple(sorted(CIFAR10_CLASSES)) == CIFAR10_CLASSES


# --- synthetic ImageFolder tree → load_split ----------------------------------------------------------

NUM_CLASSES, TRAIN_PER_CLASS, TEST_PER_CLASS = 4, 11, 5  # odd train count: halves differ by one


@pytest.fixture(scope="module")
def small_tree_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_image_folder(
        root,
        "CIFAR10",
        num_classes=NUM_CLASSES,
        train_per_class=TRAIN_PER_CLASS,
        test_per_class=TEST_PER_CLASS,
    )
    return root


@pytest.fixture(scope="module")
def small_tree_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_synthetic_writer_layout(small_tree_root: Path) -> None:
    tree = small_tree_root / "CIFAR10"
    assert sorted(p.name for p in (tree / "train").iterdir()) == [
        f"class_{i:03d}" for i in range(NUM_CLASSES)
    ]
    assert len(list((tree / "test" / "class_002").glob("*.png"))) == TEST_PER_CLASS
    # Deterministic: the same arguments write the same pixels.
    other = write_synthetic_image_folder(
        small_tree_root / "again",
        "CIFAR10",
        num_classes=NUM_CLASSES,
        train_per_class=TRAIN_PER_CLASS,
        test_per_class=TEST_PER_CLASS,
    )
    first = tree / "train" / "class_001" / "0003.png"
    assert first.read_bytes() == (other / "train" / "class_001" / "0003.png").read_bytes()


def test_final_split_from_image_folder(small_tree_root: Path, small_tree_cache: Path) -> None:
    split = load_split("cifar10", small_tree_root, "final", cache_dir=small_tree_cache)
    assert isinstance(split, TensorSplit)
    assert split.train_x.shape == (NUM_CLASSES * TRAIN_PER_CLASS, 3, 32, 32)
    assert split.eval_x.shape == (NUM_CLASSES * TEST_PER_CLASS, 3, 32, 32)
    assert split.train_x.dtype == torch.uint8 and split.train_y.dtype == torch.int64
    assert split.train_x.device.type == "cpu"
    assert torch.bincount(split.train_y).tolist() == [TRAIN_PER_CLASS] * NUM_CLASSES
    assert torch.bincount(split.eval_y).tolist() == [TEST_PER_CLASS] * NUM_CLASSES
    assert split.classes == tuple(f"class_{i:03d}" for i in range(NUM_CLASSES))
    assert split.info is DATASETS["cifar10"]
    assert len(list((small_tree_cache / "tensors").glob("cifar10-*-folder-*.pt"))) == 2


def test_search_split_is_stratified_disjoint_and_seeded(
    small_tree_root: Path, small_tree_cache: Path
) -> None:
    full = load_split("cifar10", small_tree_root, "final", cache_dir=small_tree_cache)
    split = load_split("cifar10", small_tree_root, "search", seed=3, cache_dir=small_tree_cache)
    assert isinstance(split, TensorSplit)
    train_counts, valid_counts = torch.bincount(split.train_y), torch.bincount(split.eval_y)
    assert (train_counts - valid_counts).abs().max() <= 1
    assert (train_counts + valid_counts).tolist() == [TRAIN_PER_CLASS] * NUM_CLASSES
    train_keys, valid_keys = set(image_keys(split.train_x)), set(image_keys(split.eval_x))
    assert not train_keys & valid_keys
    assert train_keys | valid_keys == set(image_keys(full.train_x))  # the test set is never used
    again = load_split("cifar10", small_tree_root, "search", seed=3, cache_dir=small_tree_cache)
    assert torch.equal(again.train_x, split.train_x) and torch.equal(again.eval_y, split.eval_y)
    other = load_split("cifar10", small_tree_root, "search", seed=4, cache_dir=small_tree_cache)
    assert set(image_keys(other.train_x)) != train_keys


def test_subset_is_per_class_on_each_side(small_tree_root: Path, small_tree_cache: Path) -> None:
    split = load_split("cifar10", small_tree_root, "search", subset=2, cache_dir=small_tree_cache)
    assert torch.bincount(split.train_y).tolist() == [2] * NUM_CLASSES
    assert torch.bincount(split.eval_y).tolist() == [2] * NUM_CLASSES
    final = load_split("cifar10", small_tree_root, "final", subset=3, seed=1, cache_dir=small_tree_cache)
    assert torch.bincount(final.train_y).tolist() == [3] * NUM_CLASSES
    assert torch.bincount(final.eval_y).tolist() == [3] * NUM_CLASSES
    large = load_split("cifar10", small_tree_root, "final", subset=1000, cache_dir=small_tree_cache)
    assert len(large.train_y) == NUM_CLASSES * TRAIN_PER_CLASS


@pytest.mark.parametrize("bad", [{"phase": "valid"}, {"subset": 0}, {"subset": True}])
def test_bad_phase_or_subset_is_a_config_error(small_tree_root: Path, bad: dict) -> None:
    kwargs = {"phase": "final", **bad}
    phase = kwargs.pop("phase")
    with pytest.raises(ConfigError):
        load_split("cifar10", small_tree_root, phase, **kwargs)


def test_tensor_cache_is_invalidated_when_the_tree_changes(tmp_path: Path) -> None:
    write_synthetic_image_folder(tmp_path, "CIFAR10", num_classes=2, train_per_class=3, test_per_class=2)
    cache = tmp_path / "cache"
    assert len(load_split("cifar10", tmp_path, "final", cache_dir=cache).train_y) == 6
    cached = sorted((cache / "tensors").glob("*.pt"))
    assert len(cached) == 2
    extra = tmp_path / "CIFAR10" / "train" / "class_000" / "extra.png"
    extra.write_bytes((tmp_path / "CIFAR10" / "train" / "class_000" / "0000.png").read_bytes())
    assert len(load_split("cifar10", tmp_path, "final", cache_dir=cache).train_y) == 7
    # The stale train file is replaced, not accumulated; the unchanged test file is kept.
    now = sorted((cache / "tensors").glob("*.pt"))
    assert len(now) == 2 and now != cached


def test_wrong_image_size_or_too_many_classes_is_a_config_error(tmp_path: Path) -> None:
    write_synthetic_image_folder(tmp_path / "a", "CIFAR10", num_classes=2, train_per_class=1, size=40)
    with pytest.raises(ConfigError, match="expected 32x32"):
        load_split("cifar10", tmp_path / "a", "final", cache_dir=tmp_path / "cache")
    write_synthetic_image_folder(
        tmp_path / "b", "CIFAR10", num_classes=11, train_per_class=1, test_per_class=1
    )
    with pytest.raises(ConfigError, match="11 class folders"):
        load_split("cifar10", tmp_path / "b", "final", cache_dir=tmp_path / "cache")


# --- torchvision's pickled format ---------------------------------------------------------------------


def write_fake_cifar10_batches(root: Path, per_batch: int = 4) -> tuple[np.ndarray, list[int]]:
    """Write torchvision's ``cifar-10-batches-py`` layout with tiny batches; return the train pixels."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    all_rows, all_labels = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)  # row = R plane, G plane, B plane
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        with (folder / name).open("wb") as handle:
            pickle.dump({"data": rows, "labels": labels, "batch_label": name}, handle)
        if name != "test_batch":
            all_rows.append(rows)
            all_labels += labels
    with (folder / "batches.meta").open("wb") as handle:
        pickle.dump({"label_names": list(CIFAR10_CLASSES), "num_vis": 3072}, handle)
    return np.concatenate(all_rows), all_labels


@pytest.fixture
def accept_fake_cifar_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let torchvision read our fake pickles with ``download=False``.

    torchvision verifies the md5 of every batch (``CIFAR10._check_integrity``) and of ``batches.meta``
    (in ``_load_meta``) through ``check_integrity(path, md5)``, which only checks that the file exists
    when the md5 is None. So the listed md5s are set to None: the rest of torchvision's reading code runs
    unchanged on our files.
    """
    from torchvision.datasets import CIFAR10

    monkeypatch.setattr(CIFAR10, "train_list", [[name, None] for name, _ in CIFAR10.train_list])
    monkeypatch.setattr(CIFAR10, "test_list", [[name, None] for name, _ in CIFAR10.test_list])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": None})


def test_torchvision_format_is_loaded(tmp_path: Path, accept_fake_cifar_files: None) -> None:
    rows, labels = write_fake_cifar10_batches(tmp_path)
    # An ImageFolder tree next to it must not be used: torchvision's format comes first.
    write_synthetic_image_folder(tmp_path, "CIFAR10", num_classes=2, train_per_class=1, test_per_class=1)
    split = load_split("cifar10", tmp_path, "final", cache_dir=tmp_path / "cache")
    assert split.train_x.shape == (20, 3, 32, 32) and split.eval_x.shape == (4, 3, 32, 32)
    assert split.train_x.dtype == torch.uint8
    assert split.train_y.tolist() == labels
    assert torch.equal(split.train_x, torch.from_numpy(rows.reshape(-1, 3, 32, 32)))
    assert split.classes == CIFAR10_CLASSES
    assert not (tmp_path / "cache" / "tensors").exists()  # pickles load fast: nothing cached


def test_corrupt_torchvision_files_fall_through_with_a_warning(tmp_path: Path) -> None:
    write_fake_cifar10_batches(tmp_path)  # md5s do not match torchvision's: "corrupt"
    write_synthetic_image_folder(tmp_path, "CIFAR10", num_classes=2, train_per_class=2, test_per_class=1)
    with pytest.warns(UserWarning, match="cifar-10-batches-py"):
        split = load_split("cifar10", tmp_path, "final", cache_dir=tmp_path / "cache")
    assert len(split.train_y) == 4  # came from the ImageFolder tree


# --- missing data -------------------------------------------------------------------------------------


def test_missing_data_lists_every_path_and_the_fixes(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as caught:
        load_split("cifar10", tmp_path, "final", cache_dir=tmp_path / "cache")
    message = str(caught.value)
    for looked in [
        tmp_path / "cifar-10-batches-py",
        tmp_path / "CIFAR10" / "train",
        tmp_path / "CIFAR10" / "test",
        tmp_path / "cifar10-jpeg" / "cifar10-jpeg.tar.gz",
        tmp_path / "cifar10-jpeg.tar.gz",
    ]:
        assert str(looked) in message
    assert "--data-root" in message and "NNB_DATA_ROOT" in message and "download=True" in message
    assert isinstance(caught.value, FileNotFoundError)  # callers may catch the builtin too


def test_missing_224px_data_lists_the_folders(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as caught:
        load_split("sport8", tmp_path / "nowhere", "search")
    message = str(caught.value)
    assert str(tmp_path / "nowhere" / "SPORT8" / "train") in message and "does not exist" in message


# --- the CIFAR-10 JPEG archive (a tiny fake one; the real one is tested at the end) ---------------------


def write_tiny_archive(tmp_path: Path, wrap: str = "") -> tuple[Path, Path]:
    """A tar.gz with the real archive's layout (train/<class>/..., test/<class>/...) and CIFAR names.

    Returns (archive, data root holding the same tree as ``CIFAR10/`` for an ImageFolder comparison).
    """
    tree = write_synthetic_image_folder(
        tmp_path / "src", "CIFAR10", num_classes=10, train_per_class=2, test_per_class=1
    )
    for split in ("train", "test"):
        for index, name in enumerate(CIFAR10_CLASSES):
            (tree / split / f"class_{index:03d}").rename(tree / split / name)
    archive = tmp_path / "data" / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        for split in ("train", "test"):
            tar.add(tree / split, arcname=f"{wrap}{split}")
    return archive, tree.parent


def test_archive_is_decoded_like_the_extracted_image_folder(tmp_path: Path) -> None:
    archive, folder_root = write_tiny_archive(tmp_path)
    cache = tmp_path / "cache"
    split = load_split("cifar10", archive.parents[1], "final", cache_dir=cache)
    assert split.train_x.shape == (20, 3, 32, 32) and split.classes == CIFAR10_CLASSES
    assert torch.bincount(split.train_y).tolist() == [2] * 10
    # Same labels, order and pixels as ImageFolder on the unpacked tree.
    reference = load_split("cifar10", folder_root, "final", cache_dir=tmp_path / "other-cache")
    for name in ("train_x", "train_y", "eval_x", "eval_y"):
        assert torch.equal(getattr(split, name), getattr(reference, name)), name
    # Nothing extracted: the cache holds the two tensor files only.
    assert [p.name for p in cache.iterdir()] == ["tensors"]
    assert len(list((cache / "tensors").iterdir())) == 2


def test_archive_root_may_be_its_folder_or_the_tarball_and_copies_share_the_cache(tmp_path: Path) -> None:
    archive, _ = write_tiny_archive(tmp_path)
    cache = tmp_path / "cache"
    first = load_split("cifar10", archive.parent, "final", cache_dir=cache)
    cached = sorted((cache / "tensors").iterdir())
    copy = tmp_path / "elsewhere" / "any-name.tar.gz"
    copy.parent.mkdir()
    copy.write_bytes(archive.read_bytes())
    for root in (archive, copy):
        again = load_split("cifar10", root, "final", cache_dir=cache)
        assert torch.equal(again.train_x, first.train_x)
    assert sorted((cache / "tensors").iterdir()) == cached  # keyed by content: no new files


def test_archive_wrapped_in_a_folder(tmp_path: Path) -> None:
    archive, _ = write_tiny_archive(tmp_path, wrap="cifar10/")
    split = load_split("cifar10", archive, "search", cache_dir=tmp_path / "cache")
    assert len(split.train_y) == len(split.eval_y) == 10


def test_corrupt_archive_is_reported(tmp_path: Path) -> None:
    archive = tmp_path / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(b"not a tarball")
    with (
        pytest.warns(UserWarning, match="cifar10-jpeg.tar.gz"),
        pytest.raises(DatasetNotFoundError) as caught,
    ):
        load_split("cifar10", tmp_path, "final", cache_dir=tmp_path / "cache")
    assert "present but unusable" in str(caught.value)


def test_concurrent_first_loads_do_not_collide(tmp_path: Path) -> None:
    archive, _ = write_tiny_archive(tmp_path)
    cache = tmp_path / "cache"
    results: list[TensorSplit] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(load_split("cifar10", archive, "final", cache_dir=cache))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 3
    assert all(torch.equal(r.train_x, results[0].train_x) for r in results)
    assert len(list((cache / "tensors").iterdir())) == 2  # no temporary files left behind


# --- GpuBatchLoader -----------------------------------------------------------------------------------


def make_tensor_loader(n: int = 50, train: bool = True, **kwargs: object) -> GpuBatchLoader:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.arange(n)  # label = sample id, so batches reveal which samples they hold
    options = {"batch_size": 16, "device": "cpu", "mean": CIFAR_MEAN, "std": CIFAR_STD, "seed": 0, **kwargs}
    return GpuBatchLoader(images, labels, train=train, **options)


def collect(loader: GpuBatchLoader, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader.set_epoch(epoch)
    return list(loader)


def same_batches(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b)
    )


def test_loader_replays_an_epoch_and_varies_across_epochs() -> None:
    loader = make_tensor_loader(cutout=8)
    first = collect(loader, 5)
    assert same_batches(first, collect(loader, 5))
    assert same_batches(first, collect(make_tensor_loader(cutout=8), 5))  # a resumed run
    assert not same_batches(first, collect(loader, 6))
    assert not same_batches(first, collect(make_tensor_loader(cutout=8, seed=1), 5))


def test_loader_shapes_len_and_drop_last() -> None:
    loader = make_tensor_loader(n=50)
    assert isinstance(loader, Loader)
    assert len(loader) == 3  # 50 // 16, the ragged last batch dropped
    batches = collect(loader, 0)
    assert len(batches) == 3
    for x, y in batches:
        assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    ids = torch.cat([y for _, y in batches])
    assert len(set(ids.tolist())) == 48  # a permutation: no sample twice in an epoch
    small = make_tensor_loader(n=10)  # fewer images than one batch: still one batch, not zero
    assert len(small) == 1 and collect(small, 0)[0][0].shape[0] == 10


def test_eval_loader_is_deterministic_and_sees_every_sample_once() -> None:
    loader = make_tensor_loader(n=50, train=False)
    assert len(loader) == 4
    batches = collect(loader, 0)
    assert [len(y) for _, y in batches] == [16, 16, 16, 2]
    assert torch.equal(torch.cat([y for _, y in batches]), torch.arange(50))
    assert same_batches(batches, collect(loader, 7))  # no augmentation, no shuffle
    x = torch.cat([x for x, _ in batches])
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    assert torch.allclose(x, (loader.images.float() / 255 - mean) / std)


def test_crop_and_flip() -> None:
    images = torch.randint(1, 256, (3, 3, 32, 32), dtype=torch.uint8)  # no zeros, so padding shows
    offsets = torch.tensor([[4, 4], [0, 0], [4, 4]])
    flips = torch.tensor([False, False, True])
    out = crop_and_flip(images, offsets, flips, padding=4)
    assert out.shape == images.shape and out.dtype == torch.uint8
    assert torch.equal(out[0], images[0])  # centred crop = the image
    assert (out[1, :, :4, :] == 0).all() and (out[1, :, :, :4] == 0).all()  # shifted: zero border
    assert torch.equal(out[1, :, 4:, 4:], images[1, :, :28, :28])
    assert torch.equal(out[2], images[2].flip(-1))


def test_cutout_zeros_a_clipped_square() -> None:
    images = torch.ones(2, 3, 32, 32)
    out = cutout(images, torch.tensor([[16, 16], [0, 31]]), length=8)
    expected = torch.ones(2, 3, 32, 32)
    expected[0, :, 12:20, 12:20] = 0
    expected[1, :, 0:4, 27:32] = 0  # clipped at the top and right borders
    assert torch.equal(out, expected)


def test_loader_cutout_zeros_one_square_per_image() -> None:
    loader = make_tensor_loader(cutout=8)
    loader.images.fill_(200)  # padding is black: after normalisation nothing but the hole is 0
    for x, _ in collect(loader, 0):
        zeros = (x == 0).all(dim=1).sum(dim=(1, 2))
        assert ((zeros >= 16) & (zeros <= 64)).all()
        rows = (x == 0).all(dim=1).any(dim=2).sum(dim=1)
        cols = (x == 0).all(dim=1).any(dim=1).sum(dim=1)
        assert torch.equal(rows * cols, zeros)  # a rectangle, i.e. the clipped square


def test_loader_leaves_the_global_rng_alone() -> None:
    loader = make_tensor_loader(n=20, autoaugment=True, cutout=4)
    state = torch.get_rng_state()
    first = collect(loader, 1)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(1234)  # a different global state must not change the batches
    assert same_batches(first, collect(loader, 1))


def test_autoaugment_changes_images_reproducibly() -> None:
    plain = collect(make_tensor_loader(n=32), 0)
    augmented = collect(make_tensor_loader(n=32, autoaugment=True), 0)
    assert augmented[0][0].shape == (16, 3, 32, 32)
    assert torch.equal(plain[0][1], augmented[0][1])  # same order: autoaugment draws after the rest
    assert not torch.equal(plain[0][0], augmented[0][0])
    assert same_batches(augmented, collect(make_tensor_loader(n=32, autoaugment=True), 0))


def test_make_loaders_for_a_tensor_split_learns_the_synthetic_data(
    small_tree_root: Path, small_tree_cache: Path
) -> None:
    split = load_split("cifar10", small_tree_root, "final", cache_dir=small_tree_cache)
    train, evaluation = make_loaders(split, batch_size=8, device="cpu", cutout=4, eval_batch_size=32)
    assert len(train) == (NUM_CLASSES * TRAIN_PER_CLASS) // 8 and len(evaluation) == 1
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(4),
        torch.nn.Flatten(),
        torch.nn.Linear(256, NUM_CLASSES),
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(8):
        train.set_epoch(epoch)
        for x, y in train:
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimiser.step()
    with torch.no_grad():
        correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in evaluation)
    assert correct / len(split.eval_y) > 2.0 / NUM_CLASSES  # well above chance (1 / NUM_CLASSES)


# --- 224-px folders -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sport8_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sport8")
    write_synthetic_image_folder(root, "SPORT8", num_classes=8, train_per_class=4, test_per_class=2, size=64)
    return root


def test_224px_final_loaders_yield_224_crops(sport8_root: Path) -> None:
    split = load_split("sport8", sport8_root, "final")
    assert isinstance(split, FolderSplit)
    assert len(split.train) == 32 and len(split.eval) == 16
    train, evaluation = make_loaders(split, batch_size=8, device="cpu", cutout=16, num_workers=0)
    assert len(train) == 4 and len(evaluation) == 2
    x, y = next(iter(train))
    assert x.shape == (8, 3, 224, 224) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert ((x == 0).all(dim=1).sum(dim=(1, 2)) > 0).all()  # every image has a cutout hole
    ex, ey = next(iter(evaluation))
    assert ex.shape == (8, 3, 224, 224) and ey.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_224px_search_split_and_epoch_order(sport8_root: Path) -> None:
    split = load_split("sport8", sport8_root, "search", seed=0)
    assert isinstance(split, FolderSplit)
    assert sorted(split.train.targets) == sorted(split.eval.targets) == sorted(list(range(8)) * 2)
    assert not {p for p, _ in split.train.samples} & {p for p, _ in split.eval.samples}
    train, _ = make_loaders(split, batch_size=4, device="cpu", num_workers=0, autoaugment=True)

    def order(epoch: int) -> list[int]:
        train.set_epoch(epoch)
        return [label for _, y in train for label in y.tolist()]

    assert order(2) == order(2) and order(2) != order(3)


def test_224px_loader_with_worker_processes(sport8_root: Path) -> None:
    split = load_split("sport8", sport8_root, "final", subset=1)
    train, evaluation = make_loaders(split, batch_size=4, device="cpu", num_workers=1)
    assert sum(len(y) for _, y in evaluation) == 8
    train.set_epoch(0)
    first = [x for x, _ in train]
    train.set_epoch(0)
    assert all(torch.equal(a, b) for a, b in zip(first, [x for x, _ in train]))  # worker seeds follow epoch


# --- the real CIFAR-10 JPEG archive -------------------------------------------------------------------


@pytest.fixture(scope="session")
def real_cifar10_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the session, so the 60,000 JPEGs are decoded once."""
    if not CIFAR10_ARCHIVE.is_file():
        pytest.skip(f"real data absent: {CIFAR10_ARCHIVE} not found (the shared data folder beside the repo)")
    cache = tmp_path_factory.mktemp("real_cifar10_cache")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the archive must be read without falling back anywhere
        load_split("cifar10", SHARED_DATA, "final", subset=1, cache_dir=cache)
    print(f"\nCIFAR-10 JPEG archive decoded and cached in {time.perf_counter() - start:.1f} s")
    return cache


def test_real_cifar10_final_subset(real_cifar10_cache: Path) -> None:
    split = load_split("cifar10", SHARED_DATA, "final", subset=50, cache_dir=real_cifar10_cache)
    assert isinstance(split, TensorSplit)
    assert split.train_x.shape == (500, 3, 32, 32) and split.eval_x.shape == (500, 3, 32, 32)
    assert torch.bincount(split.train_y).tolist() == [50] * 10 == torch.bincount(split.eval_y).tolist()
    assert split.classes == CIFAR10_CLASSES
    assert split.train_x.float().mean() > 50  # decoded pixels, not an empty buffer


def test_real_cifar10_search_split_from_the_cache(real_cifar10_cache: Path) -> None:
    start = time.perf_counter()
    split = load_split(
        "cifar10", SHARED_DATA / "cifar10-jpeg", "search", seed=0, cache_dir=real_cifar10_cache
    )
    assert time.perf_counter() - start < 20  # from the tensor cache, no decoding
    assert split.train_x.shape == (25000, 3, 32, 32) and split.eval_x.shape == (25000, 3, 32, 32)
    assert torch.bincount(split.train_y).tolist() == [2500] * 10


def test_torchvision_folders_are_torchvisions_own() -> None:
    """The data lookup names torchvision's folders without importing it (seconds per trial): they must
    stay what torchvision calls them."""
    from torchvision import datasets

    from nni_nas_bench.data.sources import TORCHVISION_FOLDERS

    assert TORCHVISION_FOLDERS == {"cifar10": datasets.CIFAR10.base_folder,
                                   "cifar100": datasets.CIFAR100.base_folder}
