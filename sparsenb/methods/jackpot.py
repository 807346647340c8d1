"""Lottery jackpots: a sparse subnetwork of a *pretrained* network found by training scores only.

Zhang, Lin et al. (2023), TPAMI, "Lottery Jackpots Exist in Pre-trained Models"
(arXiv:2104.08700); official code zyxxmu/lottery-jackpots (``utils/conv_type.py``, ``cifar.py``).

The pretrained weights ``W`` are frozen; every scored weight gets a real score ``S`` and the forward
pass uses ``W * M`` with a binary mask ``M``. The backward pass is straight-through
(``dL/dS = dL/d(W*M) * W``, :class:`sparsenb.layers.scores.ScoredWeight` with ``rank="raw"``).
Four choices make it a *jackpot* search rather than edge-popup (Ramanujan et al. 2020):

1. **Per-layer budgets from global magnitude pruning.** ``n_l`` = the number of weights of layer ``l``
   below the global magnitude threshold that keeps ``round((1 - s) * N)`` of the ``N`` scored weights
   (:func:`magnitude_masks`). The official code does this over the conv layers; the last fully
   connected layer stays dense (:func:`jackpot_targets`, ``keep_last_dense=True``).
2. **Scores start at the magnitude mask**: ``S_i = 1`` where magnitude pruning keeps ``W_i``,
   ``S_i = 0.99`` where it prunes it, and ``M`` starts as the magnitude mask.
3. **Short restriction** (:func:`short_restriction`), applied after every optimizer step. With
   ``t`` = the ``n_l``-th smallest score of the layer,

       up   = {i : M_i = 0 and S_i > t}     (pruned, but its score now ranks among the kept)
       down = {i : M_i = 1 and S_i <= t}    (kept, but its score now ranks among the pruned)

   if ``|up| = |down| > 0`` the two sets swap (``M_up <- 1``, ``M_down <- 0``), otherwise ``M`` stays.
   So ``M`` changes only where a score *crosses* the layer's threshold, and each layer keeps exactly
   ``numel_l - n_l`` weights at every step. (The official ``final_pop_up(rate)`` swaps
   ``ceil(rate * |up|)`` of them, with ``rate = ceil((1 - epoch / epochs) ** 4)``, which is 1 for
   every epoch it is called with, so all crossing pairs swap: what this module does.)
4. Only the scores are trained (official: SGD lr 0.1, momentum 0.9, weight decay 5e-4 on the
   scores, cosine schedule, 30 epochs, batch 256).

Mask semantics: bool, 1 = kept; the effective weight is exactly ``W * M``. Parameters (weights,
biases, batch-norm affine) never change; batch-norm running statistics do follow the masked
network when the model runs in train mode (as in the official code, which searches in train mode).
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..core.pruning import global_topk
from ..layers.scores import Popup, ScoredWeight

__all__ = ["jackpot_targets", "magnitude_masks", "short_restriction", "Jackpot", "edge_popup", "mask_overlap"]

Target = tuple[str, nn.Module, str]


def jackpot_targets(model: nn.Module, keep_last_dense: bool = True) -> list[Target]:
    """``(name, module, "weight")`` of every ``Conv2d`` and ``Linear`` of ``model`` in module order,
    without the last ``Linear`` (the output layer, dense in the official code) if ``keep_last_dense``."""
    found = [(f"{n}.weight" if n else "weight", m, "weight") for n, m in model.named_modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    if keep_last_dense:
        last = max((i for i, (_, m, _) in enumerate(found) if isinstance(m, nn.Linear)), default=None)
        if last is not None:
            found.pop(last)
    if not found:
        raise ValueError(f"{type(model).__name__} has no Conv2d/Linear weights to score")
    return found


@torch.no_grad()
def magnitude_masks(weights: dict[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """Global magnitude pruning: bool masks (1 = kept) keeping exactly ``round((1 - sparsity) * N)``
    of the ``N`` weights, those of largest ``|W|`` over all layers (ties broken by position)."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    total = sum(w.numel() for w in weights.values())
    return global_topk({n: w.abs() for n, w in weights.items()}, round((1.0 - sparsity) * total))


@torch.no_grad()
def short_restriction(scores: torch.Tensor, mask: torch.Tensor, n_pruned: int) -> tuple[torch.Tensor, int]:
    """One short-restriction update of one layer (module doc, step 3).

    Args:
        scores: float tensor, any shape.
        mask: bool tensor of the same shape (1 = kept) with exactly ``n_pruned`` zeros.
        n_pruned: the layer's number of pruned weights.

    Returns:
        ``(new mask, number of swapped pairs)``; the new mask has exactly ``n_pruned`` zeros.
    """
    if mask.shape != scores.shape:
        raise ValueError(f"mask {tuple(mask.shape)} and scores {tuple(scores.shape)} differ")
    if int((~mask).sum()) != n_pruned:
        raise ValueError(f"mask has {int((~mask).sum())} pruned weights, expected {n_pruned}")
    if n_pruned == 0 or n_pruned == mask.numel():
        return mask.clone(), 0
    s, m = scores.detach().reshape(-1), mask.reshape(-1)
    t = torch.kthvalue(s, n_pruned).values
    up, down = ~m & (s > t), m & (s <= t)
    n_up, n_down = int(up.sum()), int(down.sum())
    if n_up == 0 or n_up != n_down:
        return mask.clone(), 0
    new = m.clone()
    new[up] = True
    new[down] = False
    return new.view_as(mask), n_up


def mask_overlap(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """``|a ∩ b| / |b|`` over all layers: the fraction of ``b``'s kept weights that ``a`` keeps too
    (for masks with equal counts it is symmetric)."""
    both = sum(int((a[n] & b[n]).sum()) for n in b)
    return both / max(1, sum(int(b[n].sum()) for n in b))


class Jackpot:
    """Freeze ``model`` and attach jackpot scores and masks to its :func:`jackpot_targets`.

    Args:
        model: a pretrained network (its weights are used as they are, never changed).
        sparsity: fraction of the scored weights pruned, in [0, 1); split over layers by global magnitude.
        targets: tensors to score (default :func:`jackpot_targets` of ``model``).
        kept_score / pruned_score: initial scores where magnitude pruning keeps / prunes (1, 0.99).
        init: ``"magnitude"`` (the jackpot: scores and mask from the magnitude mask) or ``"random"``
            (ablation: scores ``U(0, 1)`` drawn with ``generator``, mask = their per-layer top-k at the
            same per-layer counts).

    Attributes:
        names: scored tensor names; ``n_pruned``: name -> pruned count (fixed); ``start``: name -> the
        initial mask (bool, 1 = kept); ``swaps``: total swapped pairs so far; ``max_deviation``: the
        largest ``|nnz - target|`` seen by :meth:`restrict` (0 if the sparsity stayed exact).

    Call :meth:`restrict` after every optimizer step; :meth:`parameters` are the scores.
    """

    def __init__(self, model: nn.Module, sparsity: float, targets: list[Target] | None = None,
                 kept_score: float = 1.0, pruned_score: float = 0.99, init: str = "magnitude",
                 generator: torch.Generator | None = None):
        if init not in ("magnitude", "random"):
            raise ValueError(f"init must be 'magnitude' or 'random', got {init!r}")
        targets = jackpot_targets(model) if targets is None else list(targets)
        self.model, self._targets, self.sparsity = model, targets, float(sparsity)
        self.names = [n for n, _, _ in targets]
        for p in model.parameters():
            p.requires_grad_(False)
        weights = {n: getattr(mod, attr).detach() for n, mod, attr in targets}
        masks = magnitude_masks(weights, sparsity)
        self.magnitude = {n: m.clone() for n, m in masks.items()}
        self.n_pruned = {n: int((~m).sum()) for n, m in masks.items()}
        self.scored: dict[str, ScoredWeight] = {}
        for name, module, attr in targets:
            w = weights[name]
            if init == "magnitude":
                scores = torch.where(masks[name], torch.full_like(w, kept_score), torch.full_like(w, pruned_score))
                start = masks[name]
            else:
                scores = torch.rand(w.shape, generator=generator).to(w)
                start = torch.zeros_like(masks[name])
                keep = w.numel() - self.n_pruned[name]
                if keep:
                    start.view(-1)[torch.topk(scores.reshape(-1), keep).indices] = True
            par = ScoredWeight(scores, rank="raw")
            par.mask.copy_(start)
            parametrize.register_parametrization(module, attr, par, unsafe=True)
            module.parametrizations[attr].original.requires_grad_(False)
            self.scored[name] = par
        self.start = {n: p.mask.clone() for n, p in self.scored.items()}
        self.swaps = 0
        self.max_deviation = 0

    @torch.no_grad()
    def restrict(self) -> int:
        """The short restriction on every layer; returns the pairs swapped in this call."""
        swapped = 0
        for name, p in self.scored.items():
            new, k = short_restriction(p.scores, p.mask, self.n_pruned[name])
            p.mask.copy_(new)
            swapped += k
            self.max_deviation = max(self.max_deviation, abs(int((~p.mask).sum()) - self.n_pruned[name]))
        self.swaps += swapped
        return swapped

    def parameters(self) -> Iterable[nn.Parameter]:
        """The scores (the only trainable tensors)."""
        return [p.scores for p in self.scored.values()]

    def masks(self) -> dict[str, torch.Tensor]:
        """name -> current bool mask (1 = kept), shaped like the weight."""
        return {n: p.mask for n, p in self.scored.items()}

    def frozen(self) -> dict[str, torch.Tensor]:
        """name -> the frozen weight tensor ``W`` (the parametrization's original)."""
        return {n: mod.parametrizations[attr].original for n, mod, attr in self._targets}

    def density_report(self) -> dict[str, dict[str, float]]:
        """name -> {"nnz", "numel", "density", "target_nnz"} of the current masks."""
        return {n: {"nnz": int(p.mask.sum()), "numel": p.mask.numel(), "density": float(p.mask.float().mean()),
                    "target_nnz": p.mask.numel() - self.n_pruned[n]} for n, p in self.scored.items()}

    def remove(self) -> None:
        """Bake ``W * M`` into plain weights and drop the scores."""
        for _, module, attr in self._targets:
            if parametrize.is_parametrized(module, attr):
                parametrize.remove_parametrizations(module, attr, leave_parametrized=True)


def edge_popup(model: nn.Module, keep: dict[str, int], targets: list[Target] | None = None,
               generator: torch.Generator | None = None) -> Popup:
    """Edge-popup (Ramanujan et al. 2020) over ``model``'s own (frozen) weights from random scores:
    :class:`sparsenb.layers.scores.Popup` with layerwise top-k of ``|S|`` at the given per-layer kept
    counts ``keep`` (name -> count; e.g. the jackpot's), scores ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
    (the edge-popup code's init), masks recomputed before every forward pass."""
    targets = jackpot_targets(model) if targets is None else list(targets)
    total = sum(getattr(m, a).numel() for _, m, a in targets)
    sparsity = 1.0 - sum(keep.values()) / total
    return Popup(model, sparsity, scope="layerwise", weight_init=None, score_init="fan_in_uniform",
                 generator=generator, rank="abs", targets=targets, keep=keep)
