"""Metrics shared by the notebooks: accuracy summaries and topology measures."""
from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["border_share", "disagreement", "mask_distance", "pairwise_mean", "ITOPTracker",
           "continual_accuracy", "average_accuracy", "forgetting"]


def border_share(degree: Sequence[float], image_shape: Sequence[int], width: int = 4) -> float:
    """Fraction of first-layer connections that start at pixels within ``width`` of the image border.

    ``degree``: kept connections per input pixel, flat, row-major, ``prod(image_shape)`` long.
    A random (static) mask gives about the border's share of the area,
    ``1 - (H - 2w)(W - 2w) / (HW)`` (0.49 for 28x28, w=4); a topology that moved
    its connections onto the digit area (the centre of MNIST) gives less.
    """
    h, w = image_shape
    d = torch.as_tensor(degree, dtype=torch.float64).reshape(h, w)
    if d.sum() == 0:
        raise ValueError("the layer has no connections")
    inner = d[width:h - width, width:w - width].sum()
    return float(1 - inner / d.sum())


def disagreement(pred_a: torch.Tensor, pred_b: torch.Tensor) -> float:
    """Prediction disagreement: the fraction of examples where two models' argmax differs.

    ``pred_*``: class predictions (N,) or probabilities/logits (N, C) (argmax taken).
    The diversity measure of FreeTickets (Liu et al., ICLR 2022, Sec. 5) and Fort et al. (2019).
    """
    a = pred_a.argmax(1) if pred_a.ndim == 2 else pred_a
    b = pred_b.argmax(1) if pred_b.ndim == 2 else pred_b
    if a.shape != b.shape or a.numel() == 0:
        raise ValueError(f"predictions must have the same non-empty shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    return float((a != b).double().mean())


def mask_distance(masks_a: dict[str, torch.Tensor], masks_b: dict[str, torch.Tensor]) -> float:
    """Normalised Hamming distance between two sets of bool masks (same names and shapes).

    ``sum_l |m_a^l XOR m_b^l| / sum_l numel(m^l)``: 0 for identical topologies; two random
    masks at density d differ in about ``2 d (1 - d)`` of positions.
    """
    if masks_a.keys() != masks_b.keys():
        raise ValueError(f"mask names differ: {sorted(masks_a)} vs {sorted(masks_b)}")
    diff = total = 0
    for name, a in masks_a.items():
        b = masks_b[name]
        if a.shape != b.shape:
            raise ValueError(f"{name}: shapes differ {tuple(a.shape)} vs {tuple(b.shape)}")
        diff += int((a.bool() ^ b.bool()).sum())
        total += a.numel()
    return diff / total


def pairwise_mean(items: Sequence, fn) -> float:
    """Mean of ``fn(a, b)`` over all unordered pairs of ``items`` (at least two)."""
    n = len(items)
    if n < 2:
        raise ValueError("need at least two items for a pairwise measure")
    vals = [fn(items[i], items[j]) for i in range(n) for j in range(i + 1, n)]
    return sum(vals) / len(vals)


class ITOPTracker:
    """In-time over-parameterization rate: the fraction of weights ever active during training.

    Liu, Yin, Mocanu, Pechenizkiy (2021), "Do We Actually Need Dense Over-Parameterization?
    In-Time Over-Parameterization in Sparse Training", ICML, Sec. 3: ``R = |union_t M_t| / N``
    over the sparse layers' positions (used again by FreeTickets, Liu et al., ICLR 2022).

    ``ever[name]`` is a bool tensor of the mask's shape: True where the mask was 1 at least once
    when observed. :meth:`attach` observes after every ``optimizer.step()`` (register it after
    :meth:`sparsenb.Masking.attach`), so a mask changed by a method's hook (RigL and EDST in
    ``after_backward``, SET at the end of an epoch) is seen at the next step. Layers that are
    dense from the start (all-ones masks) are left out: they are trivially 100 % explored.
    """

    def __init__(self, masks) -> None:
        self.ever: dict[str, torch.Tensor] = {mp.name: mp.mask.detach().clone() for mp in masks
                                              if not bool(mp.mask.all())}
        if not self.ever:
            raise ValueError("every masked layer is dense: the ITOP rate is undefined (1.0 trivially)")
        self._masks = masks
        self._hook = None

    @torch.no_grad()
    def observe(self, masks=None) -> None:
        """OR the current masks into ``ever``."""
        for mp in (masks or self._masks):
            if mp.name in self.ever:
                self.ever[mp.name] |= mp.mask

    def attach(self, optimizer: torch.optim.Optimizer) -> "ITOPTracker":
        """Observe after every step of ``optimizer``; returns self."""
        self.detach()
        self._hook = optimizer.register_step_post_hook(lambda opt, args, kwargs: self.observe())
        return self

    def detach(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def rate(self) -> float:
        """``sum |ever| / sum numel`` over the tracked (sparse) layers, in [density, 1]."""
        return sum(int(e.sum()) for e in self.ever.values()) / sum(e.numel() for e in self.ever.values())


# -- continual learning (class- and task-incremental accuracy, forgetting) ---------------------

def continual_accuracy(logits: torch.Tensor, y: torch.Tensor, task_classes: Sequence[int]) -> tuple[float, float]:
    """(class-incremental, task-incremental) accuracy of one task's examples.

    ``logits`` (N, C) over every class of the sequence, ``y`` (N,) labels, ``task_classes`` the
    labels of the task the examples come from. Class-incremental (CIL): argmax over all C outputs
    (the task is not known at test time). Task-incremental (TIL): argmax over the task's outputs only.
    """
    if logits.ndim != 2 or len(logits) != len(y) or len(y) == 0:
        raise ValueError(f"logits (N, C) and labels (N,) must match and be non-empty, got {tuple(logits.shape)}, {tuple(y.shape)}")
    cil = float((logits.argmax(1) == y).double().mean())
    cls = torch.as_tensor(list(task_classes), dtype=torch.long)
    til = float((cls[logits[:, cls].argmax(1)] == y).double().mean())
    return cil, til


def _row(acc: Sequence[Sequence[float | None]], t: int) -> list[float]:
    if not 0 <= t < len(acc):
        raise ValueError(f"task {t} is not in an accuracy matrix of {len(acc)} rows")
    row = [acc[t][j] for j in range(t + 1)]
    if any(v is None for v in row):
        raise ValueError(f"row {t} of the accuracy matrix is missing a task seen so far: {row}")
    return [float(v) for v in row]


def average_accuracy(acc: Sequence[Sequence[float | None]], t: int | None = None) -> float:
    """Mean accuracy over the tasks seen after learning task ``t`` (default: the last row).

    ``acc[i][j]``: accuracy on task ``j`` after learning task ``i`` (defined for ``j <= i``).
    """
    t = len(acc) - 1 if t is None else t
    return sum(_row(acc, t)) / (t + 1)


def forgetting(acc: Sequence[Sequence[float | None]], t: int | None = None) -> float:
    """Mean drop, over the earlier tasks ``j < t``, from the accuracy right after learning ``j`` to now:
    ``F_t = 1/t sum_{j<t} (acc[j][j] - acc[t][j])`` (the definition of AFAF's official code;
    positive = forgotten). 0.0 for ``t = 0``.
    """
    t = len(acc) - 1 if t is None else t
    row = _row(acc, t)
    if t == 0:
        return 0.0
    return sum(float(acc[j][j]) - row[j] for j in range(t)) / t
