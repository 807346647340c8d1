"""Score-based subnetwork selection over frozen random weights ("popup" layers).

Edge-popup (Ramanujan, Wortsman, Kembhavi, Farhadi, Rastegari 2020, CVPR, "What's Hidden in
a Randomly Weighted Neural Network?") keeps every weight ``W`` frozen at its random
initialisation and learns one real score ``S`` per weight. The forward pass uses

    W_eff = W * h(S),   h(S)_i = 1 if S_i is among the top (1 - s) fraction of the scores, else 0   (Eq. 1)

and the backward pass treats ``h`` as the identity (straight-through estimator), so the
score gradient is ``dL/dS = dL/dW_eff * W`` (Ramanujan et al., Sec. 3, the update of Eq. 2).
Edge-popup ranks the scores **per layer** (``scope="layerwise"``: every layer keeps the top
``1 - s`` of its own weights) at the final sparsity from the first step, and it ranks their
**absolute values** (``rank="abs"``, following the authors' code, allenai/hidden-networks
``utils/conv_type.py``, ``SubnetConv.clamped_scores`` = ``scores.abs()``); the straight-through
gradient then reaches ``S`` through ``|S|``: ``dL/dS = dL/dW_eff * W * sign(S)``.

UGTs (Huang, Chen, Fang, Menkovski, Zhao, Yin, Pei, Mocanu, Wang, Pechenizkiy, Liu 2022,
LoG, "You Can Have Better Graph Neural Networks by Not Training Weights at All: Finding
Untrained GNNs Tickets") change two things (Sec. 3): the threshold is **global** over the
scores of all layers (``scope="global"``), and the sparsity is raised gradually from 0 to its
final value over the first half of training (:func:`gradual_sparsity`). They rank the raw scores
(``rank="raw"``, following the authors' code, TianjinYellow/UGTs-LoG ``models/networks/GCN.py``,
``GCN.get_threshold``: one percentile over all layers' scores, a weight is kept if its score is at
or above it).

What is scored (decided here, following the UGTs code, which replaces these and only these
by score layers): every ``weight`` of a ``torch.nn.Linear`` or ``torch_geometric`` ``Linear``
(the ``lin`` of ``GCNConv`` and ``GATConv``, the MLP inside ``GINConv``) and the attention
vectors ``att_src`` / ``att_dst`` of ``GATConv``. Biases and normalisation parameters are not
scored (the models in :mod:`sparsenb.models.gnn` have none in popup mode).

Mask semantics: a bool mask per scored tensor, 1 = kept; the effective weight is exactly
``W * mask``, so a pruned weight is exactly zero in every forward pass. The frozen weights
never change (``requires_grad=False``); only the scores are trained. The masks are recomputed
from the scores before every forward pass of the model (a forward pre-hook), so they always
follow the current scores and sparsity. The number kept is exact:
``round((1 - s) * numel)`` over all scored weights (global) or per tensor (layerwise),
ties broken by position.
"""
from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..core.masks import topk_mask

__all__ = ["Popup", "ScoredWeight", "scorable_parameters", "gradual_sparsity", "kaiming_uniform_",
           "signed_constant_", "fan_in_uniform_"]

SCOPES = ("global", "layerwise")
RANKS = ("raw", "abs")


def gradual_sparsity(epoch: int, final: float, epochs: int, fraction: float = 0.5) -> float:
    """UGTs' sparsity schedule: ``final * epoch / (fraction * epochs)`` for the first ``fraction`` of
    training (0 at epoch 0), then ``final`` (the linear ramp of the UGTs code, ``--sparse_decay``)."""
    if not 0.0 <= final < 1.0:
        raise ValueError(f"final sparsity must be in [0, 1), got {final}")
    ramp = fraction * epochs
    if ramp <= 0 or epoch >= ramp:
        return float(final)
    return float(final) * max(0, epoch) / ramp


def kaiming_uniform_(t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """U(-b, b), b = sqrt(6 / fan_in) (Kaiming uniform, ReLU gain; the UGTs code's default for the
    frozen weights and the scores). fan_in = the last dimension (the input of ``x @ W.T``)."""
    bound = math.sqrt(6.0 / t.shape[-1])
    with torch.no_grad():
        return t.uniform_(-bound, bound, generator=generator)


def signed_constant_(t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """+-sqrt(2 / fan_in) with random signs (Ramanujan et al. 2020's "signed Kaiming constant")."""
    std = math.sqrt(2.0 / t.shape[-1])
    with torch.no_grad():
        signs = torch.randint(0, 2, t.shape, generator=generator, device=t.device, dtype=t.dtype) * 2 - 1
        return t.copy_(signs * std)


def fan_in_uniform_(t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """U(-b, b), b = 1 / sqrt(fan_in), fan_in = ``t[0].numel()`` (all but the output dimension, so a conv
    kernel's ``in * k * k``): PyTorch's default layer init, ``kaiming_uniform_(a=sqrt(5))``, which the
    edge-popup code (allenai/hidden-networks ``utils/conv_type.py``) uses for the scores of conv layers."""
    bound = 1.0 / math.sqrt(max(1, t[0].numel()))
    with torch.no_grad():
        return t.uniform_(-bound, bound, generator=generator)


_INITS = {"kaiming_uniform": kaiming_uniform_, "signed_constant": signed_constant_, "fan_in_uniform": fan_in_uniform_}


def scorable_parameters(model: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """``(qualified name, module, attribute)`` of every tensor a :class:`Popup` scores (see the module doc)."""
    from torch_geometric.nn import GATConv
    from torch_geometric.nn.dense.linear import Linear as PygLinear

    found = []
    for mod_name, module in model.named_modules():
        prefix = f"{mod_name}." if mod_name else ""
        if isinstance(module, (nn.Linear, PygLinear)):
            found.append((f"{prefix}weight", module, "weight"))
        if isinstance(module, GATConv):
            for att in ("att_src", "att_dst"):
                if isinstance(getattr(module, att, None), nn.Parameter):
                    found.append((f"{prefix}{att}", module, att))
    return found


class ScoredWeight(nn.Module):
    """Parametrization ``W -> W * h(S)`` with a straight-through gradient to the scores ``S``.

    ``scores``: float Parameter shaped like ``W``. ``mask``: bool buffer shaped like ``W`` (1 = kept),
    set by :meth:`Popup.refresh` from :meth:`ranked`. Forward value: exactly ``W * mask``
    (``r - r.detach()`` is exactly 0); gradient to ``scores``: ``dL/dW_eff * W * dr/dS``
    (Ramanujan et al. 2020, Sec. 3), where ``r`` = :meth:`ranked` is ``S`` (``rank="raw"``) or
    ``|S|`` (``rank="abs"``).
    """

    def __init__(self, scores: torch.Tensor, rank: str = "raw"):
        super().__init__()
        if rank not in RANKS:
            raise ValueError(f"unknown rank {rank!r}; choose one of {RANKS}")
        self.rank = rank
        self.scores = nn.Parameter(scores)
        self.register_buffer("mask", torch.ones_like(scores, dtype=torch.bool))

    def ranked(self) -> torch.Tensor:
        """The values the top-k ranks: the scores, or their absolute values."""
        return self.scores.abs() if self.rank == "abs" else self.scores

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        r = self.ranked()
        ste = self.mask.to(weight.dtype) + (r - r.detach())
        return weight * ste


class Popup:
    """Freeze a model's weights and select a subnetwork by learned scores (edge-popup / UGTs).

    Args:
        model: any module; its :func:`scorable_parameters` get scores (GCN/GAT/GIN of
            :mod:`sparsenb.models.gnn`, or any model with ``nn.Linear`` layers).
        sparsity: fraction of scored weights that are pruned, in [0, 1).
        scope: ``"global"`` (UGTs: one threshold over all layers' scores) or ``"layerwise"``
            (edge-popup: every scored tensor keeps the top ``1 - sparsity`` of its own scores).
        weight_init: ``"kaiming_uniform"`` (UGTs code default), ``"signed_constant"`` (edge-popup),
            or ``None`` to keep the model's own initial weights.
        score_init: ``"kaiming_uniform"`` (UGTs code default) or ``"signed_constant"``.
        rank: ``"raw"`` (UGTs: rank the scores) or ``"abs"`` (edge-popup: rank ``|scores|``).
        generator: torch.Generator for the weight and score draws (None: the global RNG).
        targets: the ``(name, module, attribute)`` tensors to score (default :func:`scorable_parameters`,
            Linear/GAT weights); e.g. conv weights for edge-popup on a CNN.
        keep: ``scope="layerwise"`` only: name -> number of weights kept in that tensor, fixed whatever
            the sparsity (default: ``round((1 - sparsity) * numel)`` per tensor).

    The frozen weights stay in ``module.parametrizations.<attr>.original`` (``requires_grad=False``);
    :meth:`parameters` yields only the scores, for the optimizer. Call :meth:`set_sparsity` to change
    the sparsity (the masks follow at the next forward pass); :meth:`refresh` recomputes them now.
    """

    def __init__(self, model: nn.Module, sparsity: float, scope: str = "global",
                 weight_init: str | None = "kaiming_uniform", score_init: str = "kaiming_uniform",
                 generator: torch.Generator | None = None, rank: str = "raw",
                 targets: list[tuple[str, nn.Module, str]] | None = None, keep: dict[str, int] | None = None):
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; choose one of {SCOPES}")
        if rank not in RANKS:
            raise ValueError(f"unknown rank {rank!r}; choose one of {RANKS}")
        for what, init in (("weight_init", weight_init), ("score_init", score_init)):
            if init is not None and init not in _INITS:
                raise ValueError(f"unknown {what} {init!r}; choose one of {sorted(_INITS)}")
        targets = scorable_parameters(model) if targets is None else list(targets)
        if keep is not None and scope != "layerwise":
            raise ValueError("keep (per-tensor counts) needs scope='layerwise'")
        self.keep = dict(keep) if keep is not None else None
        self._targets = targets
        if not targets:
            raise ValueError(f"{type(model).__name__} has no Linear/GATConv weights to score")
        self.model, self.scope, self.rank = model, scope, rank
        self.names = [name for name, _, _ in targets]
        self.scored: dict[str, ScoredWeight] = {}
        for p in model.parameters():
            p.requires_grad_(False)
        for name, module, attr in targets:
            weight = getattr(module, attr)
            if weight_init is not None:
                _INITS[weight_init](weight.data, generator)
            scores = _INITS[score_init](torch.empty_like(weight.data), generator)
            par = ScoredWeight(scores, rank)
            parametrize.register_parametrization(module, attr, par, unsafe=True)
            module.parametrizations[attr].original.requires_grad_(False)
            self.scored[name] = par
        self.set_sparsity(sparsity)
        self._hook = model.register_forward_pre_hook(lambda mod, args: self.refresh())
        self.refresh()

    # -- sparsity and masks -------------------------------------------------
    def set_sparsity(self, sparsity: float) -> None:
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
        self.sparsity = float(sparsity)

    def keep_counts(self) -> dict[str, int]:
        """Weights kept per scored tensor at the current sparsity (global: the exact total is split by rank)."""
        return {n: int(p.mask.sum()) for n, p in self.scored.items()}

    @torch.no_grad()
    def refresh(self) -> None:
        """Recompute every mask from the current scores and sparsity (exact counts, see module doc)."""
        if self.scope == "layerwise":
            for name, p in self.scored.items():
                k = self.keep[name] if self.keep is not None else round((1.0 - self.sparsity) * p.scores.numel())
                p.mask.copy_(topk_mask(p.ranked(), k))
            return
        flat = torch.cat([p.ranked().reshape(-1) for p in self.scored.values()])
        mask = topk_mask(flat, round((1.0 - self.sparsity) * flat.numel()))
        offset = 0
        for p in self.scored.values():
            n = p.scores.numel()
            p.mask.copy_(mask[offset:offset + n].view_as(p.scores))
            offset += n

    # -- access -------------------------------------------------------------
    def parameters(self) -> Iterable[nn.Parameter]:
        """The scores (the only trainable tensors)."""
        return [p.scores for p in self.scored.values()]

    def masks(self) -> dict[str, torch.Tensor]:
        """name -> bool mask (1 = kept), shaped like the weight."""
        return {n: p.mask for n, p in self.scored.items()}

    def density(self) -> float:
        """Fraction of scored weights kept."""
        kept = sum(int(p.mask.sum()) for p in self.scored.values())
        return kept / sum(p.mask.numel() for p in self.scored.values())

    def density_report(self) -> dict[str, dict[str, float]]:
        """name -> {"nnz", "numel", "density"} of the masks."""
        return {n: {"nnz": int(p.mask.sum()), "numel": p.mask.numel(), "density": float(p.mask.float().mean())}
                for n, p in self.scored.items()}

    def remove(self) -> None:
        """Bake ``W * mask`` into plain weights and drop the scores and the pre-forward hook."""
        self._hook.remove()
        for name, module, attr in self._targets:
            if parametrize.is_parametrized(module, attr):
                parametrize.remove_parametrizations(module, attr, leave_parametrized=True)
