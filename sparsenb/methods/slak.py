"""SLaK's dynamic sparsity ("sparse groups"): SNIP or random init, magnitude prune, random growth.

Liu, Chen, Chen, Chen, Xiao, Wu, Kärkkäinen, Pechenizkiy, Mocanu, Wang (2023),
"More ConvNets in the 2020s: Scaling up Kernels Beyond 51x51 using Sparsity", ICLR,
Sec. 4.1 ("Use sparse groups, expanding more"): the widened network (width x1.3) is trained
sparse from scratch with dynamic sparsity, every 2-D and 4-D weight (all convolutions,
including the large depthwise kernels, and all linear layers) carrying a mask.

The scheme, as in the authors' code (``--sparse_init snip --prune magnitude --growth random``):

* init: a global SNIP mask (keep the ``(1 - s) * N`` largest ``|g * theta|`` over all layers,
  one batch; ``mask_init="snip"``) or a random mask with ERK layer densities (``mask_init="random"``);
* every ``update_every`` optimizer steps ``t``, in every sparse layer with ``n_l`` kept weights:
  the prune rate is cosine-annealed over training,

      p(t) = p_min + (p_0 - p_min) * (1 + cos(pi * t / T)) / 2,     p_min = 0.005,

  (``p_0`` is the code's ``prune_rate``, option ``drop_fraction``; ``p_min`` option ``floor``),
  :func:`~sparsenb.core.dropgrow.drop` the ``k = ceil(p(t) * n_l)`` kept weights of smallest
  ``|w|`` and :func:`~sparsenb.core.dropgrow.grow` ``k`` connections with uniform random scores
  among the absent ones (a just-removed one may come
  back); new connections start at zero and their optimizer moments are reset (see
  :mod:`sparsenb.core.masks`), while a just-removed weight that is drawn again keeps its value, as
  in the authors' code (there the weights are zeroed only after growth). The nnz of every
  layer is unchanged.

Differences to the authors' code, on purpose: growth picks exactly ``k`` positions (theirs
draws each absent position with probability ``k / n_absent``, so the nnz drifts a little), and
fully dense layers simply stay dense (theirs drops a layer's mask when its density is >= 0.99).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..core import criteria
from ..core.dropgrow import drop, grow
from ..core.masks import Masking
from ..core.pruning import prune_at_init
from .base import Method, register
from .rigl import cosine_drop_fraction

__all__ = ["SLaK", "cosine_prune_rate"]


def cosine_prune_rate(step: int, total_steps: int, rate: float, floor: float = 0.005) -> float:
    """``p(t) = floor + (rate - floor) * (1 + cos(pi * t / T)) / 2`` (``floor`` from ``t >= T``):
    RigL's cosine schedule (:func:`~sparsenb.methods.rigl.cosine_drop_fraction`) with SLaK's floor."""
    return cosine_drop_fraction(step, rate, total_steps, floor)


@register("slak")
class SLaK(Method):
    """SLaK's dynamic sparse training (see the module docstring).

    Args:
        mask_init: ``"snip"`` (global SNIP on one batch, the paper) or ``"random"`` (ERK random).
        update_every: optimizer steps between mask updates (authors' code: ``-u 2000`` / ``100``).
        drop_fraction: initial fraction of each layer's kept weights replaced per update (authors' code:
            ``prune_rate``, ``0.5`` / ``0.3``).
        floor: the cosine schedule's floor (authors' code: ``min_rate`` 0.005).
        **kwargs: ``sparsity`` (paper: 0.4), ``distribution``, ``dense``, ``seed``, ``init`` (weight
            init, :mod:`sparsenb.core.init`; default ``"dense"``: the model's own) of :class:`Method`.
    """

    SETTINGS = {"UPDATE_EVERY": "update_every", "PRUNE_RATE": "drop_fraction", "SLAK_INIT": "mask_init"}

    def __init__(self, mask_init: str = "snip", update_every: int = 100, drop_fraction: float = 0.5,
                 floor: float = 0.005, **kwargs: Any):
        super().__init__(**kwargs)
        if mask_init not in ("snip", "random"):
            raise ValueError(f"mask_init must be 'snip' or 'random', got {mask_init!r}")
        if update_every < 1 or not 0.0 <= floor <= drop_fraction < 1.0:
            raise ValueError(f"need update_every >= 1 and 0 <= floor <= drop_fraction < 1; "
                             f"got {update_every}, {floor}, {drop_fraction}")
        self.mask_init, self.update_every, self.drop_fraction, self.floor = mask_init, update_every, drop_fraction, floor

    def __repr__(self) -> str:
        return (f"SLaK(sparsity={self.sparsity}, mask_init={self.mask_init!r}, update_every={self.update_every}, "
                f"drop_fraction={self.drop_fraction})")

    def init_masks(self, model: nn.Module, data: Any = None) -> Masking:
        """SNIP (needs ``data``: an ``(x, y)`` batch or a loader) or random ERK masks at ``sparsity``."""
        if self.mask_init == "random":
            return super().init_masks(model, data)
        if data is None:
            raise ValueError("SLaK with mask_init='snip' needs a batch: pass init_data=(x, y) or a loader to the "
                             "Trainer, or use mask_init='random'")
        return prune_at_init(model, "snip", self.sparsity, data=data, scope="global", dense=self.dense,
                             generator=self.generator)

    def is_update_step(self, step: int) -> bool:
        return step > 0 and step % self.update_every == 0 and (not self.total_steps or step < self.total_steps)

    def after_step(self, step: int, masks: Masking | None) -> None:
        if masks is None or not self.is_update_step(step):
            return
        rate = cosine_prune_rate(step, self.total_steps, self.drop_fraction, self.floor)
        for mp in masks:
            if bool(mp.mask.all()):
                continue  # a dense layer stays dense
            k = math.ceil(rate * int(mp.mask.sum()))
            kept = mp.mask & ~drop(criteria.magnitude(mp.param), mp.mask, k)
            grown = grow(self.random_scores(mp.mask), ~kept, k)
            change = masks.update(mp.name, kept | grown, grow="zero")
            self.log(step=step, layer=mp.name, change=change)
