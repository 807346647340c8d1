"""Pruning before and after training: selection, pruning at initialisation, layer collapse.

Structured masks (Liu & Wang 2023, "Ten Lessons We Have Learned in the New Sparseland",
arXiv:2302.02596, compare them with unstructured ones): :func:`nm_mask` keeps exactly N of every
M consecutive input weights (N:M, e.g. the 2:4 pattern of sparse tensor cores), :func:`channel_mask`
keeps whole output units; :func:`compact_mlp` turns a channel-pruned MLP into a smaller dense one
with the same outputs (so its speed can be measured).

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

__all__ = ["global_topk", "layerwise_topk", "prune_at_init", "magnitude_prune", "layer_collapse",
           "nm_mask", "channel_mask", "compact_mlp"]


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


# ------------------------------------------------------------ structured masks
def nm_mask(weight: torch.Tensor, n: int = 2, m: int = 4, scores: torch.Tensor | None = None) -> torch.Tensor:
    """N:M mask: in every group of ``m`` consecutive weights along the input dimension, keep exactly
    the ``n`` with the largest score (default ``|weight|``); density ``n / m``.

    The input dimension is dim 1 (``in_features`` of a Linear ``(out, in)``, the input channels of a
    Conv ``(out, in, *kernel)``); for a conv the groups run over input channels at each kernel
    position (the layout of NVIDIA's 2:4 sparse tensor cores, Mishra et al. 2021, arXiv:2104.08378).
    Ties are broken by ``torch.topk``: the count per group is exact whatever the values.

    Args:
        weight: ``(out, in, ...)``, ``in`` divisible by ``m``.
        n, m: keep ``n`` of every ``m``, ``0 <= n <= m``.
        scores: optional tensor of ``weight``'s shape ranking the weights (higher = kept).

    Returns:
        bool mask of ``weight``'s shape and device, True = kept.
    """
    if weight.dim() < 2:
        raise ValueError(f"nm_mask needs a Linear/Conv weight (out, in, ...), got shape {tuple(weight.shape)}")
    if not (isinstance(n, int) and isinstance(m, int) and 0 <= n <= m and m >= 1):
        raise ValueError(f"need integers 0 <= n <= m, m >= 1; got n={n!r}, m={m!r}")
    n_in = weight.shape[1]
    if n_in % m:
        raise ValueError(f"the input dimension ({n_in}) is not divisible by m={m}")
    s = (weight.detach().abs() if scores is None else scores.detach()).to(torch.float64)
    moved = s.movedim(1, -1)  # (out, *kernel, in): groups along the last dim
    groups = moved.reshape(-1, n_in // m, m)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    if n > 0:
        keep.scatter_(-1, torch.topk(groups, n, dim=-1, sorted=False).indices, True)
    return keep.reshape(moved.shape).movedim(-1, 1).contiguous()


def channel_mask(weight: torch.Tensor, keep: int, scores: torch.Tensor | None = None) -> torch.Tensor:
    """Mask keeping exactly ``keep`` whole output units (rows, dim 0) of ``weight``: those with the largest
    score, by default the L1 norm of the row (Li et al. 2017, "Pruning Filters for Efficient ConvNets").

    Args:
        weight: ``(out, in, ...)``.
        keep: number of output units kept, in ``[0, out]``.
        scores: optional ``(out,)`` scores of the units (higher = kept).

    Returns:
        bool mask of ``weight``'s shape, every row all True or all False.
    """
    out = weight.shape[0]
    if not 0 <= keep <= out:
        raise ValueError(f"keep={keep} outside [0, {out}]")
    s = weight.detach().abs().reshape(out, -1).sum(1) if scores is None else scores.detach().reshape(out)
    rows = topk_mask(s.to(torch.float64), keep)
    return rows.view(out, *([1] * (weight.dim() - 1))).expand_as(weight).clone()


@torch.no_grad()
def compact_mlp(model: nn.Sequential, masks: Mapping[str, torch.Tensor] | Masking) -> nn.Sequential:
    """A smaller dense copy of a channel-pruned MLP that computes the same outputs.

    ``model`` is an ``nn.Sequential`` of ``Linear`` layers with elementwise, parameter-free modules
    between them (``Flatten``, ``ReLU``, ``Tanh``, ``Dropout`` in eval ...; e.g.
    :class:`sparsenb.models.classic.MLP`). An output unit of a hidden Linear whose mask row is all
    False is removed, with its bias and the matching input column of the next Linear. A removed unit
    still outputs the constant ``act(b)`` (its bias through the activations in between), so that constant
    is folded into the next layer's bias, ``b_next += W_next[:, removed] @ act(b_removed)``: the
    compact net's outputs equal those of the masked net (the weights times their masks) for every input.
    The last Linear keeps all its outputs; weights masked inside kept rows stay (zero) in the copy.

    Args:
        model: the masked MLP (left unchanged).
        masks: ``{param name: bool mask}`` (e.g. ``"1.weight"``) or a :class:`Masking`; Linear layers
            without a mask are kept whole.

    Returns:
        a new ``nn.Sequential`` with the same module types and smaller Linear layers.
    """
    import copy

    if isinstance(masks, Masking):
        masks = {n: mp.mask for n, mp in masks.params.items()}
    mods = list(model.named_children())
    linear_at = [i for i, (_, mod) in enumerate(mods) if isinstance(mod, nn.Linear)]
    if not linear_at:
        raise ValueError("compact_mlp needs an nn.Sequential with Linear layers")
    new = [copy.deepcopy(mod) for _, mod in mods]
    keep_in: torch.Tensor | None = None  # kept inputs of this Linear (= kept outputs of the previous one)
    carry: torch.Tensor | None = None  # act(bias) of the previous Linear's removed units
    for j, i in enumerate(linear_at):
        name, lin = mods[i]
        mask = masks.get(f"{name}.weight")
        w = lin.weight * mask.to(lin.weight.dtype) if mask is not None else lin.weight.clone()
        b = lin.bias.clone() if lin.bias is not None else None
        if keep_in is not None:
            if bool((~keep_in).any()):
                extra = w[:, ~keep_in] @ carry
                b = extra if b is None else b + extra
            w = w[:, keep_in]
        last = j == len(linear_at) - 1
        if last or mask is None:
            rows = torch.ones(w.shape[0], dtype=torch.bool, device=w.device)
        else:
            rows = mask.reshape(w.shape[0], -1).any(1).to(w.device)
        if not last:  # the removed units' constant output, through the modules up to the next Linear
            carry = b[~rows] if b is not None else torch.zeros(int((~rows).sum()), dtype=w.dtype, device=w.device)
            for mod in new[i + 1: linear_at[j + 1]]:
                carry = mod(carry.unsqueeze(0)).squeeze(0)
        keep_in = rows
        out = nn.Linear(w.shape[1], int(rows.sum()), bias=b is not None).to(w.device, w.dtype)
        out.weight.copy_(w[rows])
        if b is not None:
            out.bias.copy_(b[rows])
        new[i] = out
    return nn.Sequential(*new)
