"""RigL: Rigging the Lottery.

Evci, Gale, Menick, Castro, Elsen (2020), "Rigging the Lottery: Making All
Tickets Winners", ICML.

Every ``delta_t`` (option ``update_every``) optimizer steps while ``t < T_end`` (``T_end = t_end *
total_steps``, 75% of training by default), for every sparse layer ``l`` with
``N_l`` active weights:

* drop fraction ``f(t) = alpha / 2 * (1 + cos(pi * t / T_end))`` (paper, Eq. 1; ``alpha`` is
  the option ``drop_fraction``);
* drop the ``k = round(f(t) * N_l)`` active weights of smallest magnitude ``|w|``
  (:func:`sparsenb.core.dropgrow.drop`);
* grow the ``k`` absent connections with the largest dense-gradient magnitude
  ``|dL/dw|`` of the current mini-batch (absent after the drop, so a just-dropped
  weight may come back; :func:`sparsenb.core.dropgrow.grow`). Grown weights start at zero and their optimizer
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

from ..core import criteria, dropgrow
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


def rigl_drop_grow(weight: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor,
                   k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """RigL's update of one layer as flat indices ``(drop (k,), grow (k,))``.

    :func:`~sparsenb.core.dropgrow.drop` the ``k`` kept weights of smallest ``|w|``, then
    :func:`~sparsenb.core.dropgrow.grow` the ``k`` positions of largest ``|g|`` among those absent
    after the drop (so a just-dropped weight may come back). The new mask is ``mask - drop + grow``.
    """
    score = criteria.magnitude(weight).contiguous()  # a fresh tensor: the scores are written into it
    drop = dropgrow.drop_indices(score, mask, k, overwrite=True)
    allowed = mask.logical_not().reshape(-1)
    allowed[drop] = True
    criteria.gradient_magnitude(weight, grad, out=score.view(weight.shape))  # the same buffer: no second allocation
    return drop, dropgrow.grow_indices(score, allowed, k, overwrite=True)


def rigl_masks(weight: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """New mask after :func:`rigl_drop_grow`: the ``k`` smallest-``|w|`` kept weights replaced by the
    ``k`` largest-``|g|`` absent ones."""
    new = mask.clone().reshape(-1)
    if k > 0:
        drop, grow = rigl_drop_grow(weight, grad, mask, k)
        new[drop] = False
        new[grow] = True
    return new.view_as(mask)


@register("rigl")
class RigL(Method):
    """RigL (Evci et al. 2020); see the module docstring.

    Args:
        update_every: optimizer steps between mask updates (the paper's ``delta_t``: 100).
        drop_fraction: initial drop fraction (the paper's ``alpha``: 0.3), cosine-annealed to 0.
        t_end: fraction of training after which the mask is frozen (paper: 0.75).
        grow: value of grown weights, ``"zero"`` (paper) or ``"init"``.
        **kwargs: ``sparsity``, ``distribution``, ``dense``, ``seed`` of :class:`Method`.
    """

    SETTINGS = {"DELTA_T": "update_every", "ALPHA": "drop_fraction", "T_END": "t_end"}

    def __init__(self, update_every: int = 100, drop_fraction: float = 0.3, t_end: float = 0.75,
                 grow: str = "zero", **kwargs: Any):
        super().__init__(**kwargs)
        if update_every < 1 or not 0 <= drop_fraction < 1 or not 0 < t_end <= 1:
            raise ValueError(f"need update_every >= 1, 0 <= drop_fraction < 1, 0 < t_end <= 1; "
                             f"got {update_every}, {drop_fraction}, {t_end}")
        if grow not in ("zero", "init"):
            raise ValueError(f"grow must be 'zero' or 'init', got {grow!r}")
        self.update_every, self.drop_fraction, self.t_end, self.grow = update_every, drop_fraction, t_end, grow

    @property
    def end_step(self) -> int:
        return int(self.t_end * self.total_steps)

    def is_update_step(self, step: int) -> bool:
        return step > 0 and step % self.update_every == 0 and step < self.end_step

    def after_backward(self, step: int, masks: Masking | None) -> None:
        if masks is None or not self.is_update_step(step):
            return
        frac = cosine_drop_fraction(step, self.drop_fraction, self.end_step)
        for mp in masks:
            if mp.param.grad is None:
                continue
            nnz = int(torch.count_nonzero(mp.mask))
            if nnz == mp.mask.numel():
                continue  # a dense layer stays dense
            k = round(frac * nnz)
            if k <= 0:
                change = {"grown": 0, "dropped": 0}
            else:
                drop, grow = rigl_drop_grow(mp.param, mp.param.grad, mp.mask, k)
                change = masks.update_indices(mp.name, drop, grow, grow_value=self.grow)
            self.log(step=step, layer=mp.name, change=change)

    def step_macs(self, f_sparse: float, f_dense: float) -> float:
        """RigL App. H: one dense-gradient step (``2 f_S + f_D``) per ``update_every + 1`` steps, on average
        ``(3 f_S ΔT + 2 f_S + f_D) / (ΔT + 1)`` with ``ΔT = update_every``."""
        dt = self.update_every
        return (3.0 * f_sparse * dt + 2.0 * f_sparse + f_dense) / (dt + 1)

    def dense_gradient_steps(self) -> int:
        """Optimizer steps at which a mask update read the dense gradient."""
        return len({e["step"] for e in self.events})
