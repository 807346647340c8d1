"""Large depthwise kernels, square or decomposed, as in SLaK.

Liu, Chen, Chen, Chen, Xiao, Wu, Kärkkäinen, Pechenizkiy, Mocanu, Wang (2023),
"More ConvNets in the 2020s: Scaling up Kernels Beyond 51x51 using Sparsity", ICLR.

SLaK's kernel decomposition (paper, Sec. 4.1, "Decomposing a large kernel into two
rectangular, parallel kernels"): a depthwise ``M x M`` kernel is replaced by the sum of an
``M x N`` and an ``N x M`` depthwise kernel plus a small ``N x N`` one (N = 5), each followed by
its own batch norm::

    y = BN_1(W_{MxN} * x) + BN_2(W_{NxM} * x) + BN_3(W_{NxN} * x)        (* = depthwise conv)

The dense large-kernel baseline (RepLKNet-style, Ding et al. 2022) is one square ``M x M``
kernel plus the parallel small ``N x N`` kernel, each with batch norm:
``y = BN_1(W_{MxM} * x) + BN_3(W_{NxN} * x)``. With ``M == N`` (e.g. ConvNeXt's 7x7) there is
only the one branch ``BN(W_{MxM} * x)``.

All convolutions are depthwise (``groups = channels``), have no bias and "same" padding, so a
block maps ``(B, C, H, W)`` to ``(B, C, H, W)`` for any ``H, W`` (a kernel may be larger than
the feature map: it then sees the whole map). The weights are ordinary ``nn.Conv2d`` weights,
so :class:`sparsenb.Masking` masks them like any other conv (mask 1 = kept; pruned weights are
exactly zero after every optimizer step).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["ConvBN", "LargeKernelDW"]


def _check_odd(name: str, k: int) -> None:
    if not isinstance(k, int) or k < 1 or k % 2 == 0:
        raise ValueError(f"{name} must be an odd positive int (same padding needs a centre), got {k!r}; "
                         f"use e.g. 7, 13 or 31")


class ConvBN(nn.Sequential):
    """Depthwise ``kh x kw`` conv (no bias, same padding) followed by ``BatchNorm2d``.

    Input and output ``(B, channels, H, W)``. Submodules ``conv`` and ``bn``.
    """

    def __init__(self, channels: int, kernel: tuple[int, int]):
        kh, kw = kernel
        _check_odd("kernel height", kh)
        _check_odd("kernel width", kw)
        super().__init__()
        self.add_module("conv", nn.Conv2d(channels, channels, (kh, kw), padding=(kh // 2, kw // 2),
                                          groups=channels, bias=False))
        self.add_module("bn", nn.BatchNorm2d(channels))


class LargeKernelDW(nn.Module):
    """Depthwise large-kernel conv: square (dense baseline) or SLaK-decomposed (see module doc).

    Args:
        channels: C, input = output channels.
        kernel: M, the large kernel size (odd).
        small_kernel: N, the small kernel size (odd, paper: 5). Ignored if ``kernel <= small_kernel``.
        decompose: ``True`` = SLaK: ``M x N + N x M + N x N``; ``False`` = ``M x M (+ N x N)``.

    Shapes: ``(B, C, H, W) -> (B, C, H, W)``. Branches are the submodules ``square``,
    ``horizontal`` (``N x M``, i.e. wide), ``vertical`` (``M x N``, tall) and ``small``;
    :attr:`branches` lists the ones present.
    """

    def __init__(self, channels: int, kernel: int, small_kernel: int = 5, decompose: bool = False):
        super().__init__()
        _check_odd("kernel", kernel)
        _check_odd("small_kernel", small_kernel)
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.channels, self.kernel, self.small_kernel, self.decompose = channels, kernel, small_kernel, decompose
        if kernel <= small_kernel:
            self.square = ConvBN(channels, (kernel, kernel))  # one plain kernel, e.g. ConvNeXt's 7x7
        elif decompose:
            self.vertical = ConvBN(channels, (kernel, small_kernel))
            self.horizontal = ConvBN(channels, (small_kernel, kernel))
            self.small = ConvBN(channels, (small_kernel, small_kernel))
        else:
            self.square = ConvBN(channels, (kernel, kernel))
            self.small = ConvBN(channels, (small_kernel, small_kernel))

    @property
    def branches(self) -> list[ConvBN]:
        return [getattr(self, n) for n in ("square", "vertical", "horizontal", "small") if hasattr(self, n)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"LargeKernelDW({self.channels} channels) needs (B, {self.channels}, H, W), "
                             f"got {tuple(x.shape)}")
        out = None
        for branch in self.branches:
            y = branch(x)
            out = y if out is None else out + y
        return out

    def extra_repr(self) -> str:
        kind = "decomposed" if self.decompose and self.kernel > self.small_kernel else "square"
        return f"channels={self.channels}, kernel={self.kernel}, small_kernel={self.small_kernel}, {kind}"
