"""Transposed copies for the truly sparse layer: torch's (one thread) or a compiled kernel (all cores).

The CSR products of :class:`~sparsenb.layers.TrulySparseLinear` want their dense operand as a
row-major ``(features, N)`` matrix, so a row-major ``(N, features)`` input or upstream gradient
is copied transposed first. Eager torch (2.13, CPU) makes such a whole-matrix transposed copy
on one thread. At a model's edge (a row-major input that needs its gradient, a loss on the
output) a step makes three of them, the largest part of the step that the second core does
not shorten (``benchmarks/README.md``, "Two contexts").

``transposed_copy(t, compiled=True)`` makes the copy with a kernel that ``torch.compile``
generates once per process (Inductor: vectorised C++ with an OpenMP loop over rows, one
kernel for every shape, ``dynamic=True``). For a ``(128, 4096)`` float32 matrix on a 2-core
AMD EPYC: 0.11 ms at 2 threads and 0.18-0.28 ms at 1, against 0.29 ms for torch's copy at
either count. Why this compiler and not another package: Inductor ships with torch (no new
dependency), and its kernels run on torch's own OpenMP runtime and thread count. A second
OpenMP runtime in the process (Numba's) made a later ``fork()`` hang or kill the child
(``benchmarks/README.md``). The price, and why it is opt-in:

* a C++ compiler at first use, and 5-15 s to compile (Inductor caches the kernel on disk,
  so later processes load it in about a second);
* about 50 us per call, so matrices under :data:`MIN_COMPILED_NUMEL` elements are copied by
  torch, as are CUDA tensors (a GPU transposes in parallel anyway).

If compiling fails (no compiler, say), a warning names the reason once, and torch's copy is
used for the rest of the process. Both paths return the same values, bit for bit.
"""
from __future__ import annotations

import warnings
from typing import Callable

import torch

__all__ = ["transposed_copy", "MIN_COMPILED_NUMEL", "compiled_transpose_failure"]

# below ~1 MB of float32 the compiled call's overhead (~50 us) costs more than the parallel copy saves
MIN_COMPILED_NUMEL = 2**18

_kernel: Callable[[torch.Tensor], torch.Tensor] | None = None
_failure: str | None = None


def _transpose(t: torch.Tensor) -> torch.Tensor:
    return t.t().contiguous()


def compiled_transpose_failure() -> str | None:
    """Why the compiled kernel could not be built in this process, or ``None`` if it could (or was not tried)."""
    return _failure


def transposed_copy(t: torch.Tensor, compiled: bool = False) -> torch.Tensor:
    """``t.t()`` of a 2-D ``(a, b)`` tensor as a contiguous ``(b, a)`` tensor.

    No copy if ``t.t()`` is contiguous already (``t`` column-major). Otherwise torch's copy, or,
    with ``compiled=True`` for a CPU tensor of at least :data:`MIN_COMPILED_NUMEL` elements, the
    compiled parallel kernel (see the module docstring). Values are the same bits either way.
    """
    global _kernel, _failure
    tt = t.t()
    if tt.is_contiguous():
        return tt
    if compiled and _failure is None and t.device.type == "cpu" and t.numel() >= MIN_COMPILED_NUMEL:
        try:
            if _kernel is None:
                _kernel = torch.compile(_transpose, dynamic=True, fullgraph=True)
            return _kernel(t)
        except Exception as e:  # noqa: BLE001 - no C++ compiler, or Inductor cannot build on this machine
            _failure = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:300]}"
            warnings.warn(f"compiled transposes are off for this process, torch's serial copy is used instead: "
                          f"the kernel could not be compiled ({_failure}). Install a C++ compiler (g++ or clang) "
                          f"for torch.compile, or pass compiled_transposes=False.", RuntimeWarning, stacklevel=2)
    return tt.contiguous()
