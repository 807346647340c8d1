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
* **Update** every ``update_every`` optimizer steps (code: ``update_frequency = 5`` *epochs*;
  ``update_every=None`` means 5 epochs' steps), at the end of the epoch in which a multiple of
  ``update_every`` steps is reached, never after the last epoch: in each group
  :func:`~sparsenb.core.dropgrow.drop` the ``k = ceil(p(t) * n_g)`` active weights of smallest
  ``|w|`` and :func:`~sparsenb.core.dropgrow.grow` ``k`` positions with uniform random scores
  among the region's positions that are absent after the drop (so a just-dropped weight may
  come back), keeping ``n_g`` fixed. Regrown weights start at zero and their optimizer moments are reset
  (:meth:`sparsenb.Masking.update`).
* **Drop fraction** (code: ``CosineDecay(death_rate, T_max=0.8 * total_steps, eta_min=0.001)``,
  stepped every optimizer step, and ``death_rate = 0.001`` once 80 % of the epochs are done)::

      p(t) = p_min + (p_0 - p_min) / 2 * (1 + cos(pi * t / T_end))   for t < T_end,   p_min after,

  with ``p_0 = 0.5`` (the paper's and code's ``death_rate``/``alpha``, option ``drop_fraction``),
  ``p_min = 0.001`` (option ``floor``), ``T_end = 0.8 * total_steps``.
* ``fix=True`` never updates: the *static sparse* baseline with the same windowed random masks.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..models.dsn import WindowedConv1d, windowed_convs
from ..core.dropgrow import drop, grow
from ..core.masks import Masking
from .base import Method, register
from .rigl import cosine_drop_fraction

__all__ = ["DSN", "dsn_drop_fraction", "region_nnz", "dsn_group_update"]


def dsn_drop_fraction(step: int, alpha: float, t_end: int, floor: float = 0.001) -> float:
    """``floor + (alpha - floor) / 2 * (1 + cos(pi * step / t_end))`` before ``t_end``, ``floor`` from it on:
    RigL's cosine schedule (:func:`~sparsenb.methods.rigl.cosine_drop_fraction`) with DSN's floor."""
    return cosine_drop_fraction(step, alpha, t_end, floor)


def region_nnz(region: torch.Tensor, density: float) -> int:
    """Kept weights of a group: ``max(1, floor(density * region.sum()))``."""
    return max(1, int(density * int(region.sum())))


def dsn_group_update(weight: torch.Tensor, mask: torch.Tensor, region: torch.Tensor, fraction: float,
                     scores: torch.Tensor) -> torch.Tensor:
    """One group's new mask: drop ``ceil(fraction * nnz)`` smallest ``|w|``, regrow as many at random in ``region``.

    ``weight``, ``mask``, ``region``, ``scores``: tensors of one group's shape ``(out_g, C_in, K)``;
    ``mask`` must lie inside ``region``. Returns a bool mask inside ``region`` with the same nnz.
    """
    if bool((mask & ~region).any()):
        raise ValueError("the mask has weights outside the group's region")
    k = math.ceil(fraction * int(mask.sum()))
    if k == 0:
        return mask.clone()
    kept = mask & ~drop(weight.detach().abs(), mask, k)
    return kept | grow(scores, region & ~kept, k)


@register("dsn")
class DSN(Method):
    """DSN's dynamic sparse training (Xiao et al., NeurIPS 2022); see the module docstring.

    Args:
        sparsity: ``1 - D``, the fraction of each group's *region* that is pruned (paper: 0.8).
        drop_fraction: initial drop fraction ``p_0`` (paper and code: ``death_rate`` 0.5).
        update_every: optimizer steps between mask updates; ``None`` (default) = 5 epochs' steps
            (the code's ``update_frequency = 5`` epochs), resolved by ``setup``.
        t_end: fraction of the training steps over which ``p`` is annealed (paper: 0.8).
        floor: drop fraction ``p_min`` at and after ``t_end`` (paper: 0.001).
        fix: never update the masks (static sparse baseline).
        seed: seed of the method's generator (masks and regrowth positions).

    ``init_masks(model)`` needs a model with :class:`~sparsenb.models.dsn.WindowedConv1d` layers.
    """

    SETTINGS = {"ALPHA": "drop_fraction", "T_END": "t_end", "FLOOR": "floor"}
    UPDATE_EPOCHS = 5  # the official code's update_frequency, used when update_every is None

    def __init__(self, sparsity: float = 0.8, drop_fraction: float = 0.5, update_every: int | None = None,
                 t_end: float = 0.8, floor: float = 0.001, fix: bool = False, **kwargs: Any):
        kwargs.pop("distribution", None)  # the density is fixed per group region, not distributed
        super().__init__(sparsity=sparsity, **kwargs)
        if not 0 <= floor <= drop_fraction < 1 or (update_every is not None and update_every < 1) or not 0 < t_end <= 1:
            raise ValueError(f"need 0 <= floor <= drop_fraction < 1, update_every >= 1, 0 < t_end <= 1; got "
                             f"floor={floor}, drop_fraction={drop_fraction}, update_every={update_every}, t_end={t_end}")
        self.drop_fraction, self.t_end, self.floor, self.fix = drop_fraction, t_end, floor, fix
        self.update_every_option = update_every
        self.update_every = update_every or 0  # steps; resolved by setup when None
        self.convs: dict[str, WindowedConv1d] = {}

    def __repr__(self) -> str:
        return (f"DSN(density={1 - self.sparsity:g} within each window, drop_fraction={self.drop_fraction}, "
                f"update_every={self.update_every_option or f'{self.UPDATE_EPOCHS} epochs'} steps, fix={self.fix})")

    def setup(self, total_steps: int, steps_per_epoch: int, epochs: int) -> None:
        super().setup(total_steps, steps_per_epoch, epochs)
        self.update_every = self.update_every_option or self.UPDATE_EPOCHS * steps_per_epoch

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
                new |= grow(self.random_scores(region), region, region_nnz(region, self.density))
            masks.update(name, new, grow="zero")
        return masks

    def is_update_epoch(self, epoch: int) -> bool:
        """True after the epoch in which the step count reaches a multiple of ``update_every``
        (with ``update_every = K * steps_per_epoch``: epochs ``K - 1, 2K - 1, ...``), except the last one."""
        last = self.epochs and epoch >= self.epochs - 1
        spe, every = self.steps_per_epoch, self.update_every
        if self.fix or last or every < 1:
            return False
        return (epoch + 1) * spe // every > epoch * spe // every

    def current_drop_fraction(self, step: int) -> float:
        """``p(t)`` at optimizer step ``step`` (see the module docstring)."""
        return dsn_drop_fraction(step, self.drop_fraction, int(self.t_end * self.total_steps), self.floor)

    def on_epoch_end(self, epoch: int, masks: Masking | None) -> None:
        if masks is None or not self.is_update_epoch(epoch):
            return
        step = (epoch + 1) * self.steps_per_epoch
        frac = self.current_drop_fraction(step)
        for name, conv in self.convs.items():
            mp = masks.params[name]
            new = mp.mask.clone()
            for g in range(conv.groups):
                sl = conv.group_slice(g)
                region = conv.region(g)[sl]
                new[sl] = dsn_group_update(mp.param[sl], mp.mask[sl], region, frac, self.random_scores(region))
            change = masks.update(name, new, grow="zero")
            self.log(step=step, layer=name, change={**change, "fraction": frac})
