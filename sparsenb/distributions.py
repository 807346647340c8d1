"""Per-layer sparsity distributions: how many weights each layer keeps.

Given the shapes of the prunable parameters and a global density ``d``, each
function returns an **integer** number of kept weights (nnz) per layer such that

* the total nnz equals ``round(d * total_numel)`` exactly (so it is within one
  weight of the real-valued target ``d * total_numel``);
* no layer keeps more weights than it has: a layer whose density would exceed 1
  is made dense and the other layers are re-solved (ER, ERK);
* layers named in ``dense`` are kept fully dense and the remaining layers share
  what is left of the budget.

Distributions
-------------
``uniform``
    every sparse layer gets the same density.
``er`` (Erdős–Rényi, Mocanu et al. 2018, "Scalable training of artificial neural
    networks with adaptive sparse connectivity ...", Nat. Commun.)
    density of layer l proportional to ``(n_in + n_out) / (n_in * n_out)``.
``erk`` (Erdős–Rényi-Kernel, Evci et al. 2020, "Rigging the Lottery", ICML)
    for a conv kernel of shape ``(n_out, n_in, k_h, k_w)`` the density is
    proportional to ``(n_out + n_in + k_h + k_w) / (n_out * n_in * k_h * k_w)``;
    for a 2-D weight it equals ER.

With raw scores ``r_l`` the density is ``eps * r_l``; ``eps`` is solved so that
``sum_l eps * r_l * numel_l = budget`` over the layers that are not dense.
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import Mapping, Sequence

Shape = Sequence[int]

__all__ = ["layer_nnz", "raw_scores", "DISTRIBUTIONS", "ON_EMPTY", "check_sparsity", "check_distribution",
           "check_empty_layers", "EmptyLayerWarning"]

DISTRIBUTIONS = ("uniform", "er", "erk")
ON_EMPTY = ("warn", "raise", "ignore")


class EmptyLayerWarning(UserWarning):
    """A sparsity layout leaves a layer with no weight at all (nothing can flow through it)."""


def check_sparsity(sparsity: object, name: str = "sparsity") -> float:
    """``sparsity`` as a float in ``[0, 1)``, or a ValueError that says what was given and what is expected."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, numbers.Real):
        raise ValueError(f"{name} must be a number in [0, 1) (the fraction of weights removed, e.g. 0.9); "
                         f"got {sparsity!r} of type {type(sparsity).__name__}")
    if not 0.0 <= float(sparsity) < 1.0:  # also rejects nan
        raise ValueError(f"{name} must be in [0, 1) (the fraction of weights removed, e.g. 0.9); got {sparsity}")
    return float(sparsity)


def check_distribution(kind: object) -> str:
    """``kind`` if it names a distribution, else a ValueError listing them."""
    if kind not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {kind!r}; choose one of {DISTRIBUTIONS}")
    return kind


def check_empty_layers(nnz: Mapping[str, int], on_empty: str = "warn") -> list[str]:
    """The layers that ``nnz`` leaves with no weight; warn (default), raise or ignore.

    ``on_empty``: ``"warn"`` (an :class:`EmptyLayerWarning`), ``"raise"`` (a ValueError) or ``"ignore"``.
    """
    if on_empty not in ON_EMPTY:
        raise ValueError(f"on_empty must be one of {ON_EMPTY}; got {on_empty!r}")
    empty = [n for n, k in nnz.items() if k == 0]
    if empty and on_empty != "ignore":
        msg = (f"this layout keeps no weight in {empty}: nothing flows through "
               f"{'it' if len(empty) == 1 else 'them'}. Lower the sparsity, use distribution='erk'/'er' "
               f"or keep the layer dense (dense=[...]); on_empty='ignore' silences this")
        if on_empty == "raise":
            raise ValueError(msg)
        warnings.warn(msg, EmptyLayerWarning, stacklevel=3)
    return empty


def raw_scores(shapes: Mapping[str, Shape], kind: str) -> dict[str, float]:
    """Unnormalised per-layer density ``r_l`` of a distribution (see module doc)."""
    check_distribution(kind)
    scores = {}
    for name, shape in shapes.items():
        numel = math.prod(shape)
        if kind == "uniform" or len(shape) < 2:
            scores[name] = 1.0
        elif kind == "er":
            scores[name] = (shape[0] + shape[1]) / (shape[0] * shape[1])
        else:  # erk
            scores[name] = sum(shape) / numel
    return scores


def layer_nnz(
    shapes: Mapping[str, Shape],
    density: float,
    kind: str = "erk",
    dense: Sequence[str] = (),
) -> dict[str, int]:
    """Integer number of kept weights per layer for a global ``density``.

    Args:
        shapes: parameter name -> shape, e.g. ``{"fc1.weight": (300, 784)}``.
        density: fraction of all listed weights kept, in ``(0, 1]``.
        kind: ``"uniform"``, ``"er"`` or ``"erk"``.
        dense: names of layers kept fully dense (e.g. the first/last layer).

    Returns:
        name -> nnz, with ``sum(nnz) == round(density * total)``.

    Raises:
        ValueError: on a density outside ``(0, 1]``, unknown names in ``dense``
            or dense layers that alone exceed the budget.
    """
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}; sparsity = 1 - density")
    unknown = set(dense) - set(shapes)
    if unknown:
        raise ValueError(f"dense layers {sorted(unknown)} are not among the prunable layers {list(shapes)}")
    numel = {n: math.prod(s) for n, s in shapes.items()}
    budget = round(density * sum(numel.values()))
    fixed = {n: numel[n] for n in dense}
    if sum(fixed.values()) > budget:
        raise ValueError(
            f"the dense layers {list(dense)} hold {sum(fixed.values())} weights, more than the "
            f"budget of {budget} at density {density}; lower the sparsity or keep fewer layers dense"
        )
    scores = raw_scores(shapes, kind)
    # Re-solve eps until no free layer's density exceeds 1 (each pass fixes >= 1 layer).
    eps = 0.0
    while True:
        free = [n for n in shapes if n not in fixed]
        if not free:
            break
        remaining = budget - sum(fixed.values())
        eps = remaining / sum(scores[n] * numel[n] for n in free)
        over = [n for n in free if eps * scores[n] >= 1.0]
        if not over:
            break
        for n in over:
            fixed[n] = numel[n]
    real = {n: eps * scores[n] * numel[n] for n in free} if free else {}
    return {**fixed, **_round_preserving_sum(real, budget - sum(fixed.values()), numel)}


def _round_preserving_sum(real: dict[str, float], total: int, cap: dict[str, int]) -> dict[str, int]:
    """Largest-remainder rounding: floors, then +1 to the largest fractional parts."""
    out = {n: min(int(math.floor(v)), cap[n]) for n, v in real.items()}
    short = total - sum(out.values())
    order = sorted(real, key=lambda n: real[n] - math.floor(real[n]), reverse=True)
    for n in order:
        if short <= 0:
            break
        if out[n] < cap[n]:
            out[n] += 1
            short -= 1
    if short != 0:  # only reachable through float error on near-full layers
        for n in sorted(real, key=lambda n: cap[n] - out[n], reverse=True):
            add = min(short, cap[n] - out[n])
            out[n] += add
            short -= add
    return out
