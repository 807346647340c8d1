"""Batch data augmentation that runs on the training device and resumes exactly.

:class:`RandomCropFlip` is the standard CIFAR augmentation (He et al., 2016): pad each image
by ``padding`` pixels (zeros), take a random ``H x W`` crop and flip it horizontally with
probability 1/2. It acts on a whole batch ``(B, C, H, W)`` at once, draws its randomness from
its own CPU ``generator`` (saved in :class:`sparsenb.train.Trainer` checkpoints), and is
passed to the Trainer as ``augment=``; test batches are never augmented.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.seeding import generator as derived_generator

__all__ = ["RandomCropFlip"]


class RandomCropFlip:
    """Random ``padding``-pixel translation + horizontal flip of image batches (B, C, H, W)."""

    def __init__(self, padding: int = 4, flip: bool = True, seed: int = 0):
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        self.padding = padding
        self.flip = flip
        self.generator = derived_generator(seed, "augment")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"RandomCropFlip needs image batches (B, C, H, W), got shape {tuple(x.shape)}")
        b, _, h, w = x.shape
        p = self.padding
        dy = torch.randint(0, 2 * p + 1, (b,), generator=self.generator)
        dx = torch.randint(0, 2 * p + 1, (b,), generator=self.generator)
        flip = torch.rand(b, generator=self.generator) < 0.5 if self.flip else torch.zeros(b, dtype=torch.bool)
        padded = F.pad(x, (p, p, p, p))
        rows = (dy[:, None] + torch.arange(h)).to(x.device)                   # (B, H)
        cols = dx[:, None] + torch.arange(w)                                   # (B, W)
        cols = torch.where(flip[:, None], cols.flip(1), cols).to(x.device)
        idx_b = torch.arange(b, device=x.device)[:, None, None]
        out = padded.permute(0, 2, 3, 1)[idx_b, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
        return out.permute(0, 3, 1, 2).contiguous()
