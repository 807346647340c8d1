"""Sup-tickets: superposing many cheap tickets into one sparse network.

Yin, Menkovski, Fang, Huang, Pei, Pechenizkiy, Mocanu, Liu (2022), "Superposing
Many Tickets into One: A Performance Booster for Sparse Neural Network
Training", UAI 2022 (arXiv:2205.15322).

Sup-tickets splits a fixed training budget of ``E`` epochs in two phases:

1. **DST pre-training** (``E - M * C`` epochs): any dynamic sparse training
   method (SET, RigL) with its usual schedule. Its result is ticket ``θ_0``.
2. **Cyclic phase**: ``M`` cycles of ``C`` epochs each. At the start of a cycle a
   *large prune-and-regrow* (:func:`reexplore_`) replaces the fraction ``q``
   (paper: 0.5) of each layer's weights: drop the ``q · nnz_l`` smallest
   ``|w|``, regrow as many absent connections (randomly for SET, by ``|∂L/∂w|``
   for RigL) at zero. Inside the cycle the mask is **frozen** and the learning
   rate follows a triangular cycle (:func:`triangular_lr`) from ``lr_min`` up
   to ``lr_max`` at mid-cycle and back to ``lr_min``. The weights at the cycle
   end are the cheap ticket ``θ_k``.
3. **Superposition** after cycle ``k`` (the paper's cumulative averaging, CAA)::

       θ̄ ← (1 − f) θ̄ + f θ_k,   f = 1 / (k + 1),   θ̄ starts at θ_0

   (:func:`superpose_`); then the superposed network is magnitude-pruned back to
   the target nnz (:func:`magnitude_prune_`, global over layers as in the
   authors' code) and its batch-norm statistics are re-estimated on the
   training data (:func:`reestimate_bn`).

As in the official implementation (luuyin/Sup-tickets, ``main_suptickets.py``)
the averaged network carried to the next cycle is the *pruned* superposition
(``carry="pruned"``); ``carry="dense"`` keeps the exact running mean
``θ̄_k = (θ_0 + … + θ_k) / (k + 1)`` instead and prunes only a copy.

Mask semantics: 1 = kept; in the trained network pruned weights are exactly
zero after every optimizer step (the :class:`~sparsenb.core.masks.Masking` hooks);
the superposed network has its own mask buffers, equal to ``w != 0`` support of
the pruned average.
"""
from __future__ import annotations

import copy
from typing import Callable, Iterable

import torch
from torch import nn

from ..core import criteria
from ..core.masks import Masking, topk_mask
from .edst import large_drop_and_grow

__all__ = ["split_epochs", "triangular_lr", "reexplore_", "float_state", "superpose_", "magnitude_prune_",
           "reestimate_bn", "superposed_model", "dense_gradients"]


def split_epochs(epochs: int, cycle_epochs: int, cycle_rate: float) -> tuple[int, int]:
    """``(pretrain_epochs, cycles)`` of a budget of ``epochs``, as the authors split it.

    The cyclic phase gets ``epochs * cycle_rate`` epochs rounded down to whole
    cycles of ``cycle_epochs``; pre-training gets the rest. E.g. the paper's
    CIFAR setting ``(250, 8, 0.1) -> (226, 3)``.
    """
    if epochs < 1 or cycle_epochs < 1 or not 0 < cycle_rate < 1:
        raise ValueError(f"need epochs >= 1, cycle_epochs >= 1, 0 < cycle_rate < 1; "
                         f"got {epochs}, {cycle_epochs}, {cycle_rate}")
    cycles = int(epochs * cycle_rate + 1e-9) // cycle_epochs
    if cycles < 1:
        raise ValueError(f"a cyclic phase of {epochs} * {cycle_rate} epochs holds no cycle of {cycle_epochs} "
                         f"epochs: raise EPOCHS or CYCLE_RATE, or lower CYCLE_EPOCHS")
    pretrain = epochs - cycles * cycle_epochs
    if pretrain < 1:
        raise ValueError(f"no epoch is left for DST pre-training ({epochs} epochs, {cycles} cycles of "
                         f"{cycle_epochs}): lower CYCLE_RATE")
    return pretrain, cycles


def triangular_lr(t: float, lr_min: float, lr_max: float) -> float:
    """Learning rate at cycle position ``t`` in [0, 1]: ``lr_min`` at 0 and 1, ``lr_max`` at 0.5, linear between."""
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"cycle position t must be in [0, 1], got {t}")
    return lr_min + (lr_max - lr_min) * (1.0 - abs(2.0 * t - 1.0))


def dense_gradients(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor],
                    loss_fn: Callable | None = None) -> dict[str, torch.Tensor]:
    """``{param_name: ∂L/∂w}`` on one batch, dense (pruned positions included); grads are cleared after."""
    x, y = batch
    model.zero_grad(set_to_none=True)
    loss = (loss_fn or nn.functional.cross_entropy)(model(x), y)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return grads


@torch.no_grad()
def reexplore_(masks: Masking, fraction: float, growth: str, generator: torch.Generator | None = None,
               grads: dict[str, torch.Tensor] | None = None) -> list[dict]:
    """The large prune-and-regrow at a cycle start, in place; nnz of every layer is unchanged.

    For each sparse layer with ``nnz_l`` kept weights: drop the ``k = round(fraction * nnz_l)``
    smallest ``|w|``, grow ``k`` absent connections (just-dropped ones included) chosen
    uniformly at random (``growth="random"``, SET) or with the largest ``|grads[name]|``
    (``growth="gradient"``, RigL): EDST's re-exploration,
    :func:`sparsenb.methods.edst.large_drop_and_grow`. Grown weights start at zero; their optimizer moments are reset.
    Dense layers (mask all ones) are left alone.

    Returns one ``{"layer", "grown", "dropped"}`` row per changed layer.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"re-exploration fraction must be in [0, 1), got {fraction}")
    if growth not in ("random", "gradient"):
        raise ValueError(f"growth must be 'random' (SET) or 'gradient' (RigL), got {growth!r}")
    if growth == "gradient" and grads is None:
        raise ValueError("growth='gradient' needs grads={name: dense gradient}: see dense_gradients(model, batch)")
    rows = []
    for mp in masks:
        if bool(mp.mask.all()):
            continue
        grad = grads[mp.name] if growth == "gradient" else None
        scores = criteria.random(mp.mask, generator=generator) if growth == "random" else None
        new = large_drop_and_grow(mp.param, grad, mp.mask, fraction, growth, scores)
        rows.append({"layer": mp.name, **masks.update(mp.name, new, grow="zero")})
    return rows


def float_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the model's floating-point state (weights, biases, BN affine and running stats).

    Bool mask buffers and integer counters (``num_batches_tracked``) are left out: they are not averaged.
    """
    return {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}


@torch.no_grad()
def superpose_(avg: dict[str, torch.Tensor], ticket: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    """Fold ticket ``k`` (k >= 1) into the running superposition, in place: ``avg ← (1 − f) avg + f ticket``, ``f = 1/(k+1)``.

    Starting from ``avg = θ_0`` and folding ``θ_1 … θ_K`` in order gives ``avg = mean(θ_0 … θ_K)``
    (the paper's cumulative averaging). Both dicts map names to tensors of equal shapes.
    """
    if k < 1:
        raise ValueError(f"ticket index k must be >= 1 (avg starts as ticket 0), got {k}")
    if avg.keys() != ticket.keys():
        raise ValueError(f"the superposition and the ticket hold different tensors: "
                         f"{sorted(avg.keys() ^ ticket.keys())}")
    f = 1.0 / (k + 1)
    for name, t in avg.items():
        if t.shape != ticket[name].shape:
            raise ValueError(f"{name}: superposition shape {tuple(t.shape)} != ticket shape {tuple(ticket[name].shape)}")
        t.mul_(1.0 - f).add_(ticket[name].to(t.device, t.dtype), alpha=f)
    return avg


@torch.no_grad()
def magnitude_prune_(model: nn.Module, names: Iterable[str], nnz: int | dict[str, int],
                     scope: str = "global") -> Masking:
    """Keep the largest-``|w|`` weights of the layers ``names`` of ``model``; zero the rest. In place.

    ``scope="global"`` (the authors' code): ``nnz`` is an int, the total kept over all layers,
    chosen by one ranking of ``|w|`` across layers. ``scope="layer"``: ``nnz`` is
    ``{name: kept}`` per layer. The model's mask buffers are set to the kept support.
    Returns the model's :class:`Masking` (not attached to any optimizer).
    """
    masks = Masking(model, list(names))
    weights = {mp.name: mp.param for mp in masks}
    if scope == "global":
        if not isinstance(nnz, int):
            raise ValueError("scope='global' needs nnz as one int (total kept weights)")
        flat = torch.cat([w.detach().abs().reshape(-1) for w in weights.values()])
        keep = topk_mask(flat, nnz)
        new, start = {}, 0
        for name, w in weights.items():
            new[name] = keep[start:start + w.numel()].view_as(w)
            start += w.numel()
    elif scope == "layer":
        if not isinstance(nnz, dict):
            raise ValueError("scope='layer' needs nnz as {name: kept weights}")
        new = {name: topk_mask(w.detach().abs(), nnz[name]) for name, w in weights.items()}
    else:
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    for name, m in new.items():
        masks.update(name, m, values=weights[name].detach().clone())  # the kept values stay as averaged
    return masks


@torch.no_grad()
def reestimate_bn(model: nn.Module, loader: Iterable, device: str | torch.device | None = None) -> nn.Module:
    """Recompute every batch-norm layer's running mean/variance as the plain average over ``loader``.

    Resets the running statistics, sets ``momentum=None`` (cumulative average) for one
    pass in train mode without gradients, then restores the momenta and the model's mode.
    ``loader`` yields ``(x, y)`` batches; ``x`` is moved to ``device`` (default: the model's).
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return model
    device = device or next(model.parameters()).device
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    was_training = model.training
    model.train()
    for x, _ in loader:
        model(x.to(device, non_blocking=True))
    for bn, m in zip(bns, momenta):
        bn.momentum = m
    model.train(was_training)
    return model


def superposed_model(template: nn.Module, avg: dict[str, torch.Tensor], names: Iterable[str],
                     nnz: int | dict[str, int], scope: str, bn_loader: Iterable | None) -> nn.Module:
    """A copy of ``template`` holding the superposition ``avg``, magnitude-pruned to ``nnz``, BN re-estimated.

    ``bn_loader=None`` skips the re-estimation (the averaged running statistics are kept).
    ``template`` is not changed.
    """
    model = copy.deepcopy(template)
    model.load_state_dict(avg, strict=False)  # masks and counters stay the template's until pruning
    for mp in Masking(model, list(names)):
        mp.mask.fill_(True)  # the average lives on the union of the tickets' supports
    magnitude_prune_(model, names, nnz, scope)
    if bn_loader is not None:
        reestimate_bn(model, bn_loader)
    return model
