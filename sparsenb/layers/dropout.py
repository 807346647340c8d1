"""Dropout whose CPU mask costs one 64-bit random draw per four elements.

Dropout (Srivastava et al. 2014, JMLR 15:1929) multiplies each element by
``keep / (1 - p)`` with ``keep ~ Bernoulli(1 - p)``. On CPUs, torch draws that
mask with ``bernoulli_``. On the 2-core AMD EPYC of sparsenb's records it ran
serially, at about 10 ns per element: dropout on a ``(128, 10000)`` activation
took 12.6 ms at 1 and at 2 threads. That is more than the truly sparse layer that
produced the activation, and 45 % of a training step of the truly sparse SET-MLP
784-10000-10000-10000-10 (three hidden layers with dropout). torch has a parallel
MKL path for ``bernoulli_``; the torch sources we read take it only on Intel CPUs.

:func:`fast_dropout` draws 16 random bits per element instead: one ``random_``
over ``int64`` words (torch's CPU generator, so ``torch.manual_seed`` and
saved RNG states reproduce it), viewed as ``int16`` lanes. An element is
dropped when its lane is below ``k - 2**15`` with ``k = round(p * 2**16)``, so
the drop probability is ``p`` rounded to a multiple of ``2**-16`` (0.3 becomes
0.300003), and kept elements are scaled by ``1 / (1 - k / 2**16)``, which
keeps the expectation exact. The mask depends only on the generator's state,
not on the CPU or the thread count. On CUDA, :func:`fast_dropout` is ``F.dropout``
(a fused kernel).

The mask is drawn in the input's memory order: a column-major ``(N, F)`` input
(the layout :class:`~sparsenb.layers.TrulySparseLinear` returns) gets the mask
that a row-major ``(F, N)`` input would, transposed. As with ``F.dropout``, autograd
keeps the float mask for the backward, which multiplies the gradient by it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_LANES = 2 ** 16


def _check_p(p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")


def _drop_threshold(p: float) -> tuple[int, float]:
    """``(k, scale)``: drop a 16-bit lane below ``k - 2**15``; scale kept values by ``scale``."""
    k = round(p * _LANES)
    return k, (_LANES / (_LANES - k) if k < _LANES else 0.0)


def dropout_mask(x: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Float mask shaped and laid out like ``x``: 0 where an element is dropped, ``scale`` where kept.

    ``P(0) = k / 2**16`` with ``k = round(p * 2**16)``, ``scale = 1 / (1 - k / 2**16)``.
    ``x`` must be contiguous, or a column-major 2-D tensor; other layouts raise.
    """
    if x.is_contiguous():
        shape, transpose = x.shape, False
    elif x.dim() == 2 and x.t().is_contiguous():
        shape, transpose = (x.shape[1], x.shape[0]), True
    else:
        raise ValueError(f"dropout_mask needs a contiguous (or 2-D column-major) tensor, got strides "
                         f"{x.stride()} for shape {tuple(x.shape)}; call .contiguous() first")
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device)
    words.random_(-2 ** 63, None, generator=generator)  # every bit uniform
    k, scale = _drop_threshold(p)
    # Lanes are integers in [-2**15, 2**15): lane - (k - 2**15) + 1, clamped to [0, 1], is 1 exactly
    # when the element is kept. Float arithmetic, not a boolean mask: torch's CPU kernels that mix
    # bool and float tensors (masked_fill_, where, mul) were 25-40x slower than a float multiply here.
    mask = words.view(torch.int16)[:n].to(x.dtype)
    mask.sub_(k - _LANES // 2 - 1).clamp_(0.0, 1.0).mul_(scale)
    mask = mask.view(shape)
    return mask.t() if transpose else mask


def fast_dropout(x: torch.Tensor, p: float, training: bool = True,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Dropout with drop probability ``p`` (rounded to ``2**-16`` on CPU); identity when not training.

    Shapes: any; the output has ``x``'s shape and layout. On CUDA this is ``F.dropout``.
    """
    _check_p(p)
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, True)
    if not (x.is_contiguous() or (x.dim() == 2 and x.t().is_contiguous())):
        x = x.contiguous()
    return x * dropout_mask(x, p, generator)


class FastDropout(nn.Module):
    """:func:`fast_dropout` as a module, a drop-in for ``nn.Dropout(p)`` (see the module docstring)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        _check_p(p)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
