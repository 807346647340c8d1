"""Pruning at initialisation: score the untrained network once, then train with fixed masks.

* ``snip``: Lee, Ajanthan, Torr (2019), "SNIP: Single-shot Network Pruning based
  on Connection Sensitivity", ICLR. Keep the largest ``|g * theta|`` (one batch).
* ``grasp``: Wang, Zhang, Grosse (2020), "Picking Winning Tickets Before Training
  by Preserving Gradient Flow", ICLR. Remove the largest ``-theta * (H g)``,
  i.e. keep the largest ``theta * (H g)`` (logits / T, T = 200).
* ``synflow``: Tanaka, Kunin, Yamins, Ganguli (2020), "Pruning neural networks
  without any data by iteratively conserving synaptic flow", NeurIPS. Keep the
  largest ``|theta * dR/dtheta|`` of the sign-linearised net, re-scored over
  100 rounds with density ``d^(k/100)`` after round ``k``; data-free.
* ``magnitude_init``: keep the largest ``|theta|`` at initialisation (the
  baseline of the papers above).

The equations are in :mod:`sparsenb.core.criteria`, selection and schedule in
:func:`sparsenb.core.pruning.prune_at_init`. All of them select globally by
default (``scope="global"``, as in the papers); ``scope="layerwise"`` uses the
per-layer counts of ``distribution``. After ``init_masks`` the masks never change.

Usage with the Trainer (SNIP and GraSP need a batch: pass ``init_data``)::

    method = methods.get("snip", sparsity=0.9)
    Trainer(model, method, opt, epochs=10, init_data=train_loader).fit(train_loader, test_loader)
"""
from __future__ import annotations

from typing import Any, Sequence

from torch import nn

from ..core.masks import Masking
from ..core.pruning import prune_at_init
from .base import Method, register


class PruneAtInit(Method):
    """Fixed masks chosen by a criterion at initialisation (see the module docstring).

    Args:
        scope: ``"global"`` (paper) or ``"layerwise"`` (per-layer nnz of ``distribution``).
        iterations: pruning rounds; ``None`` = the method's default (SynFlow 100, others 1).
        batches: number of batches of ``data`` the data-driven criteria use.
        input_shape: shape of one example (SynFlow; inferred from ``data`` if omitted).
        **kwargs: ``sparsity``, ``distribution``, ``dense``, ``seed`` of :class:`Method`.
    """

    criterion = "magnitude"
    SETTINGS = {"SCOPE": "scope", "PRUNE_BATCHES": "batches"}

    def __init__(self, scope: str = "global", iterations: int | None = None, batches: int = 1,
                 input_shape: Sequence[int] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if scope not in ("global", "layerwise"):
            raise ValueError(f"scope must be 'global' or 'layerwise', got {scope!r}")
        self.scope, self.iterations, self.batches, self.input_shape = scope, iterations, batches, input_shape

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sparsity={self.sparsity}, scope={self.scope!r})"

    def criterion_options(self) -> dict[str, Any]:
        return {}

    def init_masks(self, model: nn.Module, data: Any = None) -> Masking:
        """Score ``model`` (with a batch of ``data`` for SNIP/GraSP) and prune it to ``sparsity``."""
        opts = dict(self.criterion_options())
        if self.criterion in ("snip", "grasp"):
            opts["n_batches"] = self.batches
        return prune_at_init(model, self.criterion, self.sparsity, data=data, input_shape=self.input_shape,
                             scope=self.scope, distribution=self.distribution, iterations=self.iterations,
                             dense=self.dense, generator=self.generator, **opts)


@register("snip")
class SNIP(PruneAtInit):
    """SNIP (Lee et al. 2019): one-shot, global, ``|g * theta|`` on one batch."""

    criterion = "snip"


@register("grasp")
class GraSP(PruneAtInit):
    """GraSP (Wang et al. 2020): one-shot, global, keep the largest ``theta * (H g)``.

    Args:
        temperature: logits are divided by it (authors' code: 200).
    """

    criterion = "grasp"
    SETTINGS = {"GRASP_TEMPERATURE": "temperature"}

    def __init__(self, temperature: float = 200.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.temperature = temperature

    def criterion_options(self) -> dict[str, Any]:
        return {"temperature": self.temperature}


@register("synflow")
class SynFlow(PruneAtInit):
    """SynFlow (Tanaka et al. 2020): data-free, global, 100 rounds by default."""

    criterion = "synflow"
    SETTINGS = {"SYNFLOW_ITERATIONS": "iterations"}


@register("magnitude_init")
class MagnitudeInit(PruneAtInit):
    """Global magnitude pruning at initialisation (baseline)."""

    criterion = "magnitude"
