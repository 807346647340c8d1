"""Binary gates on the weights of a model, trained with a straight-through estimator, removable at inference.

Zhi, Babbar, Liu, Sun, Silavong, Shi, Moran 2023, arXiv:2302.10798, "Learning a Consensus Sub-Network
with Polarization Regularization and One Pass Training": a binary gate decides whether a connection
(or a channel) is used; the gates are trained together with the weights in one pass and removed at
inference, which leaves a static subnetwork. No official code was found; every choice below is ours.

One real gate score ``g`` in ``[0, 1]`` per gated unit: per **connection** (``granularity="connection"``,
``g`` has the weight's shape) or per **output channel** (``granularity="channel"``, ``g`` has shape
``(out,)``: an output neuron of a ``Linear``, a filter of a ``Conv2d``, broadcast over the rest of the
weight). The forward pass uses the hard gate

    b = 1[g >= threshold]  (exactly 0.0 or 1.0),    W_eff = W * b                                  (1)

and the backward pass treats the step function as the identity (straight-through estimator, Bengio,
Leonard, Courville 2013, arXiv:1308.3432):

    dL/dg = dL/db = dL/dW_eff * W    (connection);    summed over the weights of the channel (channel).   (2)

A weight whose gate is closed gets no gradient (``dL/dW = dL/dW_eff * b = 0``) but its gate does, so a
closed gate can reopen. The scores are clamped to ``[0, 1]`` after every update (:meth:`Gates.clamp_`);
the regulariser that pushes them to 0 or 1 is in :mod:`sparsenb.methods.polarization_gates`.

What is gated (our choice): every ``weight`` of every ``nn.Linear`` and ``nn.Conv2d`` (first and last
layers included; biases and batch-norm parameters are not gated), unless named in ``skip``.

Mask semantics: a bool mask per gated weight, ``True`` = kept. :meth:`Gates.remove` takes the gates
out of the model and writes ``W * b`` into the weight, so the model that remains is a plain model whose
removed connections are exactly 0: its outputs equal the gated model's outputs with hard gates, bit for
bit (multiplying by 1.0 or 0.0 is exact). ``remove(sparsity=s)`` instead keeps exactly
``round((1 - s) * n)`` of the ``n`` gates, those with the largest scores (ties by position), for an exact
achieved sparsity.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn
from torch.nn.utils import parametrize

__all__ = ["Gates", "GatedWeight", "hard_gate", "gateable_modules", "GRANULARITIES"]

GRANULARITIES = ("connection", "channel")


class _HardGateSTE(torch.autograd.Function):
    """``1[g >= threshold]`` forward, identity backward (Eq. 1 and 2)."""

    @staticmethod
    def forward(ctx, g: torch.Tensor, threshold: float) -> torch.Tensor:  # type: ignore[override]
        return (g >= threshold).to(g.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return grad, None


def hard_gate(g: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """The hard gate ``1[g >= threshold]`` (same shape and dtype as ``g``, values exactly 0 or 1) whose
    gradient passes straight through to ``g``."""
    return _HardGateSTE.apply(g, threshold)


class GatedWeight(nn.Module):
    """Parametrization ``W -> W * b(g)`` of one weight (Eq. 1); ``g`` is :attr:`score`.

    ``score`` has the weight's shape (connection) or ``(out,)`` (channel, broadcast over the other dims).
    """

    def __init__(self, shape: torch.Size, granularity: str, init: float, threshold: float):
        super().__init__()
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
        self.granularity = granularity
        self.threshold = float(threshold)
        gate_shape = shape if granularity == "connection" else shape[:1]
        self.score = nn.Parameter(torch.full(gate_shape, float(init)))

    def gate(self, ndim: int) -> torch.Tensor:
        """The hard gate, shaped to broadcast against a weight of ``ndim`` dims."""
        b = hard_gate(self.score, self.threshold)
        return b if self.granularity == "connection" else b.reshape(-1, *([1] * (ndim - 1)))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.gate(weight.dim())


def gateable_modules(model: nn.Module, skip: Iterable[str] = ()) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every ``nn.Linear`` / ``nn.Conv2d`` of ``model`` not named in ``skip``, in order."""
    skip = set(skip)
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d)) and n not in skip]


class Gates:
    """Install binary gates on the weights of ``model`` (in place); see the module docstring.

    Args:
        model: the network; its ``Linear`` / ``Conv2d`` weights get a gate parametrization.
        granularity: ``"connection"`` (one gate per weight) or ``"channel"`` (one per output channel).
        init: initial gate score (``>= threshold`` = open), in [0, 1].
        threshold: a gate is open when its score is ``>= threshold``.
        skip: module names left ungated.

    The gate scores are parameters of the model (``model.parameters()`` includes them once installed);
    :meth:`parameters` lists only them, :meth:`weight_parameters` the model's other parameters.
    """

    def __init__(self, model: nn.Module, granularity: str = "connection", init: float = 1.0,
                 threshold: float = 0.5, skip: Iterable[str] = ()):
        if not 0.0 <= init <= 1.0:
            raise ValueError(f"init must be in [0, 1], got {init}")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        self.model = model
        self.granularity = granularity
        self.threshold = float(threshold)
        self.modules: dict[str, nn.Module] = {}
        self.gates: dict[str, GatedWeight] = {}
        for name, module in gateable_modules(model, skip):
            g = GatedWeight(module.weight.shape, granularity, init, threshold).to(module.weight.device)
            parametrize.register_parametrization(module, "weight", g)
            self.modules[name] = module
            self.gates[name] = g
        if not self.gates:
            raise ValueError("the model has no Linear or Conv2d weight to gate")
        self.removed = False

    # ------------------------------------------------------------------ views
    def parameters(self) -> list[nn.Parameter]:
        """The gate scores, one tensor per gated weight."""
        return [g.score for g in self.gates.values()]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter of the model that is not a gate score (the weights, biases, BN)."""
        ids = {id(p) for p in self.parameters()}
        return [p for p in self.model.parameters() if id(p) not in ids]

    def scores(self) -> torch.Tensor:
        """All gate scores, flattened and concatenated in layer order (a detached copy), shape ``(n_gates,)``."""
        return torch.cat([g.score.detach().reshape(-1) for g in self.gates.values()]).clone()

    def weights(self, name: str) -> torch.Tensor:
        """The raw (ungated) weight of gated module ``name``."""
        return self.modules[name].parametrizations.weight.original

    def masks(self) -> dict[str, torch.Tensor]:
        """``{module name: bool mask of the weight's shape}``, True = connection kept by the hard gates."""
        out = {}
        for name, g in self.gates.items():
            w = self.weights(name)
            out[name] = (g.gate(w.dim()).detach().expand_as(w) > 0).clone()
        return out

    def weights_per_gate(self) -> torch.Tensor:
        """How many weights each gate covers, aligned with :meth:`scores` (1 for connection gates)."""
        parts = []
        for name, g in self.gates.items():
            w = self.weights(name)
            per = 1 if self.granularity == "connection" else w[0].numel()
            parts.append(torch.full((g.score.numel(),), per, dtype=torch.long))
        return torch.cat(parts)

    def sparsity(self) -> float:
        """Fraction of gated **connections** (weights) removed by the hard gates."""
        m = self.masks()
        total = sum(x.numel() for x in m.values())
        return 1.0 - sum(int(x.sum()) for x in m.values()) / total

    def gate_sparsity(self) -> float:
        """Fraction of **gates** closed (equals :meth:`sparsity` for connection gates)."""
        s = self.scores()
        return float((s < self.threshold).float().mean())

    def layer_sparsity(self) -> dict[str, float]:
        """``{module name: fraction of its weights removed}``."""
        return {n: 1.0 - float(m.float().mean()) for n, m in self.masks().items()}

    @torch.no_grad()
    def clamp_(self) -> None:
        """Clamp every score to [0, 1]."""
        for p in self.parameters():
            p.clamp_(0.0, 1.0)

    # ---------------------------------------------------------------- removal
    @torch.no_grad()
    def exact_masks(self, sparsity: float) -> dict[str, torch.Tensor]:
        """Masks that keep exactly ``round((1 - sparsity) * n_gates)`` gates, the largest scores over all
        layers (ties broken by position: the earlier gate is kept). Connection masks of the weights' shapes."""
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
        s = self.scores()
        k = round((1.0 - sparsity) * s.numel())
        order = torch.sort(-s, stable=True).indices
        keep = torch.zeros(s.numel(), dtype=torch.bool)
        keep[order[:k]] = True
        out, start = {}, 0
        for name, g in self.gates.items():
            n = g.score.numel()
            kg = keep[start:start + n].reshape(g.score.shape).to(g.score.device)
            start += n
            w = self.weights(name)
            out[name] = (kg if self.granularity == "connection" else kg.reshape(-1, *([1] * (w.dim() - 1)))).expand_as(w).clone()
        return out

    @torch.no_grad()
    def remove(self, sparsity: float | None = None) -> dict[str, torch.Tensor]:
        """Take the gates out of the model; return the masks of the static subnetwork that is left.

        ``sparsity=None``: the hard gates (Eq. 1) decide, and the model's outputs are unchanged.
        ``sparsity=s``: :meth:`exact_masks` decide (exactly ``round((1 - s) n)`` gates kept).
        Afterwards each weight is the plain tensor ``W * mask`` (removed connections exactly 0).
        """
        if self.removed:
            raise RuntimeError("the gates were already removed")
        masks = self.masks() if sparsity is None else self.exact_masks(sparsity)
        for name, module in self.modules.items():
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
            module.weight.mul_(masks[name].to(module.weight.dtype))
        self.removed = True
        return masks
