"""sparsenb: reproducible sparse neural network training in PyTorch.

The public entry points::

    import sparsenb as snb
    masks = snb.sparsify(model, sparsity=0.9, distribution="erk", optimizer=opt)
    snb.density_report(model)       # {param: {"nnz", "numel", "density"}}
    method = snb.methods.get("rigl", sparsity=0.9)
    trainer = snb.Trainer(model, method, optimizer, epochs=10)
    trainer.fit(train_loader, test_loader)

``import sparsenb`` is the library and loads torch and numpy only. The per-paper
experiments (:mod:`sparsenb.experiments`) and the notebook tooling (:mod:`sparsenb.nb`:
run record, claims, catalog, gallery, plots, CLI) load on first use, e.g. ``snb.nb.Run``.
See ARCHITECTURE.md for the map of the package.
"""
from __future__ import annotations

import importlib
from typing import Any

from . import core, data, layers, methods, models, train
from .core import criteria, distributions, init, masks, pruning, seeding
from .core.masks import Masking, density_report, sparsify, topk_mask
from .layers import TrulySparseLinear
from .train import Trainer, make_optimizer, make_scheduler, pick_device, set_seed

__version__ = "0.1.0"

__all__ = [
    "Masking", "sparsify", "density_report", "topk_mask", "Trainer", "pick_device", "set_seed",
    "make_optimizer", "make_scheduler", "core", "criteria", "data", "distributions", "init", "layers",
    "methods", "models", "pruning", "train", "TrulySparseLinear", "__version__",
]  # also attributes: snb.masks, snb.seeding (modules of sparsenb.core); snb.nb, snb.experiments (loaded on use)

_LAZY = ("nb", "experiments")  # subpackages that need the optional extras (plots, notebooks, graphs ...)


def __getattr__(name: str) -> Any:
    """Load :mod:`sparsenb.nb` and :mod:`sparsenb.experiments` on first attribute access."""
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'sparsenb' has no attribute {name!r}")
