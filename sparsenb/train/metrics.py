"""Metrics shared by the notebooks: accuracy summaries and topology measures."""
from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["border_share", "disagreement", "mask_distance", "pairwise_mean", "ITOPTracker"]


def border_share(degree: Sequence[float], image_shape: Sequence[int], width: int = 4) -> float:
    """Fraction of first-layer connections that start at pixels within ``width`` of the image border.

    ``degree``: kept connections per input pixel, flat, row-major, ``prod(image_shape)`` long.
    A random (static) mask gives about the border's share of the area,
    ``1 - (H - 2w)(W - 2w) / (HW)`` (0.49 for 28x28, w=4); a topology that moved
    its connections onto the digit area (the centre of MNIST) gives less.
    """
    h, w = image_shape
    d = torch.as_tensor(degree, dtype=torch.float64).reshape(h, w)
    if d.sum() == 0:
        raise ValueError("the layer has no connections")
    inner = d[width:h - width, width:w - width].sum()
    return float(1 - inner / d.sum())


def disagreement(pred_a: torch.Tensor, pred_b: torch.Tensor) -> float:
    """Prediction disagreement: the fraction of examples where two models' argmax differs.

    ``pred_*``: class predictions (N,) or probabilities/logits (N, C) (argmax taken).
    The diversity measure of FreeTickets (Liu et al., ICLR 2022, Sec. 5) and Fort et al. (2019).
    """
    a = pred_a.argmax(1) if pred_a.ndim == 2 else pred_a
    b = pred_b.argmax(1) if pred_b.ndim == 2 else pred_b
    if a.shape != b.shape or a.numel() == 0:
        raise ValueError(f"predictions must have the same non-empty shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    return float((a != b).double().mean())


def mask_distance(masks_a: dict[str, torch.Tensor], masks_b: dict[str, torch.Tensor]) -> float:
    """Normalised Hamming distance between two sets of bool masks (same names and shapes).

    ``sum_l |m_a^l XOR m_b^l| / sum_l numel(m^l)``: 0 for identical topologies; two random
    masks at density d differ in about ``2 d (1 - d)`` of positions.
    """
    if masks_a.keys() != masks_b.keys():
        raise ValueError(f"mask names differ: {sorted(masks_a)} vs {sorted(masks_b)}")
    diff = total = 0
    for name, a in masks_a.items():
        b = masks_b[name]
        if a.shape != b.shape:
            raise ValueError(f"{name}: shapes differ {tuple(a.shape)} vs {tuple(b.shape)}")
        diff += int((a.bool() ^ b.bool()).sum())
        total += a.numel()
    return diff / total


def pairwise_mean(items: Sequence, fn) -> float:
    """Mean of ``fn(a, b)`` over all unordered pairs of ``items`` (at least two)."""
    n = len(items)
    if n < 2:
        raise ValueError("need at least two items for a pairwise measure")
    vals = [fn(items[i], items[j]) for i in range(n) for j in range(i + 1, n)]
    return sum(vals) / len(vals)


class ITOPTracker:
    """In-time over-parameterization rate: the fraction of weights ever active during training.

    Liu, Yin, Mocanu, Pechenizkiy (2021), "Do We Actually Need Dense Over-Parameterization?
    In-Time Over-Parameterization in Sparse Training", ICML, Sec. 3: ``R = |union_t M_t| / N``
    over the sparse layers' positions (used again by FreeTickets, Liu et al., ICLR 2022).

    ``ever[name]`` is a bool tensor of the mask's shape: True where the mask was 1 at least once
    when observed. :meth:`attach` observes after every ``optimizer.step()`` (register it after
    :meth:`sparsenb.Masking.attach`), so a mask changed by a method's hook (RigL and EDST in
    ``after_backward``, SET at the end of an epoch) is seen at the next step. Layers that are
    dense from the start (all-ones masks) are left out: they are trivially 100 % explored.
    """

    def __init__(self, masks) -> None:
        self.ever: dict[str, torch.Tensor] = {mp.name: mp.mask.detach().clone() for mp in masks
                                              if not bool(mp.mask.all())}
        if not self.ever:
            raise ValueError("every masked layer is dense: the ITOP rate is undefined (1.0 trivially)")
        self._masks = masks
        self._hook = None

    @torch.no_grad()
    def observe(self, masks=None) -> None:
        """OR the current masks into ``ever``."""
        for mp in (masks or self._masks):
            if mp.name in self.ever:
                self.ever[mp.name] |= mp.mask

    def attach(self, optimizer: torch.optim.Optimizer) -> "ITOPTracker":
        """Observe after every step of ``optimizer``; returns self."""
        self.detach()
        self._hook = optimizer.register_step_post_hook(lambda opt, args, kwargs: self.observe())
        return self

    def detach(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def rate(self) -> float:
        """``sum |ever| / sum numel`` over the tracked (sparse) layers, in [density, 1]."""
        return sum(int(e.sum()) for e in self.ever.values()) / sum(e.numel() for e in self.ever.values())
