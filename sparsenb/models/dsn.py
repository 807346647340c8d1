"""The DSN model: a 1-D CNN whose wide kernels are split into groups with different receptive fields.

Xiao, Wu, Zhang, Liu, Pechenizkiy, Mocanu, Mocanu (2022), "Dynamic Sparse Network for Time
Series Classification: Learning What to 'See'", NeurIPS 2022 (official code: QiaoXiao7282/DSN).

Architecture (paper Sec. 3 / Fig. 2; defaults of the official code):

* ``depth`` (4) blocks, each ``[1x1 bottleneck conv] -> windowed wide conv -> BatchNorm -> ReLU``.
  The bottleneck (``C_in -> width``, no bias) is skipped in the first block when the input
  has one channel, as in InceptionTime.
* The wide conv has kernel size ``K`` (39) and ``groups * width`` output channels (3 x 47).
  Its output channels are split into ``groups`` (3) consecutive groups; group ``g`` (0-based)
  may only use the taps ``0 .. w_g - 1`` of the kernel with ``w_g = (g + 1) * (K // groups)``,
  i.e. the first 13, 26 and 39 taps (the windows are *left-aligned* in the kernel, as in the
  official code, which adds its priority to ``x[:, :, range(w_g)]``). That set of
  ``(out, in, tap)`` positions is the group's *region*; weights outside it are always zero.
* Padding of the wide conv: ``"zero"`` pads ``((K-1)//2, K//2)`` zeros (the official code's
  ``pad_zero=True``, its setting for the UCR 2018 archive), ``"replicate"`` repeats the last
  value ``K-1`` times on the right (``pad_zero=False``). The output keeps the input length.
* Head: ``AdaptiveAvgPool1d(adaptive_size)`` (50) -> 1x1 conv to ``num_classes`` (no bias)
  -> BatchNorm -> global average pooling -> logits ``(N, num_classes)``.

Input ``(N, C_in, L)`` float; output ``(N, num_classes)`` logits (the paper's log-softmax +
NLL equals cross-entropy on these logits).

Which weights are sparse: only the wide convs (the official code keeps every conv whose
kernel is shorter than 5 taps dense: bottlenecks and head). The region of every wide conv
is :meth:`WindowedConv1d.region`; the masks of :mod:`sparsenb.methods.dsn` live inside it.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["WindowedConv1d", "DSNBlock", "DSNNet", "group_windows", "windowed_convs", "build_dsn"]


def group_windows(kernel_size: int, groups: int) -> list[int]:
    """Taps each group may use: ``[(g + 1) * (kernel_size // groups) for g in range(groups)]``.

    ``group_windows(39, 3) == [13, 26, 39]`` (the paper's receptive fields).
    """
    if groups < 1 or kernel_size < groups:
        raise ValueError(f"need 1 <= groups <= kernel_size, got groups={groups}, kernel_size={kernel_size}")
    step = kernel_size // groups
    return [step * (g + 1) for g in range(groups)]


class WindowedConv1d(nn.Module):
    """A wide 1-D convolution whose output-channel groups may only use the first ``w_g`` taps.

    Args:
        in_channels: input channels ``C_in``.
        group_channels: output channels per group; ``out_channels = groups * group_channels``.
        kernel_size: ``K`` (paper: 39).
        groups: number of receptive-field groups (paper: 3); not PyTorch's grouped conv.
        padding: ``"zero"`` (centred zeros) or ``"replicate"`` (right side), see the module docstring.

    ``weight``: ``(groups * group_channels, C_in, K)`` (held by ``self.conv``, an ``nn.Conv1d``
    without bias, so :class:`sparsenb.Masking` masks it as ``<name>.conv.weight``).
    Input ``(N, C_in, L)`` -> output ``(N, groups * group_channels, L)``.

    The module itself does not restrict the weights: keeping the taps outside the region
    zero is the job of a mask that lies inside :meth:`region` (:class:`sparsenb.methods.dsn.DSN`).
    Without a mask every tap of every group trains: the "dense, same architecture" baseline.
    """

    def __init__(self, in_channels: int, group_channels: int, kernel_size: int = 39, groups: int = 3,
                 padding: str = "zero"):
        super().__init__()
        if padding not in ("zero", "replicate"):
            raise ValueError(f"padding must be 'zero' or 'replicate', got {padding!r}")
        if group_channels < 1 or in_channels < 1:
            raise ValueError(f"need in_channels >= 1 and group_channels >= 1, got {in_channels}, {group_channels}")
        self.in_channels, self.group_channels, self.groups = in_channels, group_channels, groups
        self.kernel_size, self.padding = kernel_size, padding
        self.windows = group_windows(kernel_size, groups)
        self.conv = nn.Conv1d(in_channels, groups * group_channels, kernel_size, bias=False)

    @property
    def out_channels(self) -> int:
        return self.groups * self.group_channels

    @property
    def weight(self) -> nn.Parameter:
        return self.conv.weight

    def group_slice(self, g: int) -> slice:
        """Output channels of group ``g``: ``g * group_channels : (g + 1) * group_channels``."""
        return slice(g * self.group_channels, (g + 1) * self.group_channels)

    def region(self, group: int | None = None) -> torch.Tensor:
        """Bool ``(out, C_in, K)`` on the weight's device: True where group ``group`` (all if None) may have weights."""
        r = torch.zeros(self.weight.shape, dtype=torch.bool, device=self.weight.device)
        for g in range(self.groups) if group is None else [group]:
            r[self.group_slice(g), :, : self.windows[g]] = True
        return r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size
        if self.padding == "zero":
            x = F.pad(x, ((k - 1) // 2, k // 2))
        else:
            x = F.pad(x, (0, k - 1), mode="replicate")
        return self.conv(x)

    def extra_repr(self) -> str:
        return f"windows={self.windows}, group_channels={self.group_channels}, padding={self.padding!r}"


class DSNBlock(nn.Module):
    """``[1x1 bottleneck] -> WindowedConv1d -> BatchNorm1d -> ReLU``; ``(N, C_in, L) -> (N, groups*width, L)``."""

    def __init__(self, in_channels: int, width: int, kernel_size: int, groups: int, padding: str,
                 bottleneck: bool):
        super().__init__()
        self.bottleneck = nn.Conv1d(in_channels, width, 1, bias=False) if bottleneck else nn.Identity()
        self.wide = WindowedConv1d(width if bottleneck else in_channels, width, kernel_size, groups, padding)
        self.bn = nn.BatchNorm1d(self.wide.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.wide(self.bottleneck(x))))


class DSNNet(nn.Module):
    """The DSN / SCNN network of the paper's code (see the module docstring).

    Args:
        in_channels: channels of the series (1 for univariate UCR sets).
        num_classes: classes.
        width: output channels per group (paper: 47); a block outputs ``groups * width``.
        depth: number of blocks (paper: 4).
        kernel_size: wide kernel length (paper: 39).
        groups: receptive-field groups (paper: 3).
        padding: ``"zero"`` or ``"replicate"``.
        adaptive_size: length of the head's adaptive average pooling (paper: 50).
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 47, depth: int = 4,
                 kernel_size: int = 39, groups: int = 3, padding: str = "zero", adaptive_size: int = 50):
        super().__init__()
        if depth < 1 or num_classes < 2:
            raise ValueError(f"need depth >= 1 and num_classes >= 2, got depth={depth}, num_classes={num_classes}")
        blocks = []
        for d in range(depth):
            c_in = in_channels if d == 0 else groups * width
            blocks.append(DSNBlock(c_in, width, kernel_size, groups, padding, bottleneck=c_in > 1))
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool1d(adaptive_size)
        self.head = nn.Conv1d(groups * width, num_classes, 1, bias=False)
        self.head_bn = nn.BatchNorm1d(num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"DSNNet expects (N, channels, length), got shape {tuple(x.shape)}")
        h = self.head_bn(self.head(self.pool(self.blocks(x))))
        return h.mean(-1)


def windowed_convs(model: nn.Module) -> dict[str, WindowedConv1d]:
    """``{weight name: module}`` of every :class:`WindowedConv1d` in ``model``, e.g. ``"blocks.0.wide.conv.weight"``."""
    return {f"{name}.conv.weight" if name else "conv.weight": m
            for name, m in model.named_modules() if isinstance(m, WindowedConv1d)}


def build_dsn(input_shape: Sequence[int], num_classes: int, **kwargs) -> DSNNet:
    """A :class:`DSNNet` for inputs of shape ``(channels, length)``; ``kwargs`` go to DSNNet."""
    if len(input_shape) != 2:
        raise ValueError(f"DSN needs inputs of shape (channels, length), got {tuple(input_shape)}; "
                         f"use a time-series set such as 'ucr:GunPoint'")
    return DSNNet(int(input_shape[0]), num_classes, **kwargs)
