"""DSN: dynamic sparse training inside each kernel group's window.

Xiao, Wu, Zhang, Liu, Pechenizkiy, Mocanu, Mocanu (2022), "Dynamic Sparse Network for Time
Series Classification: Learning What to 'See'", NeurIPS 2022; defaults from the official code
(QiaoXiao7282/DSN, ``sparselearning/core_kernel.py`` and ``trainer_DSN.py``).

The sparse weights are those of the wide convs of :class:`sparsenb.models.dsn.DSNNet`; each conv's
output channels form groups ``g`` with a *region* ``R_g`` (taps ``0 .. w_g - 1``, see
:meth:`sparsenb.models.dsn.WindowedConv1d.region`). Mask semantics: 1 = kept; the mask of group
``g`` is a subset of ``R_g`` at all times, so weights outside the windows are exactly zero
after every optimizer step and are never regrown. Bottlenecks, head and batch norm are dense.

* **Init.** Group ``g`` keeps ``n_g = max(1, floor(D * |R_g|))`` weights chosen uniformly at
  random inside ``R_g``: the density ``D`` (0.2) applies *within the region*, as in the code
  (``num_remain = int(search_num * density)`` with ``search_num`` the region size).
* **Update** every ``update_every`` epochs (code: ``update_frequency = 5`` epochs), never after
  the last epoch: in each group drop the ``k = ceil(p(t) * n_g)`` active weights of smallest
  ``|w|`` and regrow ``k`` positions drawn uniformly at random among the region's positions
  that are absent after the drop (so a just-dropped weight may come back), keeping ``n_g``
  fixed. Regrown weights start at zero and their optimizer moments are reset
  (:meth:`sparsenb.Masking.update`).
* **Drop fraction** (code: ``CosineDecay(death_rate, T_max=0.8 * total_steps, eta_min=0.001)``,
  stepped every optimizer step, and ``death_rate = 0.001`` once 80 % of the epochs are done)::

      p(t) = p_min + (p_0 - p_min) / 2 * (1 + cos(pi * t / T_end))   for t < T_end,   p_min after,

  with ``p_0 = 0.5``, ``p_min = 0.001``, ``T_end = 0.8 * total_steps``.
* ``fix=True`` never updates: the *static sparse* baseline with the same windowed random masks.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..models.dsn import WindowedConv1d, windowed_convs
from ..core.masks import Masking
from .base import Method, register
from .rigl import cosine_drop_fraction

__all__ = ["DSN", "dsn_drop_fraction", "region_nnz", "random_in_region", "dsn_group_update"]


def dsn_drop_fraction(step: int, alpha: float, t_end: int, floor: float = 0.001) -> float:
    """``floor + (alpha - floor) / 2 * (1 + cos(pi * step / t_end))`` before ``t_end``, ``floor`` from it on:
    RigL's cosine schedule (:func:`~sparsenb.methods.rigl.cosine_drop_fraction`) with DSN's floor."""
    return cosine_drop_fraction(step, alpha, t_end, floor)


def region_nnz(region: torch.Tensor, density: float) -> int:
    """Kept weights of a group: ``max(1, floor(density * region.sum()))``."""
    return max(1, int(density * int(region.sum())))


def random_in_region(region: torch.Tensor, k: int, scores: torch.Tensor) -> torch.Tensor:
    """Bool mask of ``region``'s shape with ``k`` True at the highest ``scores`` inside ``region``."""
    size = int(region.sum())
    if not 0 <= k <= size:
        raise ValueError(f"cannot keep {k} weights in a region of {size}")
    s = scores.masked_fill(~region, -1.0).reshape(-1)
    out = torch.zeros_like(s, dtype=torch.bool)
    if k > 0:
        out[torch.topk(s, k, sorted=False).indices] = True
    return out.view_as(region)


def dsn_group_update(weight: torch.Tensor, mask: torch.Tensor, region: torch.Tensor, fraction: float,
                     scores: torch.Tensor) -> torch.Tensor:
    """One group's new mask: drop ``ceil(fraction * nnz)`` smallest ``|w|``, regrow as many at random in ``region``.

    ``weight``, ``mask``, ``region``, ``scores``: tensors of one group's shape ``(out_g, C_in, K)``;
    ``mask`` must lie inside ``region``. Returns a bool mask inside ``region`` with the same nnz.
    """
    if bool((mask & ~region).any()):
        raise ValueError("the mask has weights outside the group's region")
    nnz = int(mask.sum())
    k = math.ceil(fraction * nnz)
    if k == 0:
        return mask.clone()
    drop_score = weight.detach().abs().masked_fill(~mask, float("inf")).reshape(-1)
    kept = mask.clone().reshape(-1)
    kept[torch.topk(drop_score, k, largest=False, sorted=False).indices] = False
    kept = kept.view_as(mask)
    grow = random_in_region(region & ~kept, k, scores)
    return kept | grow


@register("dsn")
class DSN(Method):
    """DSN's dynamic sparse training (Xiao et al., NeurIPS 2022); see the module docstring.

    Args:
        sparsity: ``1 - D``, the fraction of each group's *region* that is pruned (paper: 0.8).
        alpha: initial drop fraction ``p_0`` (paper: 0.5).
        update_every: epochs between mask updates (paper: 5).
        t_end: fraction of the training steps over which ``p`` is annealed (paper: 0.8).
        floor: drop fraction ``p_min`` at and after ``t_end`` (paper: 0.001).
        fix: never update the masks (static sparse baseline).
        seed: seed of the method's generator (masks and regrowth positions).

    ``init_masks(model)`` needs a model with :class:`~sparsenb.models.dsn.WindowedConv1d` layers.
    """

    def __init__(self, sparsity: float = 0.8, alpha: float = 0.5, update_every: int = 5, t_end: float = 0.8,
                 floor: float = 0.001, fix: bool = False, **kwargs: Any):
        kwargs.pop("distribution", None)  # the density is fixed per group region, not distributed
        super().__init__(sparsity=sparsity, **kwargs)
        if not 0 <= floor <= alpha < 1 or update_every < 1 or not 0 < t_end <= 1:
            raise ValueError(f"need 0 <= floor <= alpha < 1, update_every >= 1, 0 < t_end <= 1; "
                             f"got floor={floor}, alpha={alpha}, update_every={update_every}, t_end={t_end}")
        self.alpha, self.update_every, self.t_end, self.floor, self.fix = alpha, update_every, t_end, floor, fix
        self.convs: dict[str, WindowedConv1d] = {}

    def __repr__(self) -> str:
        return (f"DSN(density={1 - self.sparsity:g} within each window, alpha={self.alpha}, "
                f"update_every={self.update_every} epochs, fix={self.fix})")

    @property
    def density(self) -> float:
        return 1.0 - self.sparsity

    def init_masks(self, model: nn.Module, data: Any = None) -> Masking:
        self.convs = windowed_convs(model)
        if not self.convs:
            raise ValueError("DSN needs a model with WindowedConv1d layers, e.g. sparsenb.models.dsn.DSNNet")
        masks = Masking(model, names=list(self.convs))
        for name, conv in self.convs.items():
            new = torch.zeros_like(conv.weight, dtype=torch.bool)
            for g in range(conv.groups):
                region = conv.region(g)
                new |= random_in_region(region, region_nnz(region, self.density), self.random_scores(region))
            masks.update(name, new, grow="zero")
        return masks

    def is_update_epoch(self, epoch: int) -> bool:
        """True after epochs ``update_every - 1, 2 * update_every - 1, ...`` except the last one."""
        last = self.epochs and epoch >= self.epochs - 1
        return not self.fix and (epoch + 1) % self.update_every == 0 and not last

    def drop_fraction(self, step: int) -> float:
        return dsn_drop_fraction(step, self.alpha, int(self.t_end * self.total_steps), self.floor)

    def on_epoch_end(self, epoch: int, masks: Masking | None) -> None:
        if masks is None or not self.is_update_epoch(epoch):
            return
        step = (epoch + 1) * self.steps_per_epoch
        frac = self.drop_fraction(step)
        for name, conv in self.convs.items():
            mp = masks.params[name]
            new = mp.mask.clone()
            for g in range(conv.groups):
                sl = conv.group_slice(g)
                region = conv.region(g)[sl]
                new[sl] = dsn_group_update(mp.param[sl], mp.mask[sl], region, frac, self.random_scores(region))
            change = masks.update(name, new, grow="zero")
            self.log(step=step, layer=name, change={**change, "fraction": frac})
