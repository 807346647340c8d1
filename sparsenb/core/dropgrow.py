"""Drop and grow primitives shared by the dynamic sparse-training methods and layers.

Mask semantics: a bool mask, True = kept. A *drop* returns the kept positions to remove; a *grow*
returns absent positions to add. Methods call them with their own scores (magnitude, gradient,
cosine similarity, random), so one primitive serves every method that uses the same rule.

* :func:`set_drop`: SET's drop (Mocanu et al. 2018, Nat. Commun. 9:2383): the fraction ``zeta``
  of the kept weights closest to zero, taken separately among the positive and the negative ones.
* :func:`random_grow`: the ``k`` absent positions with the highest scores; uniform random scores
  give SET's random regrowth.
"""
from __future__ import annotations

import torch

__all__ = ["set_drop", "random_grow"]


def set_drop(weight: torch.Tensor, mask: torch.Tensor, zeta: float) -> torch.Tensor:
    """Bool mask of the active weights SET removes: the fraction ``zeta`` closest to zero,
    taken separately from the positive (incl. zero) and the negative weights."""
    w, active = weight.detach().reshape(-1), mask.reshape(-1)
    drop = torch.zeros_like(active)
    for sign_sel, largest in ((active & (w >= 0), False), (active & (w < 0), True)):
        idx = sign_sel.nonzero().squeeze(1)
        k = round(zeta * idx.numel())
        if k > 0:
            chosen = torch.topk(w[idx], k, largest=largest, sorted=False).indices
            drop[idx[chosen]] = True
    return drop.view_as(mask)


def random_grow(mask: torch.Tensor, k: int, scores: torch.Tensor) -> torch.Tensor:
    """Bool mask of ``k`` absent positions with the highest ``scores`` (random scores = uniform choice)."""
    s = scores.masked_fill(mask, -1.0).reshape(-1)
    grow = torch.zeros_like(s, dtype=torch.bool)
    if k > 0:
        grow[torch.topk(s, k, sorted=False).indices] = True
    return grow.view_as(mask) & ~mask
