"""Sparsity-aware initialisation: variance scaling by each neuron's *kept* fan-in (and fan-out).

Evci, Ioannou, Keskin, Dauphin (2022), "Gradient Flow in Sparse Neural Networks
and How Lottery Tickets Win", AAAI; Liu, Chen, Chen, Atashgahi, Yin, Kou, Shen,
Pechenizkiy, Wang, Mocanu (2022), "The Unreasonable Effectiveness of Random
Pruning: Return of the Most Naive Baseline for Sparse Training", ICLR.

Why. Dense initialisers scale a weight by the layer's *dense* fan-in ``n_in``:
He/Kaiming ``Var(W_ij) = 2 / n_in``, Glorot ``2 / (n_in + n_out)``, PyTorch's
``nn.Linear`` default ``U(+-1/sqrt(n_in))`` (``Var = 1 / (3 n_in)``). A mask that keeps
only ``k_i`` of neuron ``i``'s ``n_in`` inputs multiplies the variance of its
pre-activation ``z_i = sum_j W_ij x_j`` by ``k_i / n_in`` (the density), so in a
deep sparse net the signal (and the gradient) shrinks by ``sqrt(density)`` per
layer: at ER epsilon = 1 and width 1000 (density 0.2 %) three hidden layers
leave ~1e-4 of the dense net's output scale and training starts at chance.
Evci et al. 2022 show this and fix it by scaling every neuron by its own kept fan-in.

The rule (W of shape ``(n_out, n_in, *kernel)``; mask ``M`` of the same shape, 1 = kept)::

    k_in(i)  = sum_{j, kernel} M[i, j, ...]       kept fan-in of output neuron i
    k_out(j) = sum_{i, kernel} M[i, j, ...]       kept fan-out of input neuron j

    "sparse_he":      W_ij ~ U(-b, b),  b = sqrt(6 / k_in(i))                Var = 2 / k_in(i)
    "sparse_glorot":  W_ij ~ U(-b, b),  b = sqrt(6 / (k_in(i) + k_out(j)))   Var = 2 / (k_in(i) + k_out(j))
    "sparse":         W_ij <- W_ij * sqrt(n_in / k_in(i))   (rescale whatever dense init the model has)

``"sparse"`` keeps the distribution family of the paper's own init and only replaces the dense
fan-in by the kept one, so it equals the sparse He rule for a He init and PyTorch's rule with
``k_in(i)`` for ``nn.Linear``'s default. With a dense mask every rule is the dense one
(``k_in = n_in``). Pruned entries stay exactly 0; a neuron with no kept input keeps none.

``"dense"`` (the default everywhere) leaves the weights as the model initialised them: the
papers' dense-scale init, so records made before this option existed are unchanged.

Regrown weights follow the same rule (:func:`grow_bound`): a method that gives a new
connection a fresh value ``U(-b, b)`` with ``b`` from a dense family (``"torch"``: ``1/sqrt(fan_in)``,
``"he"``: ``sqrt(6/fan_in)``, ``"glorot"``: ``sqrt(6/(fan_in + fan_out))``) uses the dense fans under
``init="dense"`` and the kept fans of the new mask under a sparse init.

:func:`signal_report` measures what this is about: per-layer activation and gradient scale at init.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from .masks import Masking

__all__ = ["INITS", "FAMILIES", "DENSE_INITS", "dense_init_", "arm_label", "check_init", "kept_fans", "sparse_init_", "apply_init", "grow_bound",
           "signal_report"]

INITS = ("dense", "sparse", "sparse_he", "sparse_glorot")
_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
FAMILIES = ("torch", "he", "glorot")


DENSE_INITS = ("torch", "glorot", "he_uniform")


@torch.no_grad()
def dense_init_(model: nn.Module, init: str = "torch") -> nn.Module:
    """The dense-scale init of a paper's code, in place, on every ``nn.Linear``/``nn.Conv`` layer.

    ``"torch"``: leave PyTorch's default (``U(+-1/sqrt(fan_in))`` weights and biases);
    ``"glorot"``: weights ``U(+-sqrt(6 / (fan_in + fan_out)))``, zero bias (TensorFlow/Keras'
    default ``glorot_uniform``: the SET Keras code, RigL's and CTRE's TensorFlow code);
    ``"he_uniform"``: weights ``U(+-sqrt(6 / fan_in))``, zero bias (the truly sparse SET code).
    Call it before the masks are made (they then zero the pruned entries). Returns ``model``.
    """
    if init not in DENSE_INITS:
        raise ValueError(f"unknown INIT {init!r}; choose one of {DENSE_INITS}")
    if init == "torch":
        return model
    for m in model.modules():
        if isinstance(m, _LAYERS):
            if init == "glorot":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.kaiming_uniform_(m.weight, a=0.0, nonlinearity="relu")  # bound sqrt(6 / fan_in)
            if m.bias is not None:
                m.bias.zero_()
    return model


def arm_label(method: str, init: str) -> str:
    """Name of a run of ``method`` with weight init ``init`` in results: ``method`` itself for the
    papers' ``"dense"`` init (so existing keys are unchanged), else ``"<method>+<init>_init"``."""
    return method if check_init(init) == "dense" else f"{method}+{init}_init"


def check_init(init: str) -> str:
    """Return ``init`` if it is one of :data:`INITS`, else raise a ValueError that lists them."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {INITS} (see sparsenb.core.init)")
    return init


def kept_fans(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Kept fan-in and fan-out of every connection position of ``mask`` ``(n_out, n_in, *kernel)``.

    Returns two float tensors of ``mask``'s shape: ``k_in(i)`` and ``k_out(j)`` (module docstring)
    broadcast to every position ``(i, j, ...)``.
    """
    if mask.dim() < 2:
        raise ValueError(f"kept_fans needs a weight mask of >= 2 dims (n_out, n_in, ...), got shape {tuple(mask.shape)}")
    m = mask.to(torch.float32)
    rest = tuple(range(2, m.dim()))
    per_pos_in = m.sum(dim=(1, *rest), keepdim=True)   # (n_out, 1, 1...)
    per_pos_out = m.sum(dim=(0, *rest), keepdim=True)  # (1, n_in, 1...)
    return per_pos_in.expand_as(m), per_pos_out.expand_as(m)


def _dense_fans(shape: Sequence[int]) -> tuple[int, int]:
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _bound(family: str, fan_in: Any, fan_out: Any) -> Any:
    """Half-width of the uniform init of ``family`` for the given fans (ints or tensors, >= 1)."""
    sqrt = torch.sqrt if torch.is_tensor(fan_in) else math.sqrt
    if family == "torch":
        return 1.0 / sqrt(fan_in)
    if family == "he":
        return sqrt(6.0 / fan_in)
    if family == "glorot":
        return sqrt(6.0 / (fan_in + fan_out))
    raise ValueError(f"unknown init family {family!r}; choose one of {FAMILIES}")


def grow_bound(weight: torch.Tensor, new_mask: torch.Tensor, init: str, family: str = "torch"
               ) -> float | torch.Tensor:
    """Half-width ``b`` of ``U(-b, b)`` for *new* connections of ``weight`` under ``init``.

    Args:
        weight: the parameter ``(n_out, n_in, *kernel)``.
        new_mask: its mask after growth (bool, same shape).
        init: one of :data:`INITS`. ``"dense"``: a float from ``family`` with the dense fans
            (bit-identical to the rule before sparse inits existed). ``"sparse"``: ``family``
            with the kept fans of ``new_mask``; ``"sparse_he"``/``"sparse_glorot"``: that family
            with the kept fans, whatever ``family`` says.
        family: the method's own dense rule (``"torch"``, ``"he"`` or ``"glorot"``).

    Returns:
        a float (``"dense"``) or a float tensor of ``weight``'s shape (index it with the grown positions).
    """
    check_init(init)
    if init == "dense":
        return _bound(family, *_dense_fans(weight.shape))
    fam = {"sparse": family, "sparse_he": "he", "sparse_glorot": "glorot"}[init]
    k_in, k_out = kept_fans(new_mask)
    return _bound(fam, k_in.clamp(min=1.0), k_out.clamp(min=1.0)).to(weight.device)


@torch.no_grad()
def sparse_init_(weight: torch.Tensor, mask: torch.Tensor, init: str,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Re-initialise the kept entries of ``weight`` in place by ``init`` (module docstring); pruned -> 0.

    Args:
        weight: ``(n_out, n_in, *kernel)`` (Linear or Conv weight).
        mask: bool, same shape, True = kept.
        init: one of :data:`INITS`; ``"dense"`` changes nothing.
        generator: CPU generator for the fresh draws of ``"sparse_he"``/``"sparse_glorot"``.

    Returns ``weight``.
    """
    check_init(init)
    if init == "dense":
        return weight
    if mask.shape != weight.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} != weight shape {tuple(weight.shape)}")
    mask = mask.to(weight.device, torch.bool)
    if init == "sparse":
        k_in, _ = kept_fans(mask)
        n_in = _dense_fans(weight.shape)[0]
        weight.mul_((n_in / k_in.clamp(min=1.0)).sqrt().to(weight.device, weight.dtype))
    else:
        b = grow_bound(weight, mask, init)
        u = torch.rand(weight.shape, generator=generator, dtype=torch.float32).to(weight.device)
        weight.copy_(((2 * u - 1) * b).to(weight.dtype))
    weight.masked_fill_(~mask, 0.0)
    return weight


@torch.no_grad()
def apply_init(masks: "Masking", init: str, generator: torch.Generator | None = None) -> "Masking":
    """Apply ``init`` to every masked weight of ``masks`` and remember it for regrowth (``masks.init``)."""
    check_init(init)
    for mp in masks:
        sparse_init_(mp.param, mp.mask, init, generator)
    masks.init = init
    return masks


# ----------------------------------------------------------------------------- signal propagation


def _truly_sparse(module: nn.Module) -> bool:
    """A :class:`sparsenb.layers.TrulySparseLinear` (values at (rows, cols), no dense weight)."""
    return all(hasattr(module, a) for a in ("values", "rows", "cols", "in_features", "out_features"))


def signal_report(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> list[dict[str, Any]]:
    """Per-layer activation and gradient scale of ``model`` on the batch ``x`` (e.g. at initialisation).

    Every ``nn.Linear``/``nn.Conv`` layer and every :class:`~sparsenb.layers.TrulySparseLinear`, in the
    order the forward pass reaches it, gets one row:

    * ``layer``: module name; ``density``: kept fraction of its weight (1.0 without a mask);
    * ``input_std``: std of the layer's input over all entries of the batch;
    * ``activation_std``: std of its output (the pre-activation, before the nonlinearity);
    * ``grad_std``: std of ``dL/dW`` over the *kept* weights, with ``L`` the mean cross-entropy of
      the model's output against ``y`` (omitted when ``y`` is None).

    A final row ``layer="output"`` holds the std of the model's output (``activation_std``).
    The model runs in eval mode (no dropout) and its weights, masks and gradients are left as
    they were. Masks are read from the ``<param>_mask`` buffers that :class:`sparsenb.Masking` registers.

    Args:
        model: any module (masked or not).
        x: a batch of inputs ``(N, ...)`` on the model's device.
        y: int64 labels ``(N,)`` for the gradient columns, or None.
    """
    rows: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    names = {m: n for n, m in model.named_modules()}

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        name = names[module]
        if name in rows:
            return  # a layer used twice is reported at its first use
        mask = getattr(module, "weight_mask", None)
        density = float(mask.float().mean()) if mask is not None else 1.0
        if _truly_sparse(module):
            density = module.values.numel() / (module.in_features * module.out_features)
        rows[name] = {"layer": name, "density": density, "input_std": float(inputs[0].detach().float().std()),
                      "activation_std": float(output.detach().float().std())}
        order.append(name)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _LAYERS) or _truly_sparse(m)]
    was = model.training
    saved = {n: (p.grad.clone() if p.grad is not None else None) for n, p in model.named_parameters()}
    model.eval()
    try:
        with torch.set_grad_enabled(y is not None):
            out = model(x)
            if y is not None:
                model.zero_grad(set_to_none=True)
                F.cross_entropy(out, y).backward()
                for name in order:
                    module = dict(model.named_modules())[name]
                    if _truly_sparse(module):  # only the stored connections exist
                        kept = module.values.grad.reshape(-1)
                    else:
                        g, mask = module.weight.grad, getattr(module, "weight_mask", None)
                        kept = g[mask] if mask is not None else g.reshape(-1)
                    rows[name]["grad_std"] = float(kept.float().std()) if kept.numel() > 1 else 0.0
    finally:
        for h in handles:
            h.remove()
        model.train(was)
        for n, p in model.named_parameters():
            p.grad = saved[n]
    return [rows[n] for n in order] + [{"layer": "output", "activation_std": float(out.detach().float().std())}]
