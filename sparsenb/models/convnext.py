"""A small ConvNeXt-style network with a choice of depthwise kernel: 7x7, large square, or SLaK.

ConvNeXt: Liu, Mao, Wu, Feichtenhofer, Darrell, Xie (2022), "A ConvNet for the 2020s", CVPR.
SLaK: Liu et al. (2023), "More ConvNets in the 2020s: Scaling up Kernels Beyond 51x51 using
Sparsity", ICLR (see :mod:`sparsenb.layers.large_kernel` and :mod:`sparsenb.methods.slak`).

Architecture (scaled down for small images; ``S`` stages):

* stem: ``Conv2d(in, d_0, 2, stride 2)`` + channels-first LayerNorm (ConvNeXt uses a 4x4
  patchify stem on 224x224 images; a stride-2 stem keeps a 16x16 map for 32x32 inputs);
* stage ``s``: ``depths[s]`` blocks of width ``d_s``; between stages LayerNorm +
  ``Conv2d(d_s, d_{s+1}, 2, stride 2)``;
* block (ConvNeXt, with SLaK's conv+BN large-kernel module)::

      x + gamma * Linear_{4d->d}(GELU(Linear_{d->4d}(LN(LargeKernelDW(x)))))

  ``gamma`` is the layer scale (per channel, init ``layer_scale``); the two pointwise layers
  are ``nn.Linear`` on channels-last tensors, as in ConvNeXt;
* head: global average pool -> LayerNorm -> ``Linear(d_{S-1}, classes)``.

Widths are ``int(d_s * width)`` (SLaK's "sparse groups" widen the net by 1.3 and then train it
sparse). Input ``(B, C_in, H, W)`` with any ``H, W >= 2**S``; output ``(B, classes)`` logits.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.large_kernel import LargeKernelDW

__all__ = ["LayerNorm2d", "ConvNeXtBlock", "ConvNeXtSmall", "VARIANTS", "build_variant"]

VARIANTS = ("dense7", "dense_large", "slak")
"""``dense7``: ConvNeXt's 7x7 kernels, dense. ``dense_large``: the large square kernels (+ the
small parallel kernel), dense. ``slak``: decomposed large kernels, widened, trained sparse."""


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel dimension of ``(B, C, H, W)`` (ConvNeXt's channels_first LN)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """One block: large-kernel depthwise conv -> LN -> Linear(4x) -> GELU -> Linear -> layer scale, residual.

    ``(B, dim, H, W) -> (B, dim, H, W)``.
    """

    def __init__(self, dim: int, kernel: int, small_kernel: int = 5, decompose: bool = False,
                 layer_scale: float = 1e-6):
        super().__init__()
        self.large_kernel = LargeKernelDW(dim, kernel, small_kernel, decompose)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.large_kernel(x).permute(0, 2, 3, 1)                  # (B, H, W, C)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y)))) * self.gamma
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtSmall(nn.Module):
    """Small ConvNeXt (see the module docstring).

    Args:
        in_channels: image channels (3 for CIFAR, 1 for MNIST).
        num_classes: number of classes.
        dims: base width of each stage, before ``width``.
        depths: blocks per stage.
        kernels: depthwise kernel size of each stage (odd).
        small_kernel: N of the small / decomposition kernel (paper: 5).
        decompose: SLaK decomposition ``M x N + N x M + N x N`` instead of ``M x M + N x N``.
        width: width multiplier (SLaK: 1.3).
        layer_scale: initial layer-scale value (ConvNeXt: 1e-6).
    """

    def __init__(self, in_channels: int, num_classes: int, dims: Sequence[int] = (32, 64, 128),
                 depths: Sequence[int] = (1, 1, 1), kernels: Sequence[int] = (7, 7, 7), small_kernel: int = 5,
                 decompose: bool = False, width: float = 1.0, layer_scale: float = 1e-6):
        super().__init__()
        if not len(dims) == len(depths) == len(kernels) or not dims:
            raise ValueError(f"dims, depths and kernels need one entry per stage; got {list(dims)}, "
                             f"{list(depths)}, {list(kernels)}")
        if width <= 0:
            raise ValueError(f"width must be > 0, got {width}")
        d = [max(1, int(x * width)) for x in dims]
        self.dims, self.kernels = d, list(kernels)
        self.downsample = nn.ModuleList([nn.Sequential(nn.Conv2d(in_channels, d[0], 2, stride=2), LayerNorm2d(d[0]))])
        for a, b in zip(d[:-1], d[1:]):
            self.downsample.append(nn.Sequential(LayerNorm2d(a), nn.Conv2d(a, b, 2, stride=2)))
        self.stages = nn.ModuleList([
            nn.Sequential(*[ConvNeXtBlock(dim, k, small_kernel, decompose, layer_scale) for _ in range(n)])
            for dim, n, k in zip(d, depths, kernels)])
        self.norm = nn.LayerNorm(d[-1], eps=1e-6)
        self.head = nn.Linear(d[-1], num_classes)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        """ConvNeXt's init: truncated normal (std 0.02) weights, zero biases for Conv/Linear."""
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor, stage: int = -1) -> torch.Tensor:
        """Feature map ``(B, d_s, H_s, W_s)`` at the output of stage ``stage`` (default: the last)."""
        if x.ndim != 4:
            raise ValueError(f"ConvNeXtSmall needs image batches (B, C, H, W), got shape {tuple(x.shape)}")
        last = stage % len(self.stages)
        for i in range(last + 1):
            x = self.stages[i](self.downsample[i](x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.features(x).mean((-2, -1))))


def build_variant(variant: str, input_shape: Sequence[int], num_classes: int, dims: Sequence[int],
                  depths: Sequence[int], large_kernels: Sequence[int], small_kernel: int = 5,
                  base_kernel: int = 7, width: float = 1.3, layer_scale: float = 1e-6) -> ConvNeXtSmall:
    """The three networks the SLaK notebook compares, from one set of settings.

    * ``"dense7"``: kernels ``base_kernel`` in every stage, width 1;
    * ``"dense_large"``: square ``large_kernels`` (+ the small ``small_kernel`` branch), width 1;
    * ``"slak"``: decomposed ``large_kernels`` (``M x N + N x M + N x N``), width ``width``
      (to be trained sparse by :class:`sparsenb.methods.slak.SLaK`).

    ``input_shape`` is one example's ``(C, H, W)``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    if len(input_shape) != 3:
        raise ValueError(f"ConvNeXtSmall needs image data (C, H, W), got input_shape {tuple(input_shape)}")
    common = dict(in_channels=input_shape[0], num_classes=num_classes, dims=dims, depths=depths,
                  small_kernel=small_kernel, layer_scale=layer_scale)
    if variant == "dense7":
        return ConvNeXtSmall(kernels=[base_kernel] * len(dims), **common)
    if variant == "dense_large":
        return ConvNeXtSmall(kernels=large_kernels, decompose=False, **common)
    return ConvNeXtSmall(kernels=large_kernels, decompose=True, width=width, **common)
