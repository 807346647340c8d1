"""Dense training: no masks (the baseline every sparse method is compared with)."""
from __future__ import annotations

from typing import Any

from torch import nn

from .base import Method, register


@register("dense")
class Dense(Method):
    """No pruning at all; ``init_masks`` returns ``None``.

    Args:
        sparsity: ignored (always 0).
    """

    def __init__(self, sparsity: float = 0.0, **kwargs: Any):
        super().__init__(sparsity=0.0, **kwargs)

    def init_masks(self, model: nn.Module, data: Any = None) -> None:
        return None

    def step_macs(self, f_sparse: float, f_dense: float) -> float:
        """``3 f_D``: every step is dense (RigL App. H)."""
        return 3.0 * f_dense
