"""The one "dataset not found" message.

A trial that dies on a remote NNI worker leaves only its last error behind, so a missing dataset must
be reported once, with every place that was looked at and every way to provide the data, rather than
as the first library error met on the way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from nni_nas_bench.data.registry import DatasetInfo
from nni_nas_bench.errors import DatasetNotFoundError

DATA_ROOT_ENV = "NNB_DATA_ROOT"
CACHE_ENV = "NNB_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$NNB_CACHE_DIR`` if set, else ``~/.cache/nni_nas_bench``: outside the repository and the data (here,
    not in ``cache``, so that torch-free readers such as the NB201 table find it without importing torch)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "nni_nas_bench"


def default_data_root() -> Path:
    """``$NNB_DATA_ROOT`` or ``~/.cache/nni_nas_bench/data``: the data root of a trial run without
    ``--data-root`` (where ``download`` puts datasets), and the folder the NAS-Bench-201 tables are looked
    for under."""
    env = os.environ.get(DATA_ROOT_ENV)
    return Path(env) if env else Path.home() / ".cache" / "nni_nas_bench" / "data"


@dataclass
class LookupLog:
    """Every place a loader looked at, with why it was not used."""

    dataset: str
    root: Path
    entries: list[str] = field(default_factory=list)

    def note(self, what: str, why: str) -> None:
        """Record one candidate and the reason it was rejected."""
        self.entries.append(f"{what}: {why}")

    def error(self, how_to: list[str]) -> DatasetNotFoundError:
        """The single error raised when no candidate worked: where we looked, then how to fix it.

        One line (a trial's log and ``nas-bench`` print errors as one ``error:`` line that tools grep for);
        the places and the fixes are separated by ``;`` and ``|``.
        """
        looked = "; ".join(self.entries) if self.entries else "nothing"
        fixes = " | ".join(line.rstrip(".") for line in how_to)
        return DatasetNotFoundError(
            f"dataset {self.dataset!r} not found under data root {str(self.root)!r} (looked at: {looked}). "
            f"Provide it: {fixes}"
        )


def tree_is_complete(log: LookupLog, tree: Path, splits: tuple[str, ...]) -> bool:
    """True when every split folder of an ImageFolder tree exists; otherwise note each one in ``log``."""
    if all((tree / split).is_dir() for split in splits):
        return True
    for split in splits:
        found = (tree / split).is_dir()
        log.note(f"{tree / split} (ImageFolder {split} folder)", "found" if found else "missing")
    return False


def folder_tree_hint(info: DatasetInfo, root: Path) -> str:
    """How to lay out an ImageFolder tree for ``info`` (shared by the 32-px and 224-px messages)."""
    return (
        f"place an ImageFolder tree at {root / info.folder_name}/{{train,test}}/<class>/<image> "
        "(class index = sorted class folder names)"
    )


def data_root_hint() -> str:
    """How to point the benchmark at a folder that already holds the data."""
    return f"pass the folder that holds the data with --data-root (or set {DATA_ROOT_ENV})"
