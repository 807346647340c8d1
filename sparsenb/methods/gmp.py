"""GMP: gradual magnitude pruning (dense-to-sparse training).

Zhu, Gupta (2017), "To prune, or not to prune: exploring the efficacy of pruning for model
compression", arXiv:1710.01878.

Training starts dense. Every ``delta_t`` optimizer steps from step ``t_0`` to ``t_0 + n * delta_t``
the sparsity is raised to (paper, Eq. 1)

    s_t = s_f + (s_i - s_f) * (1 - (t - t_0) / (n * delta_t)) ** 3

(``s_i`` the initial sparsity, 0 here; ``s_f`` the final one) by removing the kept weights of
smallest magnitude ``|w|``; a pruned weight never comes back. The cubic prunes fast early, when
there are many redundant weights, and slowly near the end. After ``t_0 + n * delta_t`` the masks are
fixed and training goes on (the paper's fine-tuning phase).

Here ``t_0 = begin * total_steps`` and the last pruning step ``t_0 + n * delta_t`` is the last
multiple of ``delta_t`` past ``t_0`` that is ``<= end * total_steps``. Each layer is pruned to
the per-layer count of ``distribution`` at the current sparsity (``"uniform"``: every layer at
``s_t``, as in the paper; ``"erk"`` gives the same per-layer split as the sparse-to-sparse
methods, for comparisons at an equal final budget). Pruning happens in ``after_step``, on the
weights the optimizer just updated.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..core import criteria, dropgrow
from ..core.distributions import layer_nnz
from ..core.masks import Masking, resolve_dense
from .base import Method, register

__all__ = ["GMP", "gmp_sparsity"]


def gmp_sparsity(step: int, final: float, t_0: int, n: int, delta_t: int, initial: float = 0.0) -> float:
    """Zhu & Gupta's Eq. 1 at optimizer step ``step``: ``initial`` before ``t_0``, ``final`` from
    ``t_0 + n * delta_t`` on, ``final + (initial - final) * (1 - (step - t_0) / (n * delta_t)) ** 3``
    in between (evaluated at any step; the method prunes only at ``t_0 + k * delta_t``)."""
    if step < t_0:
        return initial
    span = n * delta_t
    if span <= 0 or step >= t_0 + span:
        return final
    return final + (initial - final) * (1.0 - (step - t_0) / span) ** 3


@register("gmp")
class GMP(Method):
    """Gradual magnitude pruning (Zhu & Gupta 2017); see the module docstring.

    Args:
        update_every: optimizer steps between two pruning steps (the paper's ``Delta t``: 100-1000 on
            ImageNet-scale runs).
        begin: fraction of training at which pruning starts (``t_0``).
        end: fraction of training by which the final sparsity is reached.
        **kwargs: ``sparsity`` (the final ``s_f``), ``distribution``, ``dense``, ``seed`` of :class:`Method`.
    """

    SETTINGS = {"GMP_DELTA_T": "update_every", "GMP_BEGIN": "begin", "GMP_END": "end"}

    def __init__(self, update_every: int = 100, begin: float = 0.0, end: float = 0.75, **kwargs: Any):
        super().__init__(**kwargs)
        if update_every < 1:
            raise ValueError(f"update_every must be >= 1, got {update_every}")
        if not 0.0 <= begin <= end <= 1.0:
            raise ValueError(f"need 0 <= begin <= end <= 1, got begin={begin}, end={end}")
        self.update_every, self.begin, self.end = update_every, begin, end
        self.t_0 = self.n = 0

    def init_masks(self, model: nn.Module, data: Any = None) -> Masking:
        """All-ones masks: GMP starts from the dense network."""
        return Masking(model)

    def setup(self, total_steps: int, steps_per_epoch: int, epochs: int) -> None:
        super().setup(total_steps, steps_per_epoch, epochs)
        self.t_0 = int(round(self.begin * total_steps))
        self.n = max(0, (int(self.end * total_steps) - self.t_0) // self.update_every)

    def target(self, step: int) -> float:
        """Sparsity after the pruning step at ``step`` (the schedule of :func:`gmp_sparsity`)."""
        return gmp_sparsity(step, self.sparsity, self.t_0, self.n, self.update_every)

    def after_step(self, step: int, masks: Masking | None) -> None:
        if masks is None or step < self.t_0 or (step - self.t_0) % self.update_every or step > self.t_0 + self.n * self.update_every:
            return
        s = self.target(step)
        if s <= 0.0:
            return
        dense = resolve_dense(masks, self.dense)
        nnz = layer_nnz(masks.shapes(), 1.0 - s, self.distribution, dense)
        for mp in masks:
            if mp.name in dense:
                continue
            kept = int(mp.mask.sum())
            k = min(nnz[mp.name], kept)
            if k == kept:
                continue
            new = mp.mask & ~dropgrow.drop(criteria.magnitude(mp.param), mp.mask, kept - k)
            change = masks.update(mp.name, new, grow="zero")
            self.log(step=step, layer=mp.name, change=change)
