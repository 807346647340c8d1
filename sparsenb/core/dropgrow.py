"""Drop and grow: the two primitives every dynamic sparse-training method is made of.

A method that changes its mask during training removes ``n`` kept connections and adds ``n``
absent ones; what distinguishes SET, RigL, DSN, CTRE, EDST and SLaK is only the *score* each
step ranks by and how ``n`` is rounded. Following jaxpruner's updaters (Lee et al. 2023,
"JaxPruner: A concise library for sparsity research", ``google-research/jaxpruner``:
``drop_fn`` / ``grow_fn`` with per-method scores), each method here calls

* :func:`drop` ``(score, mask, n)``: the ``n`` **kept** positions (``mask`` True) with the
  **smallest** score;
* :func:`grow` ``(score, allowed, n)``: the ``n`` **allowed** positions with the **largest** score,

with its own scores:

============  =========================================  ==============================================
method        drop score (smallest go)                   grow score (largest come), allowed positions
============  =========================================  ==============================================
SET           ``|w|``, separately per sign (:func:`set_drop`)  uniform random, absent after the drop
RigL          ``|w|``                                    ``|dL/dw|`` (dense gradient), absent after the drop
DSN           ``|w|`` in each group                      uniform random, absent in the group's window
CTRE          ``|w|``                                    ``|cos|`` of neuron activations, absent after the drop
EDST          ``|w|``                                    ``|dL/dw|`` or uniform random
SLaK          ``|w|``                                    uniform random, absent after the drop
============  =========================================  ==============================================

The scores come from :mod:`sparsenb.core.criteria` (``magnitude``, ``gradient_magnitude``,
``random``) or from the method itself (CTRE's similarity).

Mask semantics: bool tensors, True = kept (``mask``) or may be grown (``allowed``). Scores are
float tensors of the mask's shape. Positions that may not be chosen are set to a sentinel that
can never win: ``+inf`` for a drop (smallest first), ``-inf`` for a grow (largest first), so any
finite score, negative ones included, is ranked correctly. Ties among equal scores are broken by
``torch.topk`` (deterministic on a given device, unspecified otherwise); asking for more
positions than are kept / allowed raises ``ValueError`` rather than silently choosing a sentinel.

The ``*_indices`` variants return flat indices (``(n,)`` int64) instead of a bool mask, for
updates that touch only the changed positions (:meth:`sparsenb.Masking.update_indices`).
"""
from __future__ import annotations

import torch

from .topk import topk_indices

__all__ = ["drop", "grow", "drop_indices", "grow_indices", "set_drop"]


def _check(n: int, available: torch.Tensor, what: str) -> None:
    if n < 0:
        raise ValueError(f"cannot {what} a negative number of positions ({n})")
    if n > 0:
        count = int(torch.count_nonzero(available))  # not ``sum``: a bool sum widens to int64, ~20x slower
        if n > count:
            raise ValueError(f"cannot {what} {n} positions: only {count} are "
                             f"{'kept' if what == 'drop' else 'allowed'}")


def drop_indices(score: torch.Tensor, mask: torch.Tensor, n: int, overwrite: bool = False) -> torch.Tensor:
    """Flat indices ``(n,)`` of the ``n`` kept positions (``mask`` True) with the smallest ``score``.

    Non-kept positions get the sentinel ``+inf``. Raises ``ValueError`` if ``n`` exceeds the kept count.
    ``overwrite=True``: ``score`` is a contiguous scratch tensor of the caller's, and the sentinels are
    written into it in place (saves one full-size copy; RigL's update uses it).
    """
    _check(n, mask, "drop")
    return topk_indices(_sentinel(score, mask.logical_not(), float("inf"), overwrite), n, largest=False)


def grow_indices(score: torch.Tensor, allowed: torch.Tensor, n: int, overwrite: bool = False) -> torch.Tensor:
    """Flat indices ``(n,)`` of the ``n`` allowed positions (``allowed`` True) with the largest ``score``.

    Positions not allowed get the sentinel ``-inf``. Raises ``ValueError`` if ``n`` exceeds the allowed count.
    ``overwrite``: as in :func:`drop_indices`.
    """
    _check(n, allowed, "grow")
    return topk_indices(_sentinel(score, allowed.logical_not(), float("-inf"), overwrite), n, largest=True)


def _sentinel(score: torch.Tensor, where: torch.Tensor, value: float, overwrite: bool) -> torch.Tensor:
    """Flat ``score`` with ``value`` at ``where``: in place if ``overwrite`` (the topk then runs on
    the caller's tensor), else on a copy (the caller's score is left as it was)."""
    s = score.detach().reshape(-1)
    if overwrite:
        if not score.is_contiguous():
            raise ValueError("overwrite=True needs a contiguous score tensor")
        return s.masked_fill_(where.reshape(-1), value)
    return s.masked_fill(where.reshape(-1), value)


def _as_mask(indices: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(like.numel(), dtype=torch.bool, device=like.device)
    out[indices] = True
    return out.view(like.shape)


def drop(score: torch.Tensor, mask: torch.Tensor, n: int) -> torch.Tensor:
    """Bool tensor (``mask``'s shape) of the ``n`` kept positions with the smallest ``score``: the ones to remove.

    Example: ``drop(w.abs(), mask, k)`` is the magnitude drop of RigL, CTRE, EDST and SLaK.
    """
    return _as_mask(drop_indices(score, mask, n), mask)


def grow(score: torch.Tensor, allowed: torch.Tensor, n: int) -> torch.Tensor:
    """Bool tensor (``allowed``'s shape) of the ``n`` allowed positions with the largest ``score``: the ones to add.

    Example: ``grow(grad.abs(), ~kept, k)`` is RigL's growth; uniform random scores give SET's.
    """
    return _as_mask(grow_indices(score, allowed, n), allowed)


def set_drop(weight: torch.Tensor, mask: torch.Tensor, drop_fraction: float) -> torch.Tensor:
    """SET's drop (Mocanu et al. 2018, Nat. Commun. 9:2383, Algorithm 1; the paper's ``zeta`` is
    ``drop_fraction``): bool tensor of the kept weights closest to zero, taken separately by sign,
    ``round(drop_fraction * n_pos)`` of the non-negative and ``round(drop_fraction * n_neg)`` of the
    negative kept weights: :func:`drop` with score ``|w|`` on each sign. Shared by
    :class:`sparsenb.methods.set.SET` and :func:`sparsenb.layers.truly_sparse.evolve_set`."""
    w = weight.detach()
    out = torch.zeros_like(mask)
    for side in (mask & (w >= 0), mask & (w < 0)):
        out |= drop(w.abs(), side, round(drop_fraction * int(torch.count_nonzero(side))))
    return out
