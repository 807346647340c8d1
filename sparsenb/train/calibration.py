"""Predictive quality beyond accuracy: NLL, expected calibration error, Brier score, ensembles.

Inputs are class probabilities ``probs`` (N, C), rows summing to 1, and labels ``y`` (N,) int.

* NLL: ``-mean_i log p_i[y_i]`` (natural log; probabilities clamped at 1e-12).
* ECE (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017, Eq. 3): split the
  confidences ``max_k p_ik`` into ``n_bins`` equal-width bins on [0, 1];
  ``ECE = sum_b |B_b|/N * |acc(B_b) - conf(B_b)|``. 15 bins as in FreeTickets (Liu et al., 2022).
* Brier score (Brier 1950, multi-class form): ``mean_i sum_k (p_ik - 1[y_i = k])^2``, in [0, 2].
* Ensembles average the members' softmax outputs (Lakshminarayanan et al., 2017; FreeTickets).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch import nn

__all__ = ["nll", "ece", "brier", "reliability", "summary", "ensemble_probs", "predict_probs"]


def _check(probs: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    probs = torch.as_tensor(probs, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.long)
    if probs.ndim != 2 or y.ndim != 1 or len(probs) != len(y) or len(y) == 0:
        raise ValueError(f"need probs (N, C) and labels (N,) with N > 0, got {tuple(probs.shape)} "
                         f"and {tuple(y.shape)}")
    if not torch.allclose(probs.sum(1), torch.ones(len(probs), dtype=torch.float64), atol=1e-4):
        raise ValueError("rows of probs must sum to 1: pass softmax outputs, not logits")
    return probs, y


def nll(probs: torch.Tensor, y: torch.Tensor) -> float:
    """Mean negative log-likelihood of the true class (nats)."""
    probs, y = _check(probs, y)
    return float(-probs[torch.arange(len(y)), y].clamp_min(1e-12).log().mean())


def reliability(probs: torch.Tensor, y: torch.Tensor, n_bins: int = 15) -> dict[str, torch.Tensor]:
    """Per-bin ``count``, ``accuracy`` and ``confidence`` (NaN in empty bins) and the bin ``edges``."""
    probs, y = _check(probs, y)
    conf, pred = probs.max(1)
    correct = (pred == y).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    # bin b holds confidences in (edges[b], edges[b+1]]; a confidence of exactly 0 cannot occur
    idx = torch.bucketize(conf, edges[1:-1], right=False)
    count = torch.bincount(idx, minlength=n_bins).double()
    acc = torch.bincount(idx, weights=correct, minlength=n_bins) / count
    mean_conf = torch.bincount(idx, weights=conf, minlength=n_bins) / count
    return {"edges": edges, "count": count, "accuracy": acc, "confidence": mean_conf}


def ece(probs: torch.Tensor, y: torch.Tensor, n_bins: int = 15) -> float:
    """Expected calibration error with ``n_bins`` equal-width confidence bins (Guo et al. Eq. 3)."""
    r = reliability(probs, y, n_bins)
    filled = r["count"] > 0
    gap = (r["accuracy"][filled] - r["confidence"][filled]).abs()
    return float((r["count"][filled] * gap).sum() / r["count"].sum())


def brier(probs: torch.Tensor, y: torch.Tensor) -> float:
    """Multi-class Brier score: mean over examples of the squared distance to the one-hot label."""
    probs, y = _check(probs, y)
    onehot = torch.nn.functional.one_hot(y, probs.shape[1]).double()
    return float(((probs - onehot) ** 2).sum(1).mean())


def summary(probs: torch.Tensor, y: torch.Tensor, n_bins: int = 15) -> dict[str, float]:
    """``{"acc", "nll", "ece", "brier"}`` (accuracy in percent)."""
    probs, y = _check(probs, y)
    acc = float((probs.argmax(1) == y).double().mean() * 100)
    return {"acc": acc, "nll": nll(probs, y), "ece": ece(probs, y, n_bins), "brier": brier(probs, y)}


def ensemble_probs(member_probs: Sequence[torch.Tensor]) -> torch.Tensor:
    """Average of the members' probabilities (N, C): the ensemble's prediction."""
    if len(member_probs) == 0:
        raise ValueError("an ensemble needs at least one member")
    shapes = {tuple(p.shape) for p in member_probs}
    if len(shapes) != 1:
        raise ValueError(f"members predict different shapes: {sorted(shapes)}")
    return torch.stack([torch.as_tensor(p, dtype=torch.float64) for p in member_probs]).mean(0)


@torch.no_grad()
def predict_probs(model: nn.Module, loader: Iterable, device: torch.device | str = "cpu"
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax outputs (N, C) float64 and labels (N,) of ``model`` (in eval mode) over ``loader``."""
    was_training = model.training
    model.eval()
    probs, labels = [], []
    try:
        for X, y in loader:
            logits = model(X.to(device))
            probs.append(torch.softmax(logits.double(), 1).cpu())
            labels.append(y.cpu())
    finally:
        model.train(was_training)
    return torch.cat(probs), torch.cat(labels)
