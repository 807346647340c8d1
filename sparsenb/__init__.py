"""sparsenb: reproducible sparse neural network training in PyTorch.

The public entry points::

    import sparsenb as snb
    masks = snb.sparsify(model, sparsity=0.9, distribution="erk", optimizer=opt)
    snb.density_report(model)       # {param: {"nnz", "numel", "density"}}
    method = snb.methods.get("rigl", sparsity=0.9)
    trainer = snb.Trainer(model, method, optimizer, epochs=10)
    trainer.fit(train_loader, test_loader)
"""
from . import catalog, claims, criteria, data, distributions, init, methods, metrics, models, params, plots, pruning
from .experiment import summarize, train_run
from .masks import Masking, density_report, sparsify, topk_mask
from .notebook import compare_table, show_source
from .record import Run, claim, record
from .train import Trainer, make_optimizer, make_scheduler, pick_device, set_seed
from .layers import TrulySparseLinear

__version__ = "0.1.0"

__all__ = [
    "Masking", "sparsify", "density_report", "topk_mask", "Trainer", "pick_device", "set_seed",
    "make_optimizer", "make_scheduler", "Run", "record", "claim", "train_run", "summarize",
    "show_source", "compare_table", "catalog", "claims", "criteria", "data", "distributions", "init", "methods",
    "metrics", "models", "params", "plots", "pruning", "TrulySparseLinear", "__version__",
]
