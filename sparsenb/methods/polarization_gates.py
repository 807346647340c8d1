"""Polarization-regularised binary gates: a static subnetwork at a user-set sparsity in one training pass.

Zhi, Babbar, Liu, Sun, Silavong, Shi, Moran 2023, arXiv:2302.10798, "Learning a Consensus Sub-Network
with Polarization Regularization and One Pass Training": binary gates (:mod:`sparsenb.layers.gates`,
straight-through estimator) are trained with the weights, and a *polarization* regulariser pushes every
gate to 0 or 1 so that, once training ends, the gates can be removed and a static subnetwork is left.
No official code was found; the regulariser's form, its schedule and the gate optimiser are our choices,
stated here and in notebooks/15_polarization_gates.ipynb.

**The polarization regulariser.** Zhuang, Zhang, Wang, Wu, Zhang, Li 2020, NeurIPS, "Neuron-level
Structured Pruning using Polarization Regularizer" (Eq. 2) push scaling factors ``g`` in ``[0, a]`` apart with

    R_Z(g) = t * ||g||_1 - ||g - mean(g) 1||_1.                                                       (1)

``R_Z`` is concave, so on the box ``[0, 1]^n`` its minima are binary vectors; with a fraction ``x`` of the
``n`` gates at 0 and the rest at 1, ``R_Z / n = (1 - x)(t - 2x)``, minimal at ``x = (2 + t) / 4``: a target
sparsity ``s`` corresponds to ``t = 4 s - 2`` (``pivot="mean"``). Gradient descent, however, only sees
the local push ``t - sign(g_i - mean) + mean_j sign(g_j - mean)``, and every binary split is a local minimum:
which gates end at 0 is decided by how many sit below the mean when the push becomes strong, not by
``s``. For a user-set sparsity we therefore use as pivot the ``s``-quantile ``q_s`` of the scores
(recomputed every step, no gradient through it) and drop the L1 term (``pivot="quantile"``, the default):

    R(g) = - sum_i |g_i - q_s(g)|,       dR/dg_i = -sign(g_i - q_s(g)),                               (2)

which pushes the fraction ``s`` of the gates below the quantile to 0 and the others to 1: the gates'
*ranking* (learned from the task through the straight-through gradient) decides which are removed, the
quantile decides how many. The sum runs over all gates of all layers (one global budget: the layers
get the sparsities the ranking gives them). The training loss is ``L_task + lambda(step) * R(g)``.

**The schedule.** ``lambda(step) = 0`` for the first ``warmup`` fraction of the steps (the gates move by
the task gradient alone and build their ranking), then rises linearly to ``lam`` over the next ``ramp``
fraction, then stays at ``lam``: the gates polarize in the middle of training and the last part trains
the weights of an (almost) fixed subnetwork, the "one pass".

**The gate optimiser.** The scores have their own Adam (``gate_lr``, no weight decay), stepped after the
weights' optimiser, then clamped to ``[0, 1]``; the task's optimiser never sees them (it is built over the
model's parameters before :meth:`PolarizationGates.init_masks` installs the gates).
"""
from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from ..core.masks import Masking
from ..layers.gates import GRANULARITIES, Gates
from .base import Method, register

__all__ = ["PolarizationGates", "polarization", "quantile_pivot", "zhuang_t", "lambda_at", "polarized_fraction", "PIVOTS"]

PIVOTS = ("quantile", "mean")


def zhuang_t(sparsity: float) -> float:
    """``t`` of Eq. (1) whose minimiser over binary gates has a fraction ``sparsity`` at 0: ``4 s - 2``."""
    return 4.0 * sparsity - 2.0


def quantile_pivot(g: torch.Tensor, sparsity: float) -> torch.Tensor:
    """The pivot ``q_s`` of Eq. (2): midway between the ``k``-th and ``(k+1)``-th smallest of the ``n`` scores,
    ``k = round(s n)``, so that exactly ``k`` scores lie below it and none on it (unless tied); below all
    scores for ``k = 0``, above all for ``k = n``. (``torch.quantile`` refuses more than 2**24 elements.)"""
    g = g.reshape(-1)
    n = g.numel()
    k = round(sparsity * n)
    if k <= 0:
        return g.min() - 1.0
    if k >= n:
        return g.max() + 1.0
    return 0.5 * (g.kthvalue(k).values + g.kthvalue(k + 1).values)


def polarization(g: torch.Tensor, sparsity: float, pivot: str = "quantile") -> torch.Tensor:
    """The regulariser of all gate scores ``g`` (any shape, values in [0, 1]); a scalar.

    ``pivot="quantile"``: Eq. (2), ``-sum |g - q_s(g)|`` with the pivot :func:`quantile_pivot` detached.
    ``pivot="mean"``: Zhuang et al.'s Eq. (1) with ``t = 4 s - 2`` (the mean is differentiated through).
    """
    g = g.reshape(-1)
    if pivot == "quantile":
        q = quantile_pivot(g.detach(), sparsity)
        return -(g - q).abs().sum()
    if pivot == "mean":
        return zhuang_t(sparsity) * g.abs().sum() - (g - g.mean()).abs().sum()
    raise ValueError(f"pivot must be one of {PIVOTS}, got {pivot!r}")


def lambda_at(step: int, total_steps: int, lam: float, warmup: float, ramp: float) -> float:
    """``0`` before ``warmup * total``, then linear to ``lam`` over ``ramp * total`` steps, then ``lam``."""
    start, length = warmup * total_steps, ramp * total_steps
    if step < start:
        return 0.0
    if length <= 0:
        return lam
    return lam * min(1.0, (step - start) / length)


def polarized_fraction(g: torch.Tensor, tol: float = 0.05) -> float:
    """Fraction of the gate scores within ``tol`` of 0 or of 1 (our bimodality measure)."""
    g = g.reshape(-1).float()
    return float(((g <= tol) | (g >= 1.0 - tol)).float().mean())


@register("polarization_gates")
class PolarizationGates(Method):
    """Binary gates + polarization regulariser (see the module docstring).

    Args:
        sparsity: target fraction of gates to close, in [0, 1).
        granularity: ``"connection"`` or ``"channel"`` (:class:`sparsenb.layers.gates.Gates`).
        lam: final weight ``lambda`` of the regulariser (per gate: the push is ``lam`` in gradient units).
        gate_lr: Adam learning rate of the gate scores.
        gate_init: initial score of every gate (>= threshold: all open).
        warmup, ramp: fractions of the training steps of the schedule (``lambda_at``).
        pivot: ``"quantile"`` (Eq. 2) or ``"mean"`` (Zhuang et al.'s Eq. 1, ``t = 4 s - 2``).
        threshold: a gate is open when its score is ``>= threshold``.
        skip: module names left ungated.
        bins: histogram bins of the per-epoch gate histograms (``self.gate_history``).

    After :meth:`init_masks`, ``self.gates`` holds the :class:`~sparsenb.layers.gates.Gates`; the method
    returns no :class:`Masking` (the gates are the mask). ``self.gate_history`` has one row per epoch
    (and one for the start): histogram counts over [0, 1], polarized fraction, gate and connection sparsity.
    """

    def __init__(self, sparsity: float = 0.5, granularity: str = "connection", lam: float = 1e-3,
                 gate_lr: float = 0.01, gate_init: float = 0.75, warmup: float = 0.1, ramp: float = 0.3,
                 pivot: str = "quantile", threshold: float = 0.5, skip: Iterable[str] = (), bins: int = 20,
                 seed: int = 0, **kwargs: Any):
        super().__init__(sparsity=sparsity, seed=seed, **kwargs)
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
        if pivot not in PIVOTS:
            raise ValueError(f"pivot must be one of {PIVOTS}, got {pivot!r}")
        if lam < 0 or gate_lr <= 0:
            raise ValueError(f"lam must be >= 0 and gate_lr > 0, got {lam}, {gate_lr}")
        if not (0 <= warmup <= 1 and 0 <= ramp <= 1):
            raise ValueError(f"warmup and ramp are fractions of training, got {warmup}, {ramp}")
        self.granularity, self.lam, self.gate_lr, self.gate_init = granularity, lam, gate_lr, gate_init
        self.warmup, self.ramp, self.pivot, self.threshold = warmup, ramp, pivot, threshold
        self.skip, self.bins = tuple(skip), bins
        self.gates: Gates | None = None
        self.gate_optimizer: torch.optim.Optimizer | None = None
        self.gate_history: list[dict] = []
        self.last_lambda = 0.0

    def __repr__(self) -> str:
        return (f"PolarizationGates(sparsity={self.sparsity}, granularity={self.granularity!r}, lam={self.lam}, "
                f"pivot={self.pivot!r})")

    def init_masks(self, model: nn.Module, data: Any = None) -> Masking | None:
        self.gates = Gates(model, self.granularity, init=self.gate_init, threshold=self.threshold, skip=self.skip)
        self.gate_optimizer = torch.optim.Adam(self.gates.parameters(), lr=self.gate_lr)
        self._log_epoch(0)
        return None

    def regularizer(self) -> torch.Tensor:
        """``R(g)`` over all gates of the model (Eq. 2, or Eq. 1 with ``pivot="mean"``)."""
        g = torch.cat([p.reshape(-1) for p in self.gates.parameters()])
        return polarization(g, self.sparsity, self.pivot)

    def after_backward(self, step: int, masks: Masking | None) -> None:
        self.last_lambda = lambda_at(step, self.total_steps, self.lam, self.warmup, self.ramp)
        if self.last_lambda > 0:
            (self.last_lambda * self.regularizer()).backward()  # adds to the task's straight-through gradient

    def after_step(self, step: int, masks: Masking | None) -> None:
        self.gate_optimizer.step()
        self.gate_optimizer.zero_grad(set_to_none=True)
        self.gates.clamp_()

    def on_epoch_end(self, epoch: int, masks: Masking | None) -> None:
        self._log_epoch(epoch + 1)

    def _log_epoch(self, epoch: int) -> None:
        s = self.gates.scores()
        counts = torch.histc(s.float(), bins=self.bins, min=0.0, max=1.0)
        self.gate_history.append({"epoch": epoch, "hist": [int(c) for c in counts],
                                  "polarized": polarized_fraction(s), "gate_sparsity": self.gates.gate_sparsity(),
                                  "sparsity": self.gates.sparsity(), "lambda": self.last_lambda,
                                  "mean": float(s.mean())})

    def state_dict(self) -> dict:
        return {**super().state_dict(), "gate_optimizer": self.gate_optimizer.state_dict() if self.gate_optimizer else None,
                "gate_history": list(self.gate_history)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if self.gate_optimizer is not None and state.get("gate_optimizer") is not None:
            self.gate_optimizer.load_state_dict(state["gate_optimizer"])
        self.gate_history = list(state.get("gate_history", []))
