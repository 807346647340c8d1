"""Wall-clock timing of a forward pass: what a sparsity pattern saves on this machine, measured.

FLOP counts (:mod:`sparsenb.train.flops`) say what an ideal kernel would save; the time says what
the kernels at hand do. A masked weight (zeros in a dense tensor) costs as much as a dense one, a
channel-pruned net compacted into smaller dense layers (:func:`sparsenb.core.pruning.compact_mlp`)
is simply a smaller dense net, and a CSR weight (:func:`csr_forward`) pays its index overhead.

:func:`time_forward` runs ``fn`` a few times to warm up, then ``repeats`` timed rounds, and
reports the median (robust to another process taking the CPU for a moment) and the minimum.
:func:`time_interleaved` times several functions round-robin (one call of each per round), so that
a change of the machine's load during the measurement hits all of them alike instead of whichever
happened to be timed at that moment: use it to compare.
"""
from __future__ import annotations

import random
import statistics
import time
import warnings
from typing import Callable

import torch
from torch import nn

__all__ = ["time_forward", "time_interleaved", "csr_forward"]


@torch.no_grad()
def time_forward(fn: Callable[[], object], repeats: int = 30, warmup: int = 5, inner: int = 1) -> dict[str, float]:
    """Median and minimum wall time of ``fn()`` in milliseconds.

    Args:
        fn: the call to time (e.g. ``lambda: model(x)``), run under ``torch.no_grad``.
        repeats: timed rounds; each round calls ``fn`` ``inner`` times and counts the mean.
        warmup: untimed calls first (allocator, caches, lazy init).

    Returns:
        ``{"median_ms", "min_ms", "repeats"}``.
    """
    if repeats < 1 or inner < 1:
        raise ValueError(f"repeats and inner must be >= 1, got {repeats}, {inner}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner * 1e3)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "repeats": repeats}


@torch.no_grad()
def time_interleaved(fns: dict[str, Callable[[], object]], repeats: int = 30, warmup: int = 3) -> dict[str, dict[str, float]]:
    """Median and minimum wall time (ms) of each ``fns[name]()``, timed round-robin: every round calls
    each function once, in an order shuffled per round (seeded, so no function always follows the same
    one and inherits its cache state). Returns ``{name: {"median_ms", "min_ms", "repeats"}}``."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    order, rng = list(fns), random.Random(0)
    for _ in range(repeats):
        rng.shuffle(order)
        for name in order:
            fn = fns[name]
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: {"median_ms": statistics.median(t), "min_ms": min(t), "repeats": repeats} for name, t in times.items()}


def csr_forward(model: nn.Sequential) -> Callable[[torch.Tensor], torch.Tensor]:
    """A forward function of an MLP (``nn.Sequential`` of Linear and elementwise modules) whose Linear
    weights are stored in CSR (``torch.sparse_csr``): ``y = (W_csr @ x^T)^T + b``, exact zeros dropped.
    Its outputs equal the model's (up to float rounding); it exists only to time sparse kernels."""
    layers = []
    for mod in model:
        if isinstance(mod, nn.Linear):
            w = mod.weight.detach()
            with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
                warnings.simplefilter("ignore", UserWarning)
                csr = w.to_sparse_csr()
            layers.append(("csr", csr, None if mod.bias is None else mod.bias.detach()))
        else:
            layers.append(("module", mod, None))

    def forward(x: torch.Tensor) -> torch.Tensor:
        for kind, op, bias in layers:
            if kind == "csr":
                x = torch.sparse.mm(op, x.t()).t()
                if bias is not None:
                    x = x + bias
            else:
                x = op(x)
        return x

    return forward
