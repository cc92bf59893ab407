"""What produced a result: code version and library versions, recorded in every trial's metrics."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from nni_nas_bench._version import __version__


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``<package version>+g<git sha>[.dirty]`` when run from a git checkout, else the package version.

    Results must say which code produced them; an installed (non-editable) copy only knows its version.
    """
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return __version__
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{sha.stdout.strip()}{'.dirty' if dirty else ''}"


def library_versions() -> dict[str, str]:
    """Versions of the libraries that change numbers (torch kernels, torchvision transforms, nni)."""
    import torch
    import torchvision

    versions = {"torch": torch.__version__, "torchvision": torchvision.__version__}
    try:
        import nni

        versions["nni"] = nni.__version__
    except ImportError:  # GPU benchmark machines may run without nni
        pass
    return versions

