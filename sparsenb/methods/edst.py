"""EDST: Efficient Dynamic Sparse Training ensemble (FreeTickets).

Liu, Chen, Atashgahi, Chen, Sokar, Mocanu, Pechenizkiy, Wang, Mocanu (2022),
"Deep Ensembling with No Overhead for either Training or Testing: The All-Round
Blessings of Dynamic Sparsity", ICLR 2022 (Sec. 4.2, "EDST Ensemble").

One sparse training run yields ``M`` sparse subnetworks ("free tickets"):

* **Exploration phase** (``explore_epochs``, large learning rate): dynamic sparse
  training. Every ``update_every`` steps (the paper's ``delta_t``) each sparse layer with
  ``N_l`` active weights drops (:func:`sparsenb.core.dropgrow.drop`) the
  ``k = round(drop_fraction * N_l)`` smallest-magnitude ones and grows
  (:func:`sparsenb.core.dropgrow.grow`) ``k`` absent ones, by largest dense-gradient magnitude
  (``growth="gradient"``, RigL's rule) or uniformly at random (``growth="random"``, SET's rule). The drop fraction is constant (the official
  EDST runs use ``--decay-schedule constant``, 0.5).
* **Refinement phases** ``m = 0 .. M-1`` (``refine_epochs`` each, small learning
  rate, see :func:`edst_lr_factor`): the same dynamic sparse training continues,
  and the weights at the end of phase ``m`` are **ticket m** (a deep copy of the
  whole ``state_dict``: weights, masks, batch-norm statistics).
* **Re-exploration**: at the first step of refinement phases ``1 .. M-1`` a large
  drop-and-grow with fraction ``q = large_drop`` (paper: 0.8) moves the network
  to a different part of the sparse-connectivity space, so that the next ticket
  differs from the last. As in the official code (VITA-Group/FreeTickets,
  ``main_EDST.py``: the re-exploration sits between tickets), the first refinement
  phase follows the exploration phase directly.

Regular updates are counted from each phase's start and skipped in a phase's last
``update_every`` steps, so a ticket never ends right after half of its weights were
regrown at zero. Grown weights start at zero (``grow="zero"``) and their optimizer
moments are reset (see :mod:`sparsenb.core.masks`). Mask semantics: 1 = kept; pruned
weights are exactly zero after every optimizer step; per-layer nnz never changes.

Ensemble prediction: average the tickets' softmax outputs
(:func:`sparsenb.train.calibration.ensemble_probs`).
"""
from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from ..core import criteria
from ..core.dropgrow import drop, grow
from ..core.masks import Masking
from .base import Method, register

__all__ = ["EDST", "edst_lr_factor", "large_drop_and_grow"]


def edst_lr_factor(epoch: int, explore_epochs: int, refine_epochs: int) -> float:
    """Learning-rate multiplier of epoch ``epoch`` (0-based) in EDST's schedule.

    1 during exploration; in each refinement phase 0.1 for the first half of its
    epochs (``ceil(refine_epochs / 2)``) and 0.01 for the rest (official code: lr
    0.1 -> 0.01 at the end of exploration and at every re-exploration, 0.001 at
    each phase's middle).
    """
    if epoch < explore_epochs:
        return 1.0
    r = (epoch - explore_epochs) % refine_epochs
    return 0.1 if r < math.ceil(refine_epochs / 2) else 0.01


def large_drop_and_grow(weight: torch.Tensor, grad: torch.Tensor | None, mask: torch.Tensor, fraction: float,
                        growth: str, scores: torch.Tensor | None = None) -> torch.Tensor:
    """New bool mask: drop ``round(fraction * nnz)`` smallest-``|w|`` active weights, grow as many.

    ``growth="gradient"``: grow the absent positions of largest ``|grad|`` (needs the
    dense gradient ``grad``, same shape as ``weight``); ``growth="random"``: grow the
    absent positions of largest ``scores`` (uniform random scores = a uniform choice).
    The result has exactly ``mask.sum()`` True entries.
    """
    k = round(fraction * int(mask.sum()))
    if growth == "gradient":
        if grad is None:
            raise ValueError("growth='gradient' needs the dense gradient of the weight")
        grow_score = criteria.gradient_magnitude(weight, grad)
    elif growth == "random":
        if scores is None:
            raise ValueError("growth='random' needs random scores of the weight's shape")
        grow_score = scores
    else:
        raise ValueError(f"growth must be 'gradient' or 'random', got {growth!r}")
    if k <= 0:
        return mask.clone()
    kept = mask & ~drop(criteria.magnitude(weight), mask, k)
    return kept | grow(grow_score, ~kept, k)


@register("edst")
class EDST(Method):
    """EDST (Liu et al., ICLR 2022): exploration, then ``tickets`` refinement phases; see the module docstring.

    Args:
        tickets: M, the number of free tickets (paper: 3).
        explore_epochs: length of the exploration phase (paper, CIFAR: 150 of 450 epochs).
        refine_epochs: length of each refinement phase (paper, CIFAR: 100).
        update_every: optimizer steps between regular drop-and-grow updates (the paper's ``delta_t``: 1000).
        drop_fraction: regular drop fraction, constant (paper: 0.5).
        large_drop: re-exploration fraction q between tickets (paper: 0.8).
        growth: ``"gradient"`` (RigL-style, the README's runs) or ``"random"`` (SET-style).
        **kwargs: ``sparsity`` (paper: 0.8), ``distribution`` (paper: "erk"), ``dense``, ``seed``.

    Attributes:
        tickets_state: list of ``state_dict`` copies (CPU tensors), one per finished refinement phase.
        phase_starts: the first optimizer step of each phase (exploration first), set by ``setup``.
    """

    SETTINGS = {"M": "tickets", "EXPLORE_EPOCHS": "explore_epochs", "REFINE_EPOCHS": "refine_epochs",
                "DELTA_T": "update_every", "DROP_FRACTION": "drop_fraction", "LARGE_DROP": "large_drop",
                "GROWTH": "growth"}
    yields_ensemble = True

    def __init__(self, tickets: int = 3, explore_epochs: int = 150, refine_epochs: int = 100, update_every: int = 1000,
                 drop_fraction: float = 0.5, large_drop: float = 0.8, growth: str = "gradient", **kwargs: Any):
        super().__init__(**kwargs)
        if tickets < 1 or explore_epochs < 0 or refine_epochs < 1 or update_every < 1:
            raise ValueError(f"need tickets >= 1, explore_epochs >= 0, refine_epochs >= 1, update_every >= 1; got "
                             f"{tickets}, {explore_epochs}, {refine_epochs}, {update_every}")
        if not (0 <= drop_fraction < 1 and 0 <= large_drop < 1):
            raise ValueError(f"drop fractions must be in [0, 1), got {drop_fraction}, {large_drop}")
        if growth not in ("gradient", "random"):
            raise ValueError(f"growth must be 'gradient' or 'random', got {growth!r}")
        self.tickets, self.explore_epochs, self.refine_epochs = tickets, explore_epochs, refine_epochs
        self.update_every, self.drop_fraction, self.large_drop, self.growth = update_every, drop_fraction, large_drop, growth
        self.model: nn.Module | None = None
        self.tickets_state: list[dict[str, torch.Tensor]] = []
        self.phase_starts: list[int] = []

    @property
    def total_epochs(self) -> int:
        """``explore_epochs + tickets * refine_epochs``: the epochs the Trainer must run."""
        return self.explore_epochs + self.tickets * self.refine_epochs

    # ----------------------------------------------------------------- hooks
    def init_masks(self, model: nn.Module, data: Any = None) -> Masking:
        self.model = model
        return super().init_masks(model, data)

    def setup(self, total_steps: int, steps_per_epoch: int, epochs: int) -> None:
        if epochs != self.total_epochs:
            raise ValueError(f"EDST needs epochs = explore_epochs + tickets * refine_epochs = {self.total_epochs}, "
                             f"got {epochs}; set the Trainer's epochs to method.total_epochs")
        super().setup(total_steps, steps_per_epoch, epochs)
        self.phase_starts = [0] + [(self.explore_epochs + m * self.refine_epochs) * steps_per_epoch
                                   for m in range(self.tickets)]
        if self.explore_epochs == 0:
            self.phase_starts = self.phase_starts[1:]

    def phase_of(self, step: int) -> tuple[int, int, int]:
        """``(phase index, first step, end step)`` of the phase holding ``step``; index 0 is
        exploration when ``explore_epochs > 0``."""
        ends = self.phase_starts[1:] + [self.total_steps]
        for i, (start, end) in enumerate(zip(self.phase_starts, ends)):
            if start <= step < end:
                return i, start, end
        raise ValueError(f"step {step} outside training (0 .. {self.total_steps - 1})")

    def is_reexploration_step(self, step: int) -> bool:
        """First step of refinement phase 1 .. M-1."""
        refine_starts = self.phase_starts[-self.tickets:]
        return step in refine_starts[1:]

    def is_update_step(self, step: int) -> bool:
        """A regular drop-and-grow: every ``update_every`` steps from the phase start, not in its last ``update_every`` steps."""
        _, start, end = self.phase_of(step)
        offset = step - start
        return offset > 0 and offset % self.update_every == 0 and step + self.update_every <= end

    def after_backward(self, step: int, masks: Masking | None) -> None:
        if masks is None:
            return
        if self.is_reexploration_step(step):
            self._drop_and_grow(step, masks, self.large_drop, kind="reexplore")
        elif self.is_update_step(step):
            self._drop_and_grow(step, masks, self.drop_fraction, kind="update")

    def on_epoch_end(self, epoch: int, masks: Masking | None) -> None:
        done = epoch + 1 - self.explore_epochs
        if done > 0 and done % self.refine_epochs == 0:
            self.save_ticket()

    # --------------------------------------------------------------- helpers
    def _drop_and_grow(self, step: int, masks: Masking, fraction: float, kind: str) -> None:
        for mp in masks:
            if bool(mp.mask.all()):
                continue  # a dense layer stays dense
            scores = self.random_scores(mp.mask) if self.growth == "random" else None
            new = large_drop_and_grow(mp.param, mp.param.grad, mp.mask, fraction, self.growth, scores)
            change = masks.update(mp.name, new, grow="zero")
            self.log(step=step, layer=mp.name, change={**change, "kind": kind})

    @torch.no_grad()
    def save_ticket(self) -> None:
        """Append a CPU copy of the model's ``state_dict`` (weights, masks, BN statistics) as the next ticket."""
        if self.model is None:
            raise RuntimeError("save_ticket before init_masks: the method does not know the model yet")
        self.tickets_state.append({k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()})

    def dense_gradient_steps(self) -> int:
        """Optimizer steps that needed the dense gradient (gradient growth at a mask update)."""
        if self.growth != "gradient":
            return 0
        return len({e["step"] for e in self.events})

    def step_macs(self, f_sparse: float, f_dense: float) -> float:
        """With gradient growth, RigL's App. H average (one dense-gradient step per ``update_every + 1``;
        re-explorations are a handful more, counted exactly by :func:`sparsenb.train.flops.sparse_run_macs`
        with :meth:`dense_gradient_steps`); with random growth ``3 f_S``."""
        if self.growth != "gradient":
            return 3.0 * f_sparse
        dt = self.update_every
        return (3.0 * f_sparse * dt + 2.0 * f_sparse + f_dense) / (dt + 1)

    def training_epochs(self, epochs: int) -> int:
        """EDST fixes its own length: ``explore_epochs + tickets * refine_epochs`` (``epochs`` is ignored)."""
        return self.total_epochs

    def lr_schedule(self):
        """:func:`edst_lr_factor` of the epoch: 1 while exploring, then 0.1 / 0.01 in each refinement phase."""
        return lambda epoch: edst_lr_factor(epoch, self.explore_epochs, self.refine_epochs)

    def snapshots(self) -> list[dict]:
        """The tickets: one ``state_dict`` copy per refinement phase."""
        return list(self.tickets_state)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "tickets": [copy.copy(t) for t in self.tickets_state]}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.tickets_state = list(state.get("tickets", []))
