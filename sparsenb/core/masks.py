"""The mask container: one boolean mask per prunable parameter.

Mask semantics (the contract every method and test relies on)
-------------------------------------------------------------
* A mask has the parameter's shape, dtype ``torch.bool`` and lives on the
  parameter's device. ``True`` (1) = the weight is kept, ``False`` = pruned.
* Each mask is registered as a buffer ``<param>_mask`` on the module that owns
  the parameter, so ``model.state_dict()`` saves it and ``load_state_dict``
  restores it (in place: the container keeps pointing at the same tensors).
* Once attached to an optimizer (:meth:`Masking.attach`), the masks are
  re-applied *after* every ``optimizer.step()``, so pruned weights are exactly
  zero after every step whatever the optimizer (momentum, Adam, weight decay)
  does. A plain ``loss.backward(); opt.step()`` loop stays exactly sparse.
* Gradients of pruned weights are zeroed *before* the step only where the
  contract needs it. An *elementwise* optimizer (:data:`ELEMENTWISE_OPTIMIZERS`:
  SGD with or without momentum, Nesterov and weight decay, Adam, AdamW, Adamax,
  NAdam, RAdam, RMSprop, Adagrad) updates each weight from its own gradient and
  its own moments only, so a pruned gradient can move nothing but the pruned
  weight itself (re-zeroed after the step) and its own moments (reset when the
  weight is regrown, see below): the kept weights follow bit for bit the same
  trajectory as with masked gradients (``tests/test_masks.py`` checks this for
  every optimizer in that list, across a mask update). For these optimizers the
  pre-step mask is skipped (it costs a full pass over every weight's gradient);
  the moments held *at pruned positions* are then not zero, but they are never
  used. Every other optimizer (LBFGS, Adafactor, Rprop, any user class:
  whole-tensor statistics or state that a reset to zero does not restore)
  gets its pruned gradients zeroed before each step, also inside
  ``step(closure)``. ``attach(optimizer, mask_grads=True)`` forces the mask.
* :meth:`Masking.update` changes a mask; weights that are newly grown get a
  value from the chosen policy (``"zero"`` or a fresh ``"init"``) and their
  optimizer moments (momentum buffer, Adam ``exp_avg``/``exp_avg_sq``, ...)
  are reset to their starting value (zero; Rprop's step size: the learning rate; Adagrad's
  sum: its initial accumulator value); those of dropped weights too.
* Biases and normalisation parameters are never masked unless named.

How masks are applied (cost): besides the bool buffer (the saved state), the
container keeps each mask as a float tensor in its parameter's dtype, rebuilt
only when a mask, a parameter's dtype/device or the parameter object changes
(detected through the tensors' in-place version counters, so ``update``,
``load_state_dict`` and direct in-place edits of a mask buffer are all seen).
Re-masking is then one fused ``torch._foreach_mul_`` over all masked layers
(layers whose mask keeps everything are skipped). A pruned weight becomes
``w * 0.0``: zero, with the sign of ``w`` (``-0.0 == 0``); only a pruned weight
(or gradient) that is already inf or NaN stays NaN, i.e. a run that has diverged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import torch
from torch import nn

from . import init as sparse_init
from . import seeding
from .distributions import check_distribution, check_empty_layers, check_sparsity, layer_nnz

__all__ = ["Masking", "MaskedParam", "prunable_parameters", "sparsify", "density_report", "topk_mask",
           "ELEMENTWISE_OPTIMIZERS"]

PRUNABLE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

#: Optimizers whose update of a weight reads only that weight, its own gradient and its own
#: state tensors (plus per-parameter scalars such as Adam's ``step``). With them the
#: gradients of pruned weights need no masking before the step (see the module docstring).
#: Exact types only: a subclass may override ``step``.
ELEMENTWISE_OPTIMIZERS: tuple[type, ...] = (
    torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.Adamax, torch.optim.NAdam,
    torch.optim.RAdam, torch.optim.RMSprop, torch.optim.Adagrad,
)


def prunable_parameters(model: nn.Module, include: Sequence[str] | None = None) -> list[str]:
    """Names of the weights pruned by default: weights of Linear and Conv layers.

    Biases, batch-norm and embedding parameters are left dense. ``include``
    replaces the default by an explicit list of parameter names.
    """
    if include is not None:
        names = dict(model.named_parameters())
        missing = [n for n in include if n not in names]
        if missing:
            raise ValueError(f"parameters {missing} not in the model; it has {list(names)}")
        return list(include)
    return [
        f"{mname}.weight" if mname else "weight"
        for mname, m in model.named_modules()
        if isinstance(m, PRUNABLE_TYPES)
    ]


def topk_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask of ``scores``' shape with exactly ``k`` True at the largest scores."""
    flat = scores.reshape(-1)
    if not 0 <= k <= flat.numel():
        raise ValueError(f"k={k} outside [0, {flat.numel()}]")
    mask = torch.zeros_like(flat, dtype=torch.bool)
    if k > 0:
        mask[torch.topk(flat, k, sorted=False).indices] = True
    return mask.view_as(scores)


@dataclass
class MaskedParam:
    """One masked parameter: where it lives and its mask buffer."""

    name: str  # full parameter name, e.g. "fc1.weight"
    module: nn.Module
    attr: str  # attribute on the module, e.g. "weight"

    @property
    def param(self) -> nn.Parameter:
        return getattr(self.module, self.attr)

    @property
    def mask(self) -> torch.Tensor:
        return getattr(self.module, f"{self.attr}_mask")


class Masking:
    """Boolean masks over a model's prunable weights (see the module docstring).

    Build it with :func:`sparsify` or directly::

        masks = Masking(model)                      # all-ones masks on Linear/Conv weights
        masks.set_random({"fc1.weight": 1000, ...}) # exact nnz per layer
        masks.attach(optimizer)                     # exact sparsity in any training loop
    """

    def __init__(self, model: nn.Module, names: Sequence[str] | None = None):
        self.model = model
        self.optimizer: torch.optim.Optimizer | None = None
        self.grads_masked = False  # set by attach(): does the pre-step hook mask gradients?
        self.init = "dense"  # rule for grow="init" values (sparsenb.core.init; set by sparsify/methods)
        self._hooks: list = []
        self._fused_key: tuple | None = None  # see _fused_masks
        self._fused_refs: list = []
        self._fused: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
        modules = dict(model.named_modules())
        self.params: dict[str, MaskedParam] = {}
        for name in prunable_parameters(model, names):
            mname, _, attr = name.rpartition(".")
            module = modules[mname]
            p = getattr(module, attr)
            buf = f"{attr}_mask"
            if not hasattr(module, buf):
                module.register_buffer(buf, torch.ones_like(p, dtype=torch.bool))
            self.params[name] = MaskedParam(name, module, attr)
        if not self.params:
            raise ValueError("the model has no prunable (Linear/Conv) weights; pass names=[...] explicitly")

    # ----------------------------------------------------------------- access
    def __iter__(self) -> Iterator[MaskedParam]:
        return iter(self.params.values())

    def __len__(self) -> int:
        return len(self.params)

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.params[name].mask

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {n: tuple(mp.param.shape) for n, mp in self.params.items()}

    def nnz(self) -> int:
        return int(sum(int(torch.count_nonzero(mp.mask)) for mp in self))

    def numel(self) -> int:
        return int(sum(mp.mask.numel() for mp in self))

    def density(self) -> float:
        return self.nnz() / self.numel()

    def report(self) -> dict[str, dict]:
        """``{name: {"nnz", "numel", "density"}}`` of the masks (not of the weights)."""
        out = {}
        for n, mp in self.params.items():
            nnz, numel = int(torch.count_nonzero(mp.mask)), mp.mask.numel()
            out[n] = {"nnz": nnz, "numel": numel, "density": nnz / numel}
        return out

    # ------------------------------------------------------- set whole masks
    def set_masks(self, masks: dict[str, torch.Tensor], grow: str = "zero") -> None:
        """Replace masks by name (any subset). See :meth:`update` for ``grow``."""
        for name, m in masks.items():
            self.update(name, m, grow=grow)

    def set_random(self, nnz: dict[str, int], generator: torch.Generator | None = None) -> None:
        """Random masks with exactly ``nnz[name]`` kept weights per layer."""
        for name, k in nnz.items():
            p = self.params[name].param
            scores = torch.rand(p.shape, generator=generator).to(p.device)
            self.update(name, topk_mask(scores, k), grow="zero")

    def set_by_score(self, scores: dict[str, torch.Tensor], nnz: dict[str, int]) -> None:
        """Keep the ``nnz[name]`` highest-scoring weights of each layer."""
        for name, k in nnz.items():
            self.update(name, topk_mask(scores[name], k), grow="zero")

    # ------------------------------------------------------------ the core op
    @torch.no_grad()
    def update(self, name: str, new_mask: torch.Tensor, grow: str = "zero",
               values: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> dict[str, int]:
        """Replace one mask, give grown weights a value, reset their optimizer state.

        Args:
            name: parameter name.
            new_mask: bool tensor of the parameter's shape (True = kept).
            grow: value of newly grown weights: ``"zero"`` (RigL) or ``"init"``
                (a fresh draw from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the
                default ``nn.Linear``/``nn.Conv`` range; SET; with a sparse
                ``self.init`` the fan-in is each neuron's kept fan-in in
                ``new_mask``, see :func:`sparsenb.core.init.grow_bound`). Ignored when
                ``values`` is given.
            values: optional tensor of the parameter's shape: grown weights
                take their value from it.
            generator: CPU generator for ``grow="init"`` (``None`` = torch's global one).

        Returns:
            ``{"grown": int, "dropped": int}``.
        """
        mp = self.params[name]
        p, old = mp.param, mp.mask
        new_mask = new_mask.to(device=old.device, dtype=torch.bool)
        if new_mask.shape != old.shape:
            raise ValueError(f"mask for {name} has shape {tuple(new_mask.shape)}, expected {tuple(old.shape)}")
        grown = new_mask & ~old
        dropped = old & ~new_mask
        if values is not None:
            p[grown] = values.to(p.device, p.dtype)[grown]
        elif grow == "init":
            bound = sparse_init.grow_bound(p, new_mask, self.init, "torch")
            if torch.is_tensor(bound):
                bound = bound[grown].cpu().to(p.dtype)
            fresh = torch.rand(int(grown.sum()), generator=generator, dtype=p.dtype) * (2 * bound) - bound
            p[grown] = fresh.to(p.device)
        elif grow == "zero":
            p[grown] = 0.0
        else:
            raise ValueError(f"grow must be 'zero' or 'init', got {grow!r}")
        self._reset_optimizer_state(p, grown | dropped)
        old.copy_(new_mask)
        p.masked_fill_(~old, 0.0)
        return {"grown": int(grown.sum()), "dropped": int(dropped.sum())}

    @torch.no_grad()
    def update_indices(self, name: str, drop: torch.Tensor, grow: torch.Tensor, grow_value: str = "zero",
                       generator: torch.Generator | None = None) -> dict[str, int]:
        """Drop and grow given as flat indices: the O(k) form of :meth:`update` for prune-and-regrow.

        The new mask is ``old`` minus ``drop`` plus ``grow`` (a position in both keeps its weight
        and its moments, as with :meth:`update`). Only the ``k`` changed positions are written:
        the mask buffer, the weight, the optimizer moments and the cached float mask; no
        full-size temporary is built. The result is identical to
        ``update(name, new_mask, grow=grow_value, generator=generator)`` provided the pruned
        weights are already zero (always true after a masked optimizer step).

        Args:
            name: parameter name.
            drop: int64 flat indices ``(k_d,)`` of kept weights to remove (distinct).
            grow: int64 flat indices ``(k_g,)`` of positions absent after the drop (distinct).
            grow_value: ``"zero"`` or ``"init"`` (see :meth:`update`).
            generator: CPU generator for ``grow_value="init"``.

        Returns:
            ``{"grown": int, "dropped": int}`` counted against the old mask, as :meth:`update`.
        """
        if grow_value not in ("zero", "init"):
            raise ValueError(f"grow must be 'zero' or 'init', got {grow_value!r}")
        mp = self.params[name]
        p, mask = mp.param, mp.mask
        params, fmasks = self._fused_masks()  # current before the edit, so it can be patched below
        flat_m, flat_p = mask.view(-1), p.detach().view(-1)
        drop, grow = drop.to(mask.device), grow.to(mask.device)
        was_kept = flat_m[grow]
        flat_m[drop] = False
        flat_m[grow] = True
        grown = grow[~was_kept].sort().values  # row-major order, as p[bool_mask] in update()
        dropped = drop[~flat_m[drop]]
        flat_p[dropped] = 0.0
        if grow_value == "init":
            if self.init == "dense":
                bound = 1.0 / math.sqrt(max(1, p[0].numel()))
            else:  # the sparse rule of update(): kept fan-in of the new mask, per grown position
                bound = sparse_init.grow_bound(p, mask, self.init, "torch")
                bound = bound.expand(p.shape).reshape(-1)[grown].cpu().to(p.dtype)
            fresh = torch.rand(grown.numel(), generator=generator, dtype=p.dtype) * (2 * bound) - bound
            flat_p[grown] = fresh.to(p.device)
        else:
            flat_p[grown] = 0.0
        if self.optimizer is not None and p in self.optimizer.state:
            changed = torch.cat([grown, dropped])
            for key, v in self.optimizer.state[p].items():
                if torch.is_tensor(v) and v.shape == p.shape:
                    v.view(-1)[changed] = self._fresh_state(p, key)
        i = next((i for i, q in enumerate(params) if q is p), None)
        if i is not None:  # patch the float mask in place and mark the cache current again
            fm = fmasks[i].view(-1)
            fm[dropped] = 0.0
            fm[grown] = 1.0
            pairs = self._fused_refs
            self._fused_key = tuple((id(q), q.dtype, q.device, id(m), m._version) for q, m in pairs)
        return {"grown": int(grown.numel()), "dropped": int(dropped.numel())}

    def _reset_optimizer_state(self, p: torch.Tensor, where: torch.Tensor) -> None:
        if self.optimizer is None or p not in self.optimizer.state:
            return
        for key, v in self.optimizer.state[p].items():
            if torch.is_tensor(v) and v.shape == p.shape:
                v.masked_fill_(where, self._fresh_state(p, key))

    def _fresh_state(self, p: torch.Tensor, key: str) -> float:
        """The value a per-weight optimizer state ``key`` starts from: 0 (moments, momentum, ...),
        except Rprop's ``step_size`` (the group's ``lr``: at 0 a regrown weight would never move
        again) and Adagrad's ``sum`` (the group's ``initial_accumulator_value``)."""
        group = next(g for g in self.optimizer.param_groups if any(q is p for q in g["params"]))
        if isinstance(self.optimizer, torch.optim.Rprop) and key == "step_size":
            return float(group["lr"])
        if isinstance(self.optimizer, torch.optim.Adagrad) and key == "sum":
            return float(group.get("initial_accumulator_value", 0.0))
        return 0.0

    # ------------------------------------------------- apply / training hooks
    def _fused_masks(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """``(params, float_masks)`` of the layers with at least one pruned weight.

        ``float_masks[i]`` is ``params[i]``'s bool mask as 1.0/0.0 in the parameter's dtype
        and device. Cached; rebuilt when a mask tensor changes in place (its ``_version``),
        is replaced, or a parameter is replaced or changes dtype/device. The check costs a
        few attribute reads per layer; the rebuild (one cast per layer) runs only then.
        """
        pairs = [(mp.param, mp.mask) for mp in self.params.values()]
        key = tuple((id(p), p.dtype, p.device, id(m), m._version) for p, m in pairs)
        if key != self._fused_key:
            params, fmasks = [], []
            for p, m in pairs:
                if not bool(m.all()):  # a layer kept dense costs nothing
                    params.append(p)
                    fmasks.append(m.to(device=p.device, dtype=p.dtype))
            self._fused, self._fused_key = (params, fmasks), key
            self._fused_refs = pairs  # keep the ids in the key from being reused
        return self._fused

    @torch.no_grad()
    def apply(self) -> None:
        """Zero every pruned weight (in place): one fused multiply by the float masks."""
        params, fmasks = self._fused_masks()
        if params:
            torch._foreach_mul_(params, fmasks)

    @torch.no_grad()
    def mask_grads(self) -> None:
        """Zero the gradients of pruned weights (in place): one fused multiply."""
        params, fmasks = self._fused_masks()
        grads, gmasks = [], []
        for p, m in zip(params, fmasks):
            if p.grad is not None:
                grads.append(p.grad)
                gmasks.append(m if p.grad.dtype == m.dtype else m.to(p.grad.dtype))
        if grads:
            torch._foreach_mul_(grads, gmasks)

    def attach(self, optimizer: torch.optim.Optimizer, mask_grads: bool | None = None) -> "Masking":
        """Re-apply masks after every ``optimizer.step()``; zero pruned gradients before it if needed.

        Args:
            optimizer: the optimizer whose steps keep the model exactly sparse.
            mask_grads: zero pruned gradients before each step (and inside ``step(closure)``).
                ``None`` (default): only if ``type(optimizer)`` is not in
                :data:`ELEMENTWISE_OPTIMIZERS` (see the module docstring: for those the
                kept weights are bit-identical either way).

        Also lets :meth:`update` reset the optimizer moments of changed weights.
        Attaching again (e.g. to a new optimizer) detaches the old hooks.
        """
        self.detach()
        self.optimizer = optimizer
        self.grads_masked = type(optimizer) not in ELEMENTWISE_OPTIMIZERS if mask_grads is None else bool(mask_grads)
        self._hooks = [optimizer.register_step_post_hook(lambda opt, args, kwargs: self.apply())]
        if self.grads_masked:
            self._hooks.append(optimizer.register_step_pre_hook(self._pre_step))
        return self

    def _pre_step(self, optimizer, args, kwargs):
        """Zero pruned grads; with ``step(closure)`` (LBFGS, SAM, ...) the closure
        recomputes the gradients inside ``step``, so mask them after each call too."""
        self.mask_grads()
        lead = 1 if args and args[0] is optimizer else 0  # torch passes (self, closure?)
        closure = kwargs.get("closure", args[lead] if len(args) > lead else None)
        if closure is None:
            return None

        def masked_closure():
            loss = closure()
            self.mask_grads()
            return loss

        if "closure" in kwargs:
            return args, {**kwargs, "closure": masked_closure}
        return (*args[:lead], masked_closure, *args[lead + 1:]), kwargs

    def detach(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []
        self.optimizer = None
        self.grads_masked = False

    def grads(self) -> dict[str, torch.Tensor | None]:
        return {n: mp.param.grad for n, mp in self.params.items()}

    def weights(self) -> dict[str, torch.Tensor]:
        return {n: mp.param for n, mp in self.params.items()}


def sparsify(
    model: nn.Module,
    sparsity: float,
    distribution: str = "erk",
    dense: Sequence[str] | str = (),
    names: Sequence[str] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    seed: int | None = None,
    on_empty: str = "warn",
    init: str = "dense",
) -> Masking:
    """Attach random masks to ``model`` at a global ``sparsity`` and return them.

    Args:
        model: any module; Linear/Conv weights are pruned (or ``names``).
        sparsity: fraction of weights removed, in ``[0, 1)``.
        distribution: ``"uniform"``, ``"er"`` or ``"erk"`` (see :mod:`sparsenb.core.distributions`).
        dense: parameter names kept dense, or ``"first_last"`` for the first
            and last prunable layer (the paper policy of many methods).
        names: explicit list of prunable parameter names.
        optimizer: if given, the masks are attached to it (:meth:`Masking.attach`).
        seed: seed of the random mask (``None`` = torch's global generator).
        on_empty: a layer left with nnz 0 (e.g. ``uniform`` at 0.99 on a 3x2 layer):
            ``"warn"`` (default), ``"raise"`` or ``"ignore"``.
        init: weight initialisation of the kept weights (:mod:`sparsenb.core.init`): ``"dense"``
            (default: the model's own init, unchanged), ``"sparse"`` (rescaled to each neuron's
            kept fan-in), ``"sparse_he"`` or ``"sparse_glorot"``; regrowth follows it too.

    Every argument is checked before the model is touched: a bad one raises a
    ValueError and leaves the model without mask buffers. The pruned weights are
    zeroed in place; the mask for layer ``l`` keeps exactly ``layer_nnz(...)[l]``
    weights chosen uniformly at random.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    sparsity = check_sparsity(sparsity)
    check_distribution(distribution)
    sparse_init.check_init(init)
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an int or None, got {seed!r}")
    params = dict(model.named_parameters())
    shapes = {n: tuple(params[n].shape) for n in prunable_parameters(model, names)}
    if not shapes:
        raise ValueError("the model has no prunable (Linear/Conv) weights; pass names=[...] explicitly")
    nnz = layer_nnz(shapes, 1.0 - sparsity, distribution, resolve_dense(list(shapes), dense))
    check_empty_layers(nnz, on_empty)
    masks = Masking(model, names)
    gen = seeding.generator(seed, "sparsify") if seed is not None else None
    masks.set_random(nnz, generator=gen)
    init_gen = seeding.generator(seed, "init") if seed is not None else None
    sparse_init.apply_init(masks, init, generator=init_gen)
    if optimizer is not None:
        masks.attach(optimizer)
    return masks


def resolve_dense(masks: "Masking | Sequence[str]", dense: Sequence[str] | str) -> list[str]:
    """``"first_last"`` -> the first and last masked parameter; ``"first"``/``"last"``; or a list.

    ``masks``: a :class:`Masking` or the prunable parameter names in order.
    """
    order = list(masks.params) if isinstance(masks, Masking) else list(masks)
    if dense in ("first_last", "first", "last", "none", None):
        return {"first_last": [order[0], order[-1]], "first": [order[0]], "last": [order[-1]]}.get(dense, [])
    if isinstance(dense, str):  # one parameter name, not a sequence of characters
        return [dense]
    return list(dense)


def density_report(model: nn.Module) -> dict[str, dict]:
    """``{param_name: {"nnz", "numel", "density"}}`` for every masked parameter of ``model``.

    ``nnz`` counts kept weights in the mask buffer; read from the model itself,
    so it works on a freshly loaded checkpoint too.
    """
    out = {}
    for mname, module in model.named_modules():
        for bname, buf in module.named_buffers(recurse=False):
            if bname.endswith("_mask") and buf.dtype == torch.bool:
                pname = f"{mname}.{bname[:-5]}" if mname else bname[:-5]
                nnz, numel = int(buf.sum()), buf.numel()
                out[pname] = {"nnz": nnz, "numel": numel, "density": nnz / numel}
    return out
