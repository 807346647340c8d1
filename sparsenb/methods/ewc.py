"""Elastic weight consolidation (EWC), a regularisation baseline for continual learning.

Kirkpatrick et al. (2017), "Overcoming catastrophic forgetting in neural networks", PNAS 114(13).
After task ``k`` the parameters ``θ*_k`` and the diagonal of the (empirical) Fisher information
``F_k,i = E_x[(∂ log p(y|x, θ) / ∂θ_i)^2]`` at ``θ*_k`` are stored; training a later task adds

    L_EWC(θ) = λ / 2 * sum_k sum_i F_k,i (θ_i - θ*_k,i)^2

to its loss. ``y`` is the example's true label (empirical Fisher), one gradient per example.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EWC", "diagonal_fisher"]


def diagonal_fisher(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Empirical diagonal Fisher ``mean_n (∂ log p(y_n | x_n) / ∂θ)^2`` of every trainable parameter.

    ``X`` (N, *input), ``y`` (N,) int64; one backward per example; the model is put in eval mode
    for it (no dropout) and left in the mode it was in.
    """
    was = model.training
    model.eval()
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    for i in range(len(X)):
        model.zero_grad()
        logp = F.log_softmax(model(X[i:i + 1]), dim=1)[0, y[i]]
        logp.backward()
        for n, p in params.items():
            if p.grad is not None:
                fisher[n] += p.grad.detach() ** 2
    model.zero_grad()
    model.train(was)
    return {n: f / max(1, len(X)) for n, f in fisher.items()}


class EWC:
    """EWC penalty over the tasks consolidated so far (one Fisher and one anchor per task).

    ``consolidate(X, y)`` after a task; ``penalty()`` (a scalar tensor with gradient) during a later one.
    """

    def __init__(self, model: nn.Module, lam: float):
        if lam < 0:
            raise ValueError(f"lambda must be >= 0, got {lam}")
        self.model = model
        self.lam = float(lam)
        self.tasks: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []

    def consolidate(self, X: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        fisher = diagonal_fisher(self.model, X, y)
        anchor = {n: p.detach().clone() for n, p in self.model.named_parameters() if n in fisher}
        self.tasks.append((fisher, anchor))
        return fisher

    def penalty(self) -> torch.Tensor:
        params = dict(self.model.named_parameters())
        total = torch.zeros(())
        for fisher, anchor in self.tasks:
            for n, f in fisher.items():
                total = total + (f * (params[n] - anchor[n]) ** 2).sum()
        return 0.5 * self.lam * total
