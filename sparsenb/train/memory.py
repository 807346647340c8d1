"""Keep freed memory in the process while a run allocates very large activations (glibc malloc).

Why: a truly sparse MLP with 500,000-neuron hidden layers has activations of
``batch x 500,000`` floats, 256 MB per tensor at batch 128, and allocates tens of
them per step. glibc's ``malloc`` serves every block above its mmap threshold (at most
32 MB) with a fresh ``mmap`` and returns it to the kernel with ``munmap`` at ``free``; the
heap is also trimmed whenever more than the trim threshold is free at its top. Every
first touch of such memory is then a page fault in which the kernel zeroes a 4 KiB
page, about 65,000 of them per 256 MB tensor. In the 1,000,000-neuron run of
``notebooks/06_truly_sparse.ipynb`` (``--profile scale``) that is about 40 % of the time.

:func:`keep_freed_memory` turns both off for the duration of a ``with`` block
(``mallopt(M_MMAP_MAX, 0)``: every block comes from the heap; ``M_TRIM_THRESHOLD``:
the heap is not trimmed), so from the second step on the same memory is reused and no
page is faulted in again. The price: the process keeps the peak of the block's
memory until the block ends; then the settings are reset and ``malloc_trim(0)`` hands
the free memory back. Outside glibc (macOS, Windows, musl) it does nothing.
Numerics are unchanged: only where memory comes from changes.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import platform
from typing import Iterator

__all__ = ["keep_freed_memory", "glibc_malloc_available"]

# mallopt parameter numbers from glibc's <malloc.h>
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
# what the settings are reset to afterwards: glibc's default block count, and the thresholds at the
# ceiling of its adaptive rule (setting any of them by hand turns the adaptation off for good), which
# is where a process that has freed large tensors ends up anyway
_RESET = ((M_MMAP_MAX, 65536), (M_MMAP_THRESHOLD, 32 * 2**20), (M_TRIM_THRESHOLD, 64 * 2**20))
_NEVER_TRIM = 2**31 - 1  # the largest value mallopt takes (an int)


def _libc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def glibc_malloc_available() -> bool:
    """True if this process uses glibc's malloc, so :func:`keep_freed_memory` has an effect."""
    return _libc() is not None


@contextlib.contextmanager
def keep_freed_memory(enabled: bool = True) -> Iterator[bool]:
    """Within the block, freed memory stays in the process and is reused without page faults.

    Yields True if the allocator settings were changed (glibc and ``enabled``), else False.
    Process-wide while the block runs (all threads allocate from the same malloc).
    """
    libc = _libc() if enabled else None
    if libc is None:
        yield False
        return
    ok = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, _NEVER_TRIM) == 1
    try:
        yield ok
    finally:
        for param, value in _RESET:
            libc.mallopt(param, value)
        libc.malloc_trim(0)
