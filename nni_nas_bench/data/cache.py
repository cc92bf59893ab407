"""Where derived data lives and how it is written so that concurrent trials never see half a file.

NNI starts many trials at once on the same machine; each may be the first to need the decoded dataset.
Everything here is written to a private temporary name and then renamed into place, which is atomic on
one file system: a reader sees either nothing or a complete file, and two writers simply race to
install identical content.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from nni_nas_bench.data.lookup import CACHE_ENV, default_cache_dir
from nni_nas_bench.errors import NasBenchError

# Bumped whenever the decoding changes, so tensors cached by an older version are not reused.
CACHE_FORMAT = 1


def resolve_cache_dir(cache_dir: str | Path | None) -> Path:
    """The cache folder to use, created if needed; an unwritable one is a clear error, not a traceback."""
    path = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NasBenchError(
            f"cannot create the dataset cache folder {path} ({exc}); pass cache_dir= or set {CACHE_ENV} "
            "to a writable folder"
        ) from exc
    return path


def hash_parts(parts: Iterable[object]) -> str:
    """A hex digest of a sequence of values, for cache keys that change when any part changes."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(repr(part).encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def hash_file(path: Path, chunk: int = 1 << 20) -> str:
    """Content hash of a file: an archive that is copied or touched keeps its key, an edited one does not."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def load_or_build_tensors(path: Path, key: str, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Return the cached dict at ``path`` if it was built from ``key``; otherwise build, save and return it.

    The key is stored inside the file as well as in its name, so a renamed or truncated file is rebuilt
    rather than trusted. Files of the same source with an older key are removed after a successful write
    so the cache does not grow every time the data changes. A cache that cannot be written only costs
    speed, so it is a warning, not an error.
    """
    if path.is_file():
        try:
            cached = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(cached, dict) and cached.get("key") == key:
                return cached
        except Exception as exc:  # any unreadable cache file is simply rebuilt
            warnings.warn(f"ignoring unreadable dataset cache {path}: {exc}", stacklevel=2)
    payload = dict(build())
    payload["key"] = key
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            torch.save(payload, tmp_name)
            os.replace(tmp_name, path)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
    except OSError as exc:
        warnings.warn(f"could not write dataset cache {path}: {exc}; decoding again next time", stacklevel=2)
        return payload
    _remove_stale_siblings(path)
    return payload


def _remove_stale_siblings(path: Path) -> None:
    """Delete cache files of the same source built from an older key (name = ``<prefix>-<key>.pt``)."""
    prefix = path.name.rsplit("-", 1)[0] + "-"
    for sibling in path.parent.glob(f"{prefix}*.pt"):
        if sibling != path and sibling.name.rsplit("-", 1)[0] + "-" == prefix:
            try:
                sibling.unlink()
            except OSError:
                pass  # another trial removed it first, or it is in use on a system that forbids unlinking
