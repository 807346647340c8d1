"""Pruning before and after training: selection, pruning at initialisation, layer collapse.

Selection turns scores (higher = kept, see :mod:`sparsenb.core.criteria`) into
boolean masks (True = kept) with an **exact** number of kept weights:

* :func:`global_topk`: the ``k_total`` highest scores over all layers together
  (SNIP, GraSP and SynFlow select globally in their papers);
* :func:`layerwise_topk`: the ``nnz[name]`` highest scores inside each layer
  (e.g. with the per-layer counts of an ERK or uniform distribution).

:func:`prune_at_init` scores a (usually freshly initialised) network with a
model-level criterion and prunes it to a target sparsity, in one shot or over
several rounds with the exponential schedule of SynFlow. Pruning only
**removes** weights: a weight pruned in an earlier round never comes back.
:func:`magnitude_prune` is one-shot magnitude pruning of a trained network;
fine-tuning is then ordinary training with the masks attached.

A criterion applied globally can empty a whole layer ("layer collapse",
Tanaka et al. 2020): :func:`layer_collapse` reports empty layers and whether
any path from the input to the output survives.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from .criteria import model_scores
from .distributions import layer_nnz
from .masks import Masking, resolve_dense, topk_mask

__all__ = ["global_topk", "layerwise_topk", "prune_at_init", "magnitude_prune", "layer_collapse"]


def global_topk(scores: Mapping[str, torch.Tensor], k_total: int) -> dict[str, torch.Tensor]:
    """Bool masks keeping exactly ``k_total`` weights: the highest scores over all layers.

    Args:
        scores: ``{name: score tensor}`` (any shapes, devices, float dtypes).
        k_total: number of kept weights summed over all layers, in ``[0, total]``.

    Returns:
        ``{name: bool mask of the score's shape and device}``, True = kept; ties
        are broken arbitrarily but the count is exact.
    """
    names = list(scores)
    dev = scores[names[0]].device
    flat = torch.cat([scores[n].detach().reshape(-1).to(dev, torch.float64) for n in names])
    keep = topk_mask(flat, k_total)
    out, start = {}, 0
    for n in names:
        size = scores[n].numel()
        out[n] = keep[start:start + size].view(scores[n].shape).to(scores[n].device)
        start += size
    return out


def layerwise_topk(scores: Mapping[str, torch.Tensor], nnz: Mapping[str, int]) -> dict[str, torch.Tensor]:
    """Bool masks keeping the ``nnz[name]`` highest scores of each layer (layers of ``nnz`` only)."""
    return {n: topk_mask(scores[n].detach(), k) for n, k in nnz.items()}


def _exclude_pruned(scores: dict[str, torch.Tensor], masks: Masking) -> dict[str, torch.Tensor]:
    """Scores with already-pruned weights at ``-inf``, so they are never selected again."""
    return {n: s.masked_fill(~masks.params[n].mask.to(s.device), float("-inf")) for n, s in scores.items()}


def prune_at_init(
    model: nn.Module,
    criterion: str,
    sparsity: float,
    data: Any = None,
    input_shape: Sequence[int] | None = None,
    scope: str = "global",
    distribution: str = "erk",
    iterations: int | None = None,
    dense: Sequence[str] | str = (),
    masks: Masking | None = None,
    generator: torch.Generator | None = None,
    **options: Any,
) -> Masking:
    """Prune ``model`` to ``sparsity`` with a model-level criterion; return its :class:`Masking`.

    With ``n = iterations`` rounds, round ``k = 1..n`` rescores the network with
    the current masks applied and keeps the top weights for density

        d_k = d ** (k / n),    d = 1 - sparsity

    (the exponential schedule of SynFlow, Tanaka et al. 2020, Algorithm 1;
    ``n = 1`` is one-shot pruning as in SNIP and GraSP). The last round hits
    the target exactly: ``round(d * total)`` kept weights for ``scope="global"``,
    ``layer_nnz(shapes, d, distribution, dense)`` per layer for ``"layerwise"``.

    Args:
        model: the network; its pruned weights are zeroed in place and mask
            buffers are registered on it (see :mod:`sparsenb.core.masks`).
        criterion: a name in :data:`sparsenb.core.criteria.MODEL_CRITERIA`:
            ``"snip"``, ``"grasp"``, ``"synflow"``, ``"magnitude"``, ``"random"``.
        sparsity: fraction of the masked weights removed, in ``[0, 1)``.
        data: ``(x, y)`` or a DataLoader, for ``snip``/``grasp`` (first batch
            only unless ``n_batches`` is given in ``options``).
        input_shape: shape of one example for ``synflow`` (inferred from ``data`` if omitted).
        scope: ``"global"`` (one ranking over all layers) or ``"layerwise"``.
        distribution: per-layer densities for ``scope="layerwise"`` (``"uniform"``, ``"er"``, ``"erk"``).
        iterations: number of pruning rounds; ``None`` = 100 for ``synflow`` (the
            paper), 1 otherwise.
        dense: parameter names kept dense (or ``"first_last"``...); they count
            towards the global budget but are never pruned.
        masks: start from these masks (must belong to ``model``); default: a new
            :class:`Masking` (all-ones, or the model's existing mask buffers).
        generator: random generator for ``criterion="random"``.
        **options: passed to the criterion (``n_batches``, ``loss_fn``,
            ``temperature``, ``dtype``).

    Raises:
        ValueError: on a sparsity outside ``[0, 1)``, an unknown scope, or a
            target that would need more weights than the masks still keep.
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    if scope not in ("global", "layerwise"):
        raise ValueError(f"scope must be 'global' or 'layerwise', got {scope!r}")
    n_iter = iterations if iterations is not None else (100 if criterion == "synflow" else 1)
    if n_iter < 1:
        raise ValueError(f"iterations must be >= 1, got {n_iter}")
    masks = masks if masks is not None else Masking(model)
    dense_names = resolve_dense(masks, dense)
    free = [n for n in masks.params if n not in dense_names]
    shapes = masks.shapes()
    density = 1.0 - sparsity
    for k in range(1, n_iter + 1):
        d_k = density ** (k / n_iter)
        kept = {n: int(masks.params[n].mask.sum()) for n in masks.params}
        if scope == "global":
            budget = round(d_k * masks.numel()) - sum(kept[n] for n in dense_names)
            if not 0 <= budget <= sum(kept[n] for n in free):
                raise ValueError(f"round {k}: the target of {budget} kept weights in the sparse layers is "
                                 f"outside [0, {sum(kept[n] for n in free)}] (the weights still kept)")
        else:
            nnz = layer_nnz(shapes, d_k, distribution, dense_names)
            over = {n: (nnz[n], kept[n]) for n in free if nnz[n] > kept[n]}
            if over:
                raise ValueError(f"round {k}: target nnz exceeds the kept weights (target, kept): {over}")
        scores = model_scores(criterion, model, masks, data=data, input_shape=input_shape,
                              generator=generator, **options)
        scores = _exclude_pruned({n: scores[n] for n in free}, masks)
        new = global_topk(scores, budget) if scope == "global" else layerwise_topk(scores, {n: nnz[n] for n in free})
        masks.set_masks(new)
    return masks


def magnitude_prune(model: nn.Module, masks: Masking | None, sparsity: float, scope: str = "global",
                    distribution: str = "uniform", dense: Sequence[str] | str = ()) -> Masking:
    """One-shot magnitude pruning (Han et al. 2015, NeurIPS, "Learning both Weights and
    Connections for Efficient Neural Networks"): keep the largest ``|theta|``.

    Typically applied after training; fine-tuning is then training with the
    returned masks attached (e.g. ``methods.get("fixed", masks=masks)`` with the
    :class:`~sparsenb.train.Trainer`). With existing ``masks`` only kept weights
    compete, and ``sparsity`` is measured over all masked weights.

    Args:
        scope: ``"global"`` (one threshold for all layers) or ``"layerwise"``
            (per-layer counts from ``distribution``, ``"uniform"`` by default:
            the same fraction pruned in every layer).
    """
    return prune_at_init(model, "magnitude", sparsity, scope=scope, distribution=distribution,
                         iterations=1, dense=dense, masks=masks)


# ------------------------------------------------------------ layer collapse
def _mask_items(model: nn.Module, masks: Masking | Mapping[str, torch.Tensor] | None) -> list[tuple[str, torch.Tensor]]:
    if isinstance(masks, Masking):
        return [(n, mp.mask) for n, mp in masks.params.items()]
    if masks is not None:
        return list(masks.items())
    out = []
    for mname, module in model.named_modules():
        for bname, buf in module.named_buffers(recurse=False):
            if bname.endswith("_mask") and buf.dtype == torch.bool:
                out.append((f"{mname}.{bname[:-5]}" if mname else bname[:-5], buf))
    if not out:
        raise ValueError("the model has no mask buffers; pass masks=")
    return out


@torch.no_grad()
def layer_collapse(model: nn.Module,
                   masks: Masking | Mapping[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """Empty layers and input-to-output connectivity of a **sequential** masked network.

    The masked layers are taken in order (registration order of the modules,
    which is the forward order for MLPs, LeNet and VGG-style nets; not for
    residual or branching nets) and "alive" units are propagated forward:

    * every input unit of the first layer is alive;
    * a Linear output unit ``o`` (mask ``(out, in)``) is alive if
      ``mask[o, i]`` is kept for some alive input ``i``;
    * a Conv output channel ``c`` (mask ``(out, in, *kernel)``) is alive if any
      kept kernel weight ``mask[c, i, ...]`` has an alive input channel ``i``;
    * from a conv to a linear layer (a flatten in between), channel ``c`` maps
      to the contiguous block of ``in_features / channels`` inputs it flattens to.

    Biases are ignored: a unit fed by biases only carries no signal from the input.

    Returns:
        ``{"empty_layers": [names with zero kept weights], "connected": bool
        (some output unit is alive), "alive_units": {name: alive output units}}``.
    """
    items = _mask_items(model, masks)
    alive: torch.Tensor | None = None
    alive_units: dict[str, int] = {}
    empty = []
    for name, m in items:
        m = m.to(torch.bool).cpu()
        if m.dim() < 2:
            raise ValueError(f"{name}: layer_collapse needs Linear/Conv weight masks, got shape {tuple(m.shape)}")
        if not bool(m.any()):
            empty.append(name)
        n_in = m.shape[1]
        if alive is None:
            alive_in = torch.ones(n_in, dtype=torch.bool)
        elif alive.numel() == n_in:
            alive_in = alive
        elif n_in % alive.numel() == 0:  # conv channels flattened into a linear layer
            alive_in = alive.repeat_interleave(n_in // alive.numel())
        else:
            raise ValueError(f"{name}: {n_in} inputs cannot follow {alive.numel()} units of the previous "
                             f"masked layer; layer_collapse handles sequential nets only")
        conn = m.reshape(m.shape[0], n_in, -1).any(dim=2)  # (out, in): any kept kernel weight
        alive = (conn & alive_in[None, :]).any(dim=1)
        alive_units[name] = int(alive.sum())
    return {"empty_layers": empty, "connected": bool(alive is not None and alive.any()), "alive_units": alive_units}
