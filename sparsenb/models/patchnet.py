"""The signal-noise patch model: data, a two-layer network with a fixed second layer, random neuron masks.

Cao, Chen, Belkin, Gu (2022), "Benign Overfitting in Two-layer Convolutional Neural Networks",
NeurIPS, with the random pruning of Yang, Liang, Guo, Wu, Wang (2023), "Theoretical
Characterization of How Neural Network Pruning Affects its Generalization", ICLR.

Data (one example, two patches of dimension ``d``)::

    y ~ Uniform{-1, +1},   x = (x^(1), x^(2)) = (y * mu, xi),
    mu = ||mu|| * e_1,     xi ~ N(0, sigma_p^2 * (I - e_1 e_1^T))

Network (2m neurons, ``m`` per class ``j`` in {+1, -1}; the second layer is fixed)::

    f(W, x)     = F_{+1}(W_{+1}, x) - F_{-1}(W_{-1}, x)
    F_j(W_j, x) = (1/m) sum_{r=1..m} sum_{k=1,2} sigma(<w_{j,r} (.) M_{j,r}, x^(k)>),   sigma(z) = max(0, z)^q

``M_{j,r}`` (True = kept) keeps exactly ``round((1 - p) d)`` random input coordinates of
neuron (j, r). Signal learning ``gamma_{j,r} = <w_{j,r} (.) M_{j,r}, mu>`` and noise
memorization ``rho_{j,r,i} = <w_{j,r} (.) M_{j,r}, xi_i>`` are measured by :func:`signal_noise`.
The notebook's experiment (training by gradient descent, sweeps, figures):
:mod:`sparsenb.experiments.pruning_fraction`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..core.masks import topk_mask

__all__ = ["PatchData", "make_patch_data", "PatchNet", "neuron_masks", "signal_noise"]


@dataclass
class PatchData:
    """Examples of the signal-noise patch model.

    X: float (n, 2, d): patch 0 is ``y * mu``, patch 1 is the noise ``xi``.
    y: float (n,) in {-1, +1}.
    mu: float (d,), the signal vector ``||mu|| e_1``.
    """

    X: torch.Tensor
    y: torch.Tensor
    mu: torch.Tensor

    @property
    def xi(self) -> torch.Tensor:
        return self.X[:, 1]


def make_patch_data(n: int, d: int, mu_norm: float, sigma_p: float,
                    generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> PatchData:
    """``n`` examples ``x = (y mu, xi)``, ``mu = mu_norm e_1``, ``xi ~ N(0, sigma_p^2 (I - e_1 e_1^T))``."""
    if d < 2 or n < 1:
        raise ValueError(f"need n >= 1 and d >= 2, got n={n}, d={d}")
    y = torch.randint(0, 2, (n,), generator=generator).to(dtype) * 2 - 1
    mu = torch.zeros(d, dtype=dtype)
    mu[0] = mu_norm
    xi = torch.randn(n, d, generator=generator, dtype=dtype) * sigma_p
    xi[:, 0] = 0.0  # project out the signal direction
    X = torch.stack([y[:, None] * mu, xi], dim=1)
    return PatchData(X, y, mu)


class PatchNet(nn.Module):
    """The two-layer network ``f(W, x) = F_{+1} - F_{-1}`` of the module docstring.

    ``weight`` has shape ``(2, m, d)``: ``weight[0]`` are the ``m`` neurons of class +1,
    ``weight[1]`` those of class -1. The fixed second layer is ``+-1/m``. Prune it
    with ``Masking(net, names=["weight"])``; the mask is applied to the weights.
    Input ``(N, 2, d)``; output ``(N,)`` real scores (the predicted label is the sign).
    """

    def __init__(self, d: int, m: int, q: float = 3.0, sigma_0: float = 0.01,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.d, self.m, self.q = d, m, q
        self.weight = nn.Parameter(torch.randn(2, m, d, generator=generator) * sigma_0)

    def activation(self, z: torch.Tensor) -> torch.Tensor:
        return F.relu(z).pow(self.q)

    def preactivations(self, X: torch.Tensor) -> torch.Tensor:
        """``<w_{j,r}, x_i^(k)>`` as ``(N, 2 patches, 2 classes, m)``."""
        return torch.einsum("nkd,jrd->nkjr", X, self.weight)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        F_j = self.activation(self.preactivations(X)).sum(dim=(1, 3)) / self.m  # (N, 2)
        return F_j[:, 0] - F_j[:, 1]


def neuron_masks(d: int, m: int, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bool ``(2, m, d)``: every neuron keeps exactly ``round((1 - p) d)`` random input coordinates."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"pruning fraction p must be in [0, 1), got {p}")
    keep = round((1.0 - p) * d)
    if keep < 1:
        raise ValueError(f"p={p} keeps no input coordinate of d={d}")
    scores = torch.rand(2 * m, d, generator=generator)
    return torch.stack([topk_mask(s, keep) for s in scores]).view(2, m, d)


@torch.no_grad()
def signal_noise(net: PatchNet, data: PatchData) -> dict[str, float]:
    """Signal learning and noise memorization of the (masked) weights.

    ``signal_max`` = max_{j,r} |<w_{j,r}, mu>|, ``signal_mean`` = mean_{j,r} |<w_{j,r}, mu>|;
    ``noise_max`` = mean_i max_r |<w_{y_i,r}, xi_i>| (how strongly each training example's
    noise is memorized by the neurons of its own class), ``noise_mean`` = mean_{i,r} of the same.
    """
    w = net.weight
    sig = (w @ data.mu).abs()  # (2, m)
    rho = torch.einsum("nd,jrd->njr", data.xi, w).abs()  # (n, 2, m)
    own = torch.where(data.y[:, None] > 0, rho[:, 0], rho[:, 1])  # (n, m): neurons of class y_i
    return {"signal_max": float(sig.max()), "signal_mean": float(sig.mean()),
            "noise_max": float(own.max(dim=1).values.mean()), "noise_mean": float(own.mean())}
