"""Iterative magnitude pruning with rewinding (the lottery-ticket procedure).

Frankle, Carbin (2019), "The Lottery Ticket Hypothesis: Finding Sparse,
Trainable Neural Networks", ICLR; rewinding to iteration ``k``: Frankle,
Dziugaite, Roy, Carbin (2019/2020), "Stabilizing the Lottery Ticket
Hypothesis" / "Linear Mode Connectivity and the Lottery Ticket Hypothesis", ICML.

Algorithm (paper, Section 1, "Identifying winning tickets"):

1. initialise ``f(x; theta_0)``, mask ``m = 1``; save the rewind point
   ``theta_rw`` (``theta_0``, or ``theta_k`` after ``k`` steps of dense training);
2. train ``f(x; m * theta)``;
3. prune, **per layer**, the fraction ``p`` of the remaining weights of smallest
   ``|theta|`` (p = 20% for hidden layers, 10% for the output layer in the
   paper's fully connected nets), so that after ``r`` rounds layer ``l`` keeps

       nnz_l(r) = round(numel_l * (1 - p_l) ** r)   (0.8^r, output layer 0.9^r);

4. reset the kept weights to ``theta_rw`` and repeat from 2.

Controls (paper, Figures 3-4), trained in every round ``r >= 1`` beside the
ticket, with the ticket's per-layer nnz: ``"reinit"`` = the ticket's masks
with a fresh random initialisation; ``"random_mask"`` = a random mask with the
same per-layer nnz on the rewind weights ``theta_rw``.

The driver is a plain function, not a per-step :class:`Method`: each round is a
full training run by the caller's ``train_fn``. With the Trainer, ``train_fn``
can use the ``"fixed"`` method registered here::

    def train_fn(model, masks):
        opt = make_optimizer(model, "adam", lr=1.2e-3)
        t = Trainer(model, methods.get("fixed", masks=masks), opt, epochs=E, progress=False)
        return t.fit(train_loader, test_loader)[-1]
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from ..core.masks import Masking
from ..core.pruning import layerwise_topk, magnitude_prune
from .base import Method, register

__all__ = ["iterative_magnitude_pruning", "imp_nnz", "FixedMasks", "magnitude_prune", "CONTROLS"]

CONTROLS = ("reinit", "random_mask")


@register("fixed")
class FixedMasks(Method):
    """Train with given masks that never change (IMP rounds, fine-tuning after pruning).

    Args:
        masks: a :class:`Masking` built on the model that will be trained.
        **kwargs: ``seed`` etc. of :class:`Method`; ``sparsity`` is read from the masks.
    """

    def __init__(self, masks: Masking, **kwargs: Any):
        kwargs.pop("sparsity", None)
        super().__init__(sparsity=0.0, **kwargs)
        self.masks = masks
        self.sparsity = 1.0 - masks.density()

    def init_masks(self, model: nn.Module, data: Any = None) -> Masking:
        if self.masks.model is not model:
            raise ValueError("the masks given to 'fixed' belong to another model")
        self.masks.apply()
        return self.masks


def imp_nnz(numel: int, rate: float, rounds: int) -> int:
    """Kept weights of a layer of ``numel`` weights after ``rounds`` rounds at pruning ``rate``:
    ``round(numel * (1 - rate) ** rounds)``."""
    return round(numel * (1.0 - rate) ** rounds)


def _snapshot(model: nn.Module, masks: Masking) -> dict[str, torch.Tensor]:
    """Copy of the model state without the mask buffers (the rewind point)."""
    mask_keys = {n + "_mask" for n in masks.params}
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k not in mask_keys}


@torch.no_grad()
def _rewind(model: nn.Module, masks: Masking, state: Mapping[str, torch.Tensor]) -> None:
    model.load_state_dict(state, strict=False)  # in place: the Masking's references stay valid
    masks.apply()


def iterative_magnitude_pruning(
    make_model: Callable[[], nn.Module],
    train_fn: Callable[..., dict],
    rounds: int,
    rate: float = 0.2,
    output_rate: float | None = 0.1,
    rewind: str | int = "init",
    control: str | Sequence[str] = "ticket",
    seed: int = 0,
    rates: Mapping[str, float] | None = None,
    on_round: Callable[[int, nn.Module, Masking], None] | None = None,
) -> list[dict[str, Any]]:
    """Find a lottery ticket by iterative magnitude pruning (see the module docstring).

    Args:
        make_model: builds a fresh network (its Linear/Conv weights are pruned).
        train_fn: ``train_fn(model, masks) -> dict`` trains ``model`` in place with
            the masks applied (e.g. ``masks.attach(opt)``) and returns metrics.
            With ``rewind=k`` (int) it must also accept ``steps=k``: it is
            then called once, densely, as ``train_fn(model, masks, steps=k)`` to
            reach the rewind point ``theta_k``; every round then trains from ``theta_k``.
        rounds: pruning rounds; ``rounds + 1`` trainings (round 0 is dense).
        rate: fraction of the remaining weights pruned per round in every layer
            but the output layer (paper: 0.2).
        output_rate: the same for the last masked layer (paper: 0.1; ``None`` = ``rate``).
        rewind: ``"init"`` (reset to ``theta_0``) or an int ``k`` (reset to ``theta_k``).
        control: ``"ticket"`` (no control), ``"reinit"``, ``"random_mask"`` or a
            sequence of the latter two; controls are trained from round 1 on.
        seed: ``torch.manual_seed(seed)`` before ``make_model()``; the controls
            use their own seeds (``seed + 1 + r`` for round ``r``) inside
            :func:`torch.random.fork_rng`, so they do not change the ticket's run.
        rates: explicit per-layer rates ``{param name: rate}`` (override ``rate``/``output_rate``).
        on_round: ``on_round(r, model, masks)`` after the ticket of round ``r`` is trained.

    Returns:
        One dict per round ``r = 0..rounds``: ``{"round", "density", "nnz": {layer: int},
        "ticket": train_fn's metrics}`` plus ``{control: metrics}`` for each control.
    """
    controls = [] if control == "ticket" else [control] if isinstance(control, str) else list(control)
    unknown = set(controls) - set(CONTROLS)
    if unknown:
        raise ValueError(f"unknown control(s) {sorted(unknown)}; choose 'ticket' or among {CONTROLS}")
    if rounds < 0 or not 0.0 < rate < 1.0:
        raise ValueError(f"need rounds >= 0 and 0 < rate < 1, got {rounds}, {rate}")
    if not (rewind == "init" or (isinstance(rewind, int) and rewind >= 0)):
        raise ValueError(f"rewind must be 'init' or a step number >= 0, got {rewind!r}")

    torch.manual_seed(seed)
    model = make_model()
    masks = Masking(model)
    names = list(masks.params)
    layer_rate = {n: rate for n in names}
    layer_rate[names[-1]] = rate if output_rate is None else output_rate
    layer_rate.update(rates or {})
    numel = {n: mp.mask.numel() for n, mp in masks.params.items()}

    if isinstance(rewind, int) and rewind > 0:
        train_fn(model, masks, steps=rewind)
        masks.detach()
    theta_rw = _snapshot(model, masks)

    results = []
    for r in range(rounds + 1):
        nnz = {n: imp_nnz(numel[n], layer_rate[n], r) for n in names}
        if r > 0:
            scores = {n: mp.param.detach().abs().masked_fill(~mp.mask, float("-inf")) for n, mp in masks.params.items()}
            masks.set_masks(layerwise_topk(scores, nnz))
            _rewind(model, masks, theta_rw)
        row: dict[str, Any] = {"round": r, "density": masks.density(),
                               "nnz": {n: int(mp.mask.sum()) for n, mp in masks.params.items()}}
        row["ticket"] = train_fn(model, masks)
        masks.detach()
        if on_round is not None:
            on_round(r, model, masks)
        for c in controls if r > 0 else ():
            with torch.random.fork_rng():
                torch.manual_seed(seed + 1 + r)
                cmodel = make_model()
                cmasks = Masking(cmodel)
                if c == "reinit":
                    cmasks.set_masks({n: mp.mask for n, mp in masks.params.items()})
                else:  # random_mask on the rewind weights
                    _rewind(cmodel, cmasks, theta_rw)
                    cmasks.set_random(row["nnz"], generator=torch.Generator().manual_seed(seed + 1 + r))
                row[c] = train_fn(cmodel, cmasks)
                cmasks.detach()
        results.append(row)
    return results
