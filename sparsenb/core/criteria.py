"""Pruning and growth criteria: pure functions, tensor in, score tensor out.

Higher score = more important (kept or grown first). Combine a score with
:func:`sparsenb.core.masks.topk_mask` (one layer) or :func:`sparsenb.core.pruning.global_topk`
(all layers) to select weights.

Two kinds of criteria:

* **per-tensor** criteria: ``fn(weight, **kw) -> Tensor`` of the weight's shape (random,
  magnitude, gradient magnitude): the scores the dynamic sparse methods pass to
  :func:`sparsenb.core.dropgrow.drop` and :func:`~sparsenb.core.dropgrow.grow`;
* **model-level** criteria (``MODEL_CRITERIA``, :func:`model_scores`) that need a
  forward/backward pass through the whole network (SNIP, GraSP, SynFlow). Each
  returns ``{param_name: score tensor of the parameter's shape}`` for the
  masked parameters and never changes the model: the passes run through
  :func:`torch.func.functional_call` on copies of the weights and buffers
  (batch-norm running statistics are not updated, signs are not touched).
  SNIP and GraSP run the model in its current mode (a fresh model is in train
  mode: batch-norm uses batch statistics, dropout is active); SynFlow switches
  to eval mode for its pass and restores the mode.

Masks in these functions: ``masks`` is a :class:`~sparsenb.core.masks.Masking`, a
``{name: bool tensor}`` dict (True = kept) or ``None`` (every Linear/Conv weight,
using the model's ``<param>_mask`` buffers if it has them, all-ones otherwise).
The score is computed **with the mask applied** (the network is evaluated at
``theta * m``), so a pruned weight, being zero, scores 0 (or is arbitrary for
``random``): selection code must exclude already-pruned weights itself
(:func:`sparsenb.core.pruning.prune_at_init` does).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from .masks import Masking, prunable_parameters

__all__ = [
    "random", "magnitude", "gradient_magnitude",
    "magnitude_scores", "random_scores", "snip_scores", "grasp_scores", "synflow_scores",
    "MODEL_CRITERIA", "model_scores", "take_batches",
]

MaskArg = Masking | Mapping[str, torch.Tensor] | None


def random(weight: torch.Tensor, generator: torch.Generator | None = None, **_) -> torch.Tensor:
    """Uniform random scores in [0, 1), shape of ``weight`` (the random baseline)."""
    return torch.rand(weight.shape, generator=generator).to(weight.device)


def magnitude(weight: torch.Tensor, **_) -> torch.Tensor:
    """``|w|``: keep the largest weights (Han et al. 2015; the drop rule of SET/RigL)."""
    return weight.detach().abs()


def gradient_magnitude(weight: torch.Tensor, grad: torch.Tensor | None = None,
                       out: torch.Tensor | None = None, **_) -> torch.Tensor:
    """``|dL/dw|``: the growth rule of RigL (Evci et al. 2020), needs the dense gradient.

    ``out``: a tensor of ``grad``'s shape (or a view of one) to write into instead of a new one.
    """
    if grad is None:
        raise ValueError("gradient_magnitude needs the dense gradient: call loss.backward() first")
    return grad.detach().abs() if out is None else torch.abs(grad.detach(), out=out)


# ------------------------------------------------------ model-level criteria
def _mask_dict(model: nn.Module, masks: MaskArg) -> dict[str, torch.Tensor]:
    """``{name: bool mask}`` for ``masks`` given as a Masking, a dict or ``None`` (see module doc)."""
    if isinstance(masks, Masking):
        return {n: mp.mask for n, mp in masks.params.items()}
    if masks is not None:
        return dict(masks)
    params, buffers = dict(model.named_parameters()), dict(model.named_buffers())
    out = {}
    for n in prunable_parameters(model):
        buf = buffers.get(n + "_mask")
        out[n] = buf if buf is not None else torch.ones_like(params[n], dtype=torch.bool)
    return out


def _masked_leaves(model: nn.Module, masks: MaskArg, dtype: torch.dtype | None = None,
                   absolute: bool = False) -> dict[str, torch.Tensor]:
    """Fresh leaf tensors ``theta * m`` (or ``|theta| * m``) requiring grad, one per masked weight."""
    params = dict(model.named_parameters())
    leaves = {}
    for n, m in _mask_dict(model, masks).items():
        w = params[n].detach()
        w = w.abs() if absolute else w
        w = w.to(dtype) if dtype is not None else w
        leaves[n] = (w * m.to(w.device, w.dtype)).requires_grad_(True)
    return leaves


def _buffer_copies(model: nn.Module) -> dict[str, torch.Tensor]:
    """Clones of the model's buffers, so a train-mode forward leaves BN statistics untouched."""
    return {n: b.clone() for n, b in model.named_buffers()}


def _grads(out: torch.Tensor, leaves: dict[str, torch.Tensor], create_graph: bool = False) -> dict[str, torch.Tensor]:
    """``d out / d leaf`` for every leaf; a leaf that does not reach ``out`` gets zeros."""
    gs = torch.autograd.grad(out, list(leaves.values()), create_graph=create_graph, allow_unused=True)
    return {n: torch.zeros_like(t) if g is None else g for (n, t), g in zip(leaves.items(), gs)}


def take_batches(data: Any, n_batches: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``n_batches`` ``(x, y)`` batches of ``data``.

    ``data`` is one ``(x, y)`` pair of tensors (returned as a single batch whatever
    ``n_batches``) or any iterable of such pairs, e.g. a ``DataLoader``.
    """
    if data is None:
        raise ValueError("this criterion needs data: pass a DataLoader or an (x, y) tuple "
                         "(with the Trainer: Trainer(..., init_data=train_loader))")
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(torch.is_tensor(t) for t in data):
        return [(data[0], data[1])]
    out = []
    for b in data:
        out.append((b[0], b[1]))
        if len(out) >= n_batches:
            break
    if not out:
        raise ValueError("data yielded no batch")
    return out


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def magnitude_scores(model: nn.Module, masks: MaskArg = None) -> dict[str, torch.Tensor]:
    """``|theta * m|`` per masked weight (magnitude pruning, Han et al. 2015, NeurIPS)."""
    return {n: t.detach().abs() for n, t in _masked_leaves(model, masks).items()}


def random_scores(model: nn.Module, masks: MaskArg = None,
                  generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Uniform ``[0, 1)`` scores per masked weight (random pruning, the baseline)."""
    params = dict(model.named_parameters())
    return {n: random(params[n], generator=generator) for n in _mask_dict(model, masks)}


def snip_scores(model: nn.Module, masks: MaskArg = None, batches: Any = None,
                loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
                n_batches: int = 1) -> dict[str, torch.Tensor]:
    """SNIP connection sensitivity ``|g * theta|``.

    Lee, Ajanthan, Torr (2019), "SNIP: Single-shot Network Pruning based on
    Connection Sensitivity", ICLR. With a multiplicative mask ``c`` on every
    weight, the sensitivity of connection ``j`` is (paper, Eq. 6, before the
    normalisation by the sum, which does not change the ranking)

        s_j = |dL/dc_j|  at c = 1  = |g_j * theta_j|,   g = dL/dtheta.

    Args:
        model: the network (not modified).
        masks: current masks (see the module doc); the loss is taken at ``theta * m``.
        batches: an ``(x, y)`` pair or an iterable of them (a DataLoader);
            ``g`` is averaged over the first ``n_batches`` batches (paper: one batch).
        loss_fn: ``loss_fn(logits, y)``.

    Returns:
        ``{name: |g * theta * m|}`` of each weight's shape and dtype.
    """
    leaves = _masked_leaves(model, masks)
    dev = _device(model)
    data = take_batches(batches, n_batches)
    g = {n: torch.zeros_like(t) for n, t in leaves.items()}
    for x, y in data:
        out = functional_call(model, {**_buffer_copies(model), **leaves}, (x.to(dev),))
        for n, gi in _grads(loss_fn(out, y.to(dev)), leaves).items():
            g[n] += gi / len(data)
    return {n: (g[n] * t).detach().abs() for n, t in leaves.items()}


def grasp_scores(model: nn.Module, masks: MaskArg = None, batches: Any = None, temperature: float = 200.0,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
                 n_batches: int = 1) -> dict[str, torch.Tensor]:
    """GraSP scores, sign flipped so that **higher = kept**: returns ``theta * (H g)``.

    Wang, Zhang, Grosse (2020), "Picking Winning Tickets Before Training by
    Preserving Gradient Flow", ICLR. GraSP keeps the gradient norm after
    pruning as large as possible; to first order, removing weight ``q`` changes
    ``g^T g`` by ``-2 theta_q (H g)_q``. The paper's score (Eq. 8) is

        S(-theta) = -theta * (H g),

    and GraSP **removes** the weights with the **highest** ``S(-theta)``. This
    function returns ``theta * (H g) = -S(-theta)``, so that, like every other
    criterion here, the weights with the highest returned score are kept.
    Scores can be negative; the selection is global in the paper.

    ``g`` is the gradient of the loss of ``logits / temperature`` (T = 200 in
    the authors' code) with respect to the masked weights, averaged over the
    batches; ``H g`` is the Hessian-gradient product computed by double
    backprop, ``H g = d(g_detached^T dL/dtheta)/dtheta``. Only the masked
    weights form the vector ``theta`` (biases and norm parameters are fixed).

    Args:
        model: the network (not modified).
        masks: current masks; the passes run at ``theta * m``.
        batches: an ``(x, y)`` pair or an iterable of them; the first ``n_batches``
            are used (the paper uses 10 examples per class).
        temperature: logits are divided by it before ``loss_fn``.

    Returns:
        ``{name: theta * m * (H g)}`` of each weight's shape and dtype.
    """
    leaves = _masked_leaves(model, masks)
    dev = _device(model)
    data = [(x.to(dev), y.to(dev)) for x, y in take_batches(batches, n_batches)]

    def loss(x, y):
        return loss_fn(functional_call(model, {**_buffer_copies(model), **leaves}, (x,)) / temperature, y)

    g = {n: torch.zeros_like(t) for n, t in leaves.items()}
    for x, y in data:
        for n, gi in _grads(loss(x, y), leaves).items():
            g[n] += gi / len(data)
    hg = {n: torch.zeros_like(t) for n, t in leaves.items()}
    for x, y in data:
        gb = _grads(loss(x, y), leaves, create_graph=True)
        z = sum((g[n] * gb[n]).sum() for n in leaves)
        if not z.requires_grad:  # a loss that is linear in theta: H = 0
            continue
        for n, hi in _grads(z, leaves).items():
            hg[n] += hi / len(data)
    return {n: (t * hg[n]).detach() for n, t in leaves.items()}


def synflow_scores(model: nn.Module, masks: MaskArg = None, input_shape: Sequence[int] | None = None,
                   dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    """SynFlow synaptic saliency ``|theta * dR/dtheta|`` of the sign-linearised net (data-free).

    Tanaka, Kunin, Yamins, Ganguli (2020), "Pruning neural networks without any
    data by iteratively conserving synaptic flow", NeurIPS. Every parameter
    and floating buffer is replaced by its absolute value (the paper's code
    does this in place and restores the signs afterwards; here the pass runs on
    copies, so nothing needs restoring), the model is put in eval mode and in
    ``dtype`` (double, to avoid overflow), the input is all ones of shape
    ``(1, *input_shape)`` and (paper, Eq. 2)

        R = 1^T ( prod_l |theta^[l]| ) 1,    S(theta) = |theta * dR/dtheta|,

    where ``theta`` is ``|theta| * m`` (the current mask applied). For a
    bias-free 2-layer linear net ``R = 1^T |W2| |W1| 1`` and
    ``S(W1[i, j]) = |W1[i, j]| * sum_k |W2[k, i]|``.

    Args:
        model: the network (not modified; its train/eval mode is restored).
        masks: current masks.
        input_shape: shape of one example, e.g. ``(1, 28, 28)``.
        dtype: precision of the pass (on Apple MPS, which has no float64, float32 is used).

    Returns:
        ``{name: score}`` of each weight's shape, in ``dtype`` (float64 by default:
        in deep nets the scores span many orders of magnitude).
    """
    if input_shape is None:
        raise ValueError("synflow needs input_shape, the shape of one example, e.g. (1, 28, 28)")
    if _device(model).type == "mps" and dtype == torch.float64:
        dtype = torch.float32
    was_training = model.training
    model.eval()
    try:
        state = {n: p.detach().abs().to(dtype) for n, p in model.named_parameters()}
        state.update({n: b.detach().abs().to(dtype) for n, b in model.named_buffers() if b.is_floating_point()})
        leaves = _masked_leaves(model, masks, dtype=dtype, absolute=True)
        x = torch.ones((1, *input_shape), dtype=dtype, device=_device(model))
        r = functional_call(model, {**state, **leaves}, (x,)).sum()
        grads = _grads(r, leaves)
    finally:
        model.train(was_training)
    return {n: (grads[n] * t).detach().abs() for n, t in leaves.items()}


def _input_shape(data: Any, input_shape: Sequence[int] | None) -> Sequence[int]:
    if input_shape is not None:
        return input_shape
    if data is None:
        raise ValueError("synflow is data-free but needs input_shape (the shape of one example) or some data")
    x, _ = take_batches(data, 1)[0]
    return tuple(x.shape[1:])


def _magnitude(model, masks, data=None, input_shape=None, generator=None, **_):
    return magnitude_scores(model, masks)


def _random(model, masks, data=None, input_shape=None, generator=None, **_):
    return random_scores(model, masks, generator=generator)


def _snip(model, masks, data=None, input_shape=None, generator=None, **kw):
    return snip_scores(model, masks, data, **kw)


def _grasp(model, masks, data=None, input_shape=None, generator=None, **kw):
    return grasp_scores(model, masks, data, **kw)


def _synflow(model, masks, data=None, input_shape=None, generator=None, dtype=torch.float64, **_):
    return synflow_scores(model, masks, _input_shape(data, input_shape), dtype=dtype)


MODEL_CRITERIA: dict[str, Callable[..., dict[str, torch.Tensor]]] = {
    "magnitude": _magnitude, "random": _random, "snip": _snip, "grasp": _grasp, "synflow": _synflow,
}
"""name -> ``fn(model, masks, data, input_shape, generator, **options) -> {name: score}``."""


def model_scores(name: str, model: nn.Module, masks: MaskArg = None, data: Any = None,
                 input_shape: Sequence[int] | None = None, generator: torch.Generator | None = None,
                 **options: Any) -> dict[str, torch.Tensor]:
    """Score every masked weight of ``model`` with the model-level criterion ``name``.

    ``data`` (an ``(x, y)`` pair or a DataLoader) is needed by ``snip`` and ``grasp``;
    ``input_shape`` by ``synflow`` (or inferred from ``data``); ``generator`` by
    ``random``. ``options`` go to the criterion (``loss_fn``, ``n_batches``,
    ``temperature`` for GraSP, ``dtype`` for SynFlow).
    """
    if name not in MODEL_CRITERIA:
        raise ValueError(f"unknown model criterion {name!r}; choose one of {sorted(MODEL_CRITERIA)}")
    return MODEL_CRITERIA[name](model, masks, data=data, input_shape=input_shape, generator=generator, **options)
