"""Random search in the node space of an over-parameterized MLP (a sparse-architecture baseline).

Farahani (2024), "Random Search as a Baseline for Sparse Neural Network
Architecture Search", arXiv:2403.08265.

Search space. An MLP ``in -> h_1 -> ... -> h_L -> out`` (the *parent*) is
initialised once. A configuration at node sparsity ``s`` keeps exactly
``k_l = round((1 - s) h_l)`` nodes of every hidden layer ``l`` (input and output
nodes are always kept). With ``a_l`` the 0/1 vector of kept nodes of layer ``l``
(``a_0 = 1`` for the inputs, ``a_{L+1} = 1`` for the outputs), the weight mask of
the linear map from layer ``l-1`` to layer ``l`` is the outer product::

    M_l[i, j] = a_l[i] * a_{l-1}[j]          (True = kept)

Random search draws ``K`` configurations uniformly on the same initialised parent,
scores each *untrained* subnetwork by its validation loss and keeps the best::

    k* = argmin_k  L_val(theta_0 (.) M^(k)),      L_val = mean cross-entropy

The masks are fixed afterwards (train with ``methods.get("fixed", masks=...)`` or
:class:`~sparsenb.methods.imp.FixedMasks`). Not a registered hook method: it chooses
masks once, before training. The notebook's runs: :mod:`sparsenb.experiments.random_search`.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from ..core.masks import topk_mask

__all__ = ["linear_layers", "sample_node_config", "node_masks", "masked_eval", "random_search"]


def linear_layers(model: nn.Module) -> list[str]:
    """Names of the ``nn.Linear`` modules of ``model`` in forward order."""
    return [name for name, mod in model.named_modules() if isinstance(mod, nn.Linear)]


def sample_node_config(widths: Sequence[int], sparsity: float,
                       generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """One configuration: a bool vector per hidden layer keeping exactly ``round((1 - s) h)`` nodes."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"node sparsity must be in [0, 1), got {sparsity}")
    config = []
    for h in widths:
        keep = max(1, round((1.0 - sparsity) * h))
        config.append(topk_mask(torch.rand(h, generator=generator), keep))
    return config


def node_masks(model: nn.Module, config: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weight masks ``{"<linear>.weight": M_l}`` of a node configuration (``M_l = a_l a_{l-1}^T``)."""
    layers = linear_layers(model)
    if len(config) != len(layers) - 1:
        raise ValueError(f"{len(layers)} linear layers need {len(layers) - 1} hidden-node vectors, got {len(config)}")
    modules = dict(model.named_modules())
    out = {}
    for i, name in enumerate(layers):
        lin = modules[name]
        rows = config[i] if i < len(config) else torch.ones(lin.out_features, dtype=torch.bool)
        cols = config[i - 1] if i > 0 else torch.ones(lin.in_features, dtype=torch.bool)
        if rows.numel() != lin.out_features or cols.numel() != lin.in_features:
            raise ValueError(f"{name}: node vectors of size {rows.numel()}x{cols.numel()} do not match "
                             f"the layer's {lin.out_features}x{lin.in_features}")
        out[f"{name}.weight"] = rows[:, None] & cols[None, :]
    return out


@torch.no_grad()
def masked_eval(model: nn.Module, masks: dict[str, torch.Tensor], X: torch.Tensor,
                y: torch.Tensor) -> dict[str, float]:
    """Cross-entropy and accuracy of ``model`` with ``weight * mask`` (the model is not modified)."""
    params = dict(model.named_parameters())
    params.update({n: params[n] * m.to(params[n].device) for n, m in masks.items()})
    was_training = model.training
    model.eval()
    logits = functional_call(model, params, (X,))
    model.train(was_training)
    return {"loss": float(F.cross_entropy(logits, y)), "acc": float((logits.argmax(1) == y).float().mean())}


def random_search(model: nn.Module, sparsity: float, X_val: torch.Tensor, y_val: torch.Tensor,
                  candidates: int, generator: torch.Generator | None = None) -> dict[str, Any]:
    """Best of ``candidates`` random node configurations of ``model`` by validation loss at initialisation.

    Returns ``{"best": index of the lowest loss, "configs": [...], "losses": [...], "accs": [...]}``;
    configuration 0 is the uniform-random baseline.
    """
    if candidates < 1:
        raise ValueError(f"candidates must be >= 1, got {candidates}")
    modules = dict(model.named_modules())
    widths = [modules[n].out_features for n in linear_layers(model)[:-1]]
    configs, losses, accs = [], [], []
    for _ in range(candidates):
        config = sample_node_config(widths, sparsity, generator)
        ev = masked_eval(model, node_masks(model, config), X_val, y_val)
        configs.append(config)
        losses.append(ev["loss"])
        accs.append(ev["acc"])
    best = min(range(candidates), key=losses.__getitem__)
    return {"best": best, "configs": configs, "losses": losses, "accs": accs}
