"""Worker processes that compute side by side: one thread each, for every thread pool in the process.

A pool of N worker processes on N cores must not let each worker start its own threads: torch's intra-op
threads, and the BLAS/OpenMP pools numpy, scikit-learn and torch load (OpenBLAS, MKL, libgomp), which
torch's setting does not reach. Unpinned OpenBLAS threads made a tabular WeakNAS run 4x slower on an idle
2-core machine and ~47x on a busy one. :func:`pin_threads` is the pool initializer that pins all of them.
"""

from __future__ import annotations

from typing import Any

_LIMITS: list[Any] = []  # this process's threadpoolctl limit, kept alive for the worker's life


def pin_threads() -> None:
    """One thread for torch and for every BLAS/OpenMP pool of this process (threadpoolctl); kept until exit."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    _LIMITS.append(threadpool_limits(limits=1))


def unpin_threads() -> None:
    """Undo the last :func:`pin_threads`'s BLAS/OpenMP limit (tests; a worker keeps its limit until it exits)."""
    _LIMITS.pop().restore_original_limits()
