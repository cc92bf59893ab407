"""The CIFAR-10 JPEG archive (``shared/data/cifar10-jpeg``) read straight from the tar.gz.

The archive holds an ImageFolder tree (``train/<class>/NNNN.jpg``, ``test/<class>/NNNN.jpg``). It is
decoded in one streaming pass instead of being extracted: extraction writes 60,000 small files (5-20 s
on a busy disk here, about 240 MB of inodes left in the cache) and deleting them later costs as much
again, while the decoded tensors, which are all a trial needs, are cached anyway. Labels and order are
those ImageFolder would give the extracted tree (a test checks this), and the cached tensors are keyed
by the archive's content, so a copy of the archive elsewhere reuses them and a changed one replaces them.
"""

from __future__ import annotations

import functools
import tarfile
from pathlib import Path, PurePosixPath

from nni_nas_bench.data.cache import CACHE_FORMAT, hash_file, hash_parts
from nni_nas_bench.data.image_folder import TensorData, cached_tensor_data, check_classes, decode_images
from nni_nas_bench.data.registry import DatasetInfo
from nni_nas_bench.errors import ConfigError

ARCHIVE_DIR = "cifar10-jpeg"
ARCHIVE_NAME = "cifar10-jpeg.tar.gz"


def archive_candidates(root: Path) -> list[Path]:
    """Where the archive may be: ``root/cifar10-jpeg/``, directly in ``root``, or ``root`` itself."""
    if root.is_file():
        return [root]
    return [root / ARCHIVE_DIR / ARCHIVE_NAME, root / ARCHIVE_NAME]


class _ArchiveTree:
    """The ImageFolder tree inside a tar archive, read (once, lazily) only for uncached splits."""

    def __init__(self, info: DatasetInfo, archive: Path, splits: tuple[str, ...]) -> None:
        self.info = info
        self.archive = archive
        self.splits = splits

    @functools.cached_property
    def _members(self) -> tuple[list[tuple[tuple[str, ...], bool]], dict[str, bytes]]:
        """Every member's path parts and whether it is a directory, plus the bytes of candidate images.

        Bytes are kept only below a split folder at depth 0 or 1 (an optional wrapping folder), which is
        all the archive holds in the expected layout (about 60 MB for CIFAR-10).
        """
        from torchvision.datasets.folder import IMG_EXTENSIONS

        members, contents = [], {}
        with tarfile.open(self.archive, "r:*") as tar:
            for member in tar:
                parts = tuple(p for p in PurePosixPath(member.name).parts if p not in (".", "/"))
                if not parts or not (member.isdir() or member.isfile()):
                    continue
                members.append((parts, member.isdir()))
                wanted = any(part in self.splits for part in parts[:2])
                if member.isfile() and wanted and member.name.lower().endswith(IMG_EXTENSIONS):
                    handle = tar.extractfile(member)
                    if handle is not None:
                        contents["/".join(parts)] = handle.read()
        return members, contents

    @functools.cached_property
    def depth(self) -> int:
        """0 when ``train/`` is at the top of the archive, 1 when the tree is wrapped in one folder."""
        members, _ = self._members
        if any(parts[0] == "train" for parts, _ in members):
            return 0
        tops = {parts[0] for parts, _ in members}
        if len(tops) == 1 and any(len(parts) > 1 and parts[1] == "train" for parts, _ in members):
            return 1
        raise ConfigError(f"{self.archive} has no train/<class>/<image> tree at its top (or in one folder)")

    @functools.cached_property
    def class_to_idx(self) -> dict[str, int]:
        """Class folders of ``train/``, sorted as ImageFolder sorts them."""
        members, _ = self._members
        d = self.depth
        classes = sorted(
            {
                parts[d + 1]
                for parts, is_dir in members
                if parts[d] == "train" and (len(parts) > d + 2 or (is_dir and len(parts) == d + 2))
            }
        )
        check_classes(self.info, classes, f"{self.archive}:train/")
        return {name: index for index, name in enumerate(classes)}

    def decode(self, split: str) -> dict[str, object]:
        """Decode one split; image order is ImageFolder's (class, then path within the class)."""
        _, contents = self._members
        d, class_to_idx = self.depth, self.class_to_idx
        keyed = []
        for name in contents:
            parts = tuple(name.split("/"))
            if len(parts) < d + 3 or parts[d] != split:
                continue
            if parts[d + 1] not in class_to_idx:
                raise ConfigError(f"{self.archive}: {split}/{parts[d + 1]} is not a class of train/")
            keyed.append(((class_to_idx[parts[d + 1]], parts[d + 2 :]), name))
        if not keyed:
            raise ConfigError(f"{self.archive} holds no images under {split}/")
        samples = [(name, key[0]) for key, name in sorted(keyed)]
        x, y = decode_images(samples, self.info.image_size, contents)
        return {"x": x, "y": y, "classes": list(class_to_idx)}


def decode_archive(
    info: DatasetInfo, archive: Path, splits: tuple[str, ...], cache: Path
) -> dict[str, TensorData]:
    """Tensors of each split in ``archive``, decoded once (in one pass for all splits) and then cached."""
    content = hash_file(archive)
    tree = _ArchiveTree(info, archive, splits)
    out = {}
    for split in splits:
        key = hash_parts([CACHE_FORMAT, info.image_size, "tar", content, split])
        path = cache / "tensors" / f"{info.name}-{split}-jpeg-{key[:16]}.pt"
        out[split] = cached_tensor_data(path, key, functools.partial(tree.decode, split))
    return out
