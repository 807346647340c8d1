"""RigL: Rigging the Lottery.

Evci, Gale, Menick, Castro, Elsen (2020), "Rigging the Lottery: Making All
Tickets Winners", ICML.

Every ``delta_t`` optimizer steps while ``t < T_end`` (``T_end = t_end *
total_steps``, 75% of training by default), for every sparse layer ``l`` with
``N_l`` active weights:

* drop fraction ``f(t) = alpha / 2 * (1 + cos(pi * t / T_end))`` (paper, Eq. 1);
* drop the ``k = round(f(t) * N_l)`` active weights of smallest magnitude ``|w|``;
* grow the ``k`` absent connections with the largest dense-gradient magnitude
  ``|dL/dw|`` of the current mini-batch (absent after the drop, so a just-dropped
  weight may come back). Grown weights start at zero and their optimizer
  moments are reset.

Initialisation in the official code (``google-research/rigl``, TensorFlow): the layers' default
Glorot-uniform weights at the dense fan-in/fan-out (its MNIST MLP), or the models' own initialisers,
and the mask applied on top; grown weights start at zero (``grow_init="zeros"``). Here the weights are
the model's own unless ``init`` of :class:`~sparsenb.methods.base.Method` asks for the sparsity-aware
rule of :mod:`sparsenb.core.init`.

The update runs in ``after_backward``, where the gradients are still dense:
autograd computes ``dL/dw`` for pruned weights too (the masks zero them before
the step only for optimizers that need it, see :mod:`sparsenb.core.masks`). The
update touches only the ``2k`` changed positions of mask, weight, moments and
float mask (:meth:`sparsenb.Masking.update_indices`); its full-size work is the
two scores and their two ``topk`` per layer.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from ..core.masks import Masking
from .base import Method, register


def cosine_drop_fraction(step: int, alpha: float, t_end: int, floor: float = 0.0) -> float:
    """RigL's Eq. 1: ``alpha/2 * (1 + cos(pi * step / t_end))``, 0 from ``t_end`` on.

    With ``floor > 0`` it anneals from ``alpha`` to ``floor`` instead:
    ``floor + (alpha - floor)/2 * (1 + cos(pi * step / t_end))``, ``floor`` from ``t_end`` on
    (the schedule DSN and SLaK use for their drop/prune fraction).
    """
    if step >= t_end:
        return floor
    return floor + (alpha - floor) / 2 * (1 + math.cos(math.pi * step / t_end))


def rigl_masks(weight: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """New mask: drop the ``k`` smallest-``|w|`` active weights, grow the ``k`` largest-``|g|`` absent ones."""
    if k <= 0:
        return mask.clone()
    drop_score = weight.detach().abs().masked_fill(~mask, float("inf")).reshape(-1)
    kept = mask.clone().reshape(-1)
    kept[torch.topk(drop_score, k, largest=False, sorted=False).indices] = False
    grow_score = grad.detach().abs().reshape(-1).masked_fill(kept, -1.0)
    new = kept.clone()
    new[torch.topk(grow_score, k, sorted=False).indices] = True
    return new.view_as(mask)


def rigl_drop_grow(weight: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor,
                   k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`rigl_masks` as flat indices ``(drop (k,), grow (k,))``, with fewer full-size passes.

    The scores and ``topk`` calls are the same as in :func:`rigl_masks`, so the new mask
    ``mask - drop + grow`` is identical to ``rigl_masks(weight, grad, mask, k)``: the grow
    score ``|g|`` is -1 at the weights kept after the drop (a just-dropped weight may come back).
    """
    flat_m = mask.reshape(-1)
    drop_score = weight.detach().abs().reshape(-1).masked_fill_(~flat_m, float("inf"))
    drop = torch.topk(drop_score, k, largest=False, sorted=False).indices
    grow_score = grad.detach().abs().reshape(-1)
    at_drop = grow_score[drop]
    grow_score.masked_fill_(flat_m, -1.0)
    grow_score[drop] = at_drop
    grow = torch.topk(grow_score, k, sorted=False).indices
    return drop, grow


@register("rigl")
class RigL(Method):
    """RigL (Evci et al. 2020); see the module docstring.

    Args:
        delta_t: steps between mask updates (paper: 100).
        alpha: initial drop fraction (paper: 0.3).
        t_end: fraction of training after which the mask is frozen (paper: 0.75).
        grow: value of grown weights, ``"zero"`` (paper) or ``"init"``.
        **kwargs: ``sparsity``, ``distribution``, ``dense``, ``seed`` of :class:`Method`.
    """

    def __init__(self, delta_t: int = 100, alpha: float = 0.3, t_end: float = 0.75,
                 grow: str = "zero", **kwargs: Any):
        super().__init__(**kwargs)
        if delta_t < 1 or not 0 <= alpha < 1 or not 0 < t_end <= 1:
            raise ValueError(f"need delta_t >= 1, 0 <= alpha < 1, 0 < t_end <= 1; got {delta_t}, {alpha}, {t_end}")
        if grow not in ("zero", "init"):
            raise ValueError(f"grow must be 'zero' or 'init', got {grow!r}")
        self.delta_t, self.alpha, self.t_end, self.grow = delta_t, alpha, t_end, grow

    @property
    def end_step(self) -> int:
        return int(self.t_end * self.total_steps)

    def is_update_step(self, step: int) -> bool:
        return step > 0 and step % self.delta_t == 0 and step < self.end_step

    def after_backward(self, step: int, masks: Masking | None) -> None:
        if masks is None or not self.is_update_step(step):
            return
        frac = cosine_drop_fraction(step, self.alpha, self.end_step)
        for mp in masks:
            if mp.param.grad is None:
                continue
            nnz = int(mp.mask.sum())
            if nnz == mp.mask.numel():
                continue  # a dense layer stays dense
            k = round(frac * nnz)
            if k <= 0:
                change = {"grown": 0, "dropped": 0}
            else:
                drop, grow = rigl_drop_grow(mp.param, mp.param.grad, mp.mask, k)
                change = masks.update_indices(mp.name, drop, grow, grow_value=self.grow)
            self.log(step=step, layer=mp.name, change=change)
