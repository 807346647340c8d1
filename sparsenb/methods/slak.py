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

  remove the ``k = ceil(p(t) * n_l)`` kept weights of smallest ``|w|`` and grow ``k``
  connections chosen uniformly at random among the absent ones (a just-removed one may come
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

from ..core.masks import Masking, magnitude_drop
from ..core.pruning import prune_at_init
from .base import Method, register
from .rigl import cosine_drop_fraction
from ..core.dropgrow import random_grow

__all__ = ["SLaK", "cosine_prune_rate", "magnitude_drop"]


def cosine_prune_rate(step: int, total_steps: int, rate: float, min_rate: float = 0.005) -> float:
    """``p(t) = min_rate + (rate - min_rate) * (1 + cos(pi * t / T)) / 2`` (``min_rate`` from ``t >= T``):
    RigL's cosine schedule (:func:`~sparsenb.methods.rigl.cosine_drop_fraction`) with SLaK's floor."""
    return cosine_drop_fraction(step, rate, total_steps, min_rate)


@register("slak")
class SLaK(Method):
    """SLaK's dynamic sparse training (see the module docstring).

    Args:
        mask_init: ``"snip"`` (global SNIP on one batch, the paper) or ``"random"`` (ERK random).
        update_every: optimizer steps between mask updates (authors' code: ``-u 2000`` / ``100``).
        prune_rate: initial fraction of each layer's kept weights replaced per update (``0.5`` / ``0.3``).
        min_rate: the cosine schedule's floor (authors' code: 0.005).
        **kwargs: ``sparsity`` (paper: 0.4), ``distribution``, ``dense``, ``seed``, ``init`` (weight
            init, :mod:`sparsenb.core.init`; default ``"dense"``: the model's own) of :class:`Method`.
    """

    def __init__(self, mask_init: str = "snip", update_every: int = 100, prune_rate: float = 0.5,
                 min_rate: float = 0.005, **kwargs: Any):
        super().__init__(**kwargs)
        if mask_init not in ("snip", "random"):
            raise ValueError(f"mask_init must be 'snip' or 'random', got {mask_init!r}")
        if update_every < 1 or not 0.0 <= min_rate <= prune_rate < 1.0:
            raise ValueError(f"need update_every >= 1 and 0 <= min_rate <= prune_rate < 1; "
                             f"got {update_every}, {min_rate}, {prune_rate}")
        self.mask_init, self.update_every, self.prune_rate, self.min_rate = mask_init, update_every, prune_rate, min_rate

    def __repr__(self) -> str:
        return (f"SLaK(sparsity={self.sparsity}, mask_init={self.mask_init!r}, update_every={self.update_every}, "
                f"prune_rate={self.prune_rate})")

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
        rate = cosine_prune_rate(step, self.total_steps, self.prune_rate, self.min_rate)
        for mp in masks:
            if bool(mp.mask.all()):
                continue  # a dense layer stays dense
            k = math.ceil(rate * int(mp.mask.sum()))
            kept = mp.mask & ~magnitude_drop(mp.param, mp.mask, k)
            grow = random_grow(kept, k, self.random_scores(mp.mask))
            change = masks.update(mp.name, kept | grow, grow="zero")
            self.log(step=step, layer=mp.name, change=change)
