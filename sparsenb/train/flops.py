"""FLOPs accounting for dense and sparse training, following the convention of RigL.

Evci et al., "Rigging the Lottery: Making All Tickets Winners", ICML 2020, Appendix H:

* inference cost ``f``: the multiply-accumulates (MACs) of one forward pass of one example
  through the weight layers (Linear, Conv1d/2d/3d, incl. grouped and depthwise). Each kept
  weight is used once per output position, so a layer costs ``nnz(W) * positions``; a
  masked layer counts only its kept weights (its ``weight_mask`` buffer, see
  :mod:`sparsenb.core.masks`, else the nonzeros of its weight). Biases, batch norm, activations
  and pooling are not counted: they are the same for dense and sparse nets and small.
* one training step costs ``3 f`` per example: the forward pass, the gradient with respect
  to the activations (``f``) and the gradient with respect to the weights (``f``).
* static sparse, SET, CTRE, ...: ``3 f_S`` per step (a mask update every ΔT steps is
  O(nnz) and neglected).
* RigL needs the dense gradient at every mask update step, so on average per step
  ``(3 f_S ΔT + 2 f_S + f_D) / (ΔT + 1)`` (Eq. in RigL, App. H).
* dense training: ``3 f_D`` per step.

Each method answers its own cost per step (:meth:`sparsenb.methods.Method.step_macs`), so no
method name is looked up here.

All counts are per example; multiply by the number of examples seen (steps x batch size).
We report MACs; FLOPs are about twice that, and ratios are what the notebooks compare.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import torch
from torch import nn

if TYPE_CHECKING:
    from ..methods.base import Method

__all__ = ["layer_macs", "forward_macs", "training_macs", "relative", "sparse_run_macs",
           "ensemble_macs"]

_WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _kept(module: nn.Module, masked: bool) -> int:
    w = module.weight
    if not masked:
        return w.numel()
    mask = getattr(module, "weight_mask", None)
    if mask is not None:
        return int(mask.sum())
    return int((w != 0).sum())


@torch.no_grad()
def layer_macs(model: nn.Module, example: torch.Tensor | tuple, masked: bool = True) -> dict[str, int]:
    """Forward MACs per example of every weight layer, by name.

    ``example``: a batch of inputs (any batch size B >= 1; a tuple is passed as ``model(*example)``).
    ``masked``: count only kept weights (True) or every weight (False, the dense cost of the
    same architecture). The model is run in eval mode, then its mode is restored.
    Returns ``{module_name: MACs per example}`` for every Linear/Conv module that ran.
    """
    counts: dict[str, int] = {}
    hooks = []

    def hook(name: str):
        def fn(module: nn.Module, inputs, output: torch.Tensor) -> None:
            batch = inputs[0].shape[0] if inputs[0].dim() > 1 else 1
            if isinstance(module, nn.Linear):
                positions = output.numel() // (batch * module.out_features)
            else:  # conv: output (B, C_out, *spatial)
                positions = output[0, 0].numel()
            counts[name] = counts.get(name, 0) + _kept(module, masked) * positions
        return fn

    for name, module in model.named_modules():
        if isinstance(module, _WEIGHT_LAYERS):
            hooks.append(module.register_forward_hook(hook(name)))
    was_training = model.training
    model.eval()
    try:
        model(*example) if isinstance(example, tuple) else model(example)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    if not counts:
        raise ValueError("the model ran no Linear/Conv layer on this input; nothing to count")
    return counts


def forward_macs(model: nn.Module, example: torch.Tensor | tuple, masked: bool = True) -> int:
    """Total forward MACs per example (the sum of :func:`layer_macs`)."""
    return sum(layer_macs(model, example, masked).values())


def training_macs(method: "Method", examples_seen: int, f_sparse: float, f_dense: float | None = None) -> float:
    """Total training MACs: ``examples_seen`` (epochs x training-set size) x the method's average
    MACs per example per step, :meth:`sparsenb.methods.Method.step_macs` (``3 f_S`` for a sparse
    method with fixed-cost steps, ``3 f_D`` for ``dense``, RigL's App. H average for ``rigl``).
    ``f_dense`` defaults to ``f_sparse``."""
    if examples_seen < 0:
        raise ValueError(f"examples_seen must be >= 0, got {examples_seen}")
    return examples_seen * method.step_macs(f_sparse, f_sparse if f_dense is None else f_dense)


def relative(costs: Mapping[str, float], baseline: str) -> dict[str, float]:
    """Each cost divided by ``costs[baseline]`` (e.g. relative to one dense training run)."""
    if baseline not in costs:
        raise KeyError(f"baseline {baseline!r} not in {sorted(costs)}")
    base = costs[baseline]
    if base <= 0:
        raise ValueError(f"baseline cost must be positive, got {base}")
    return {k: v / base for k, v in costs.items()}


def sparse_run_macs(steps: int, batch_size: int, f_sparse: float, f_dense: float | None = None,
                    dense_grad_steps: int = 0) -> float:
    """Exact training MACs of one sparse run, counting each step that needs the dense gradient.

    Each of the ``steps`` optimizer steps processes ``batch_size`` examples at ``3 f_S``
    (RigL App. H), except the ``dense_grad_steps`` mask updates that grow by gradient
    (RigL, EDST/DST with ``growth="gradient"``): they also compute the dense weight
    gradient, ``2 f_S + f_D`` per example instead of ``3 f_S``. With one such step every
    ``ΔT + 1`` steps this equals RigL's :meth:`~sparsenb.methods.rigl.RigL.step_macs` times the examples seen.
    A last partial batch is counted as a full one (an upper bound of at most one batch per epoch).
    """
    if steps < 0 or batch_size < 1 or not 0 <= dense_grad_steps <= steps:
        raise ValueError(f"need steps >= 0, batch_size >= 1, 0 <= dense_grad_steps <= steps; got "
                         f"{steps}, {batch_size}, {dense_grad_steps}")
    if dense_grad_steps and f_dense is None:
        raise ValueError("dense_grad_steps > 0 needs f_dense, the dense forward MACs")
    per_example = (steps - dense_grad_steps) * 3.0 * f_sparse
    if dense_grad_steps:
        per_example += dense_grad_steps * (2.0 * f_sparse + f_dense)
    return batch_size * per_example


def ensemble_macs(member_macs: "list[float] | tuple[float, ...]") -> float:
    """Cost of an ensemble: the sum of its members' costs (training MACs of M independent runs,
    or inference MACs per example of M members, whose softmax outputs are then averaged).
    An EDST ensemble is *one* run: its training cost is that run's, not a sum over tickets."""
    if len(member_macs) == 0:
        raise ValueError("an ensemble needs at least one member")
    return float(sum(member_macs))
