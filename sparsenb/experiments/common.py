"""One training run from a notebook config: the unit of work the notebooks sweep over.

A notebook's config (see :mod:`sparsenb.nb.catalog`) names the model, optimizer,
schedule and method options; :func:`train_run` builds them, trains with the
:class:`~sparsenb.train.Trainer` and returns a JSON-serialisable summary, so
that :meth:`sparsenb.nb.record.Run.cached` can store it and a re-run resumes.
:func:`prune_run` builds the same seeded masks without training (cheap sweeps,
e.g. where a pruning criterion disconnects the network).
"""
from __future__ import annotations

import time
from typing import Any

import torch

from .. import methods
from ..models import classic as models
from ..data.registry import TensorData
from ..core.init import dense_init_
from ..core.pruning import layer_collapse
from ..core.masks import Masking
from ..methods.imp import FixedMasks
from ..train.trainer import Trainer, make_optimizer, make_scheduler, pick_device, set_seed

__all__ = ["train_run", "prune_run", "train_fixed_masks", "build_method", "summarize", "PRUNE_AT_INIT"]

PRUNE_AT_INIT = ("snip", "grasp", "synflow", "magnitude_init")
"""Methods that choose fixed masks at initialisation; the settings they read (their ``SETTINGS``):
``SCOPE`` ("global"), ``PRUNE_BATCHES`` (1), ``SYNFLOW_ITERATIONS`` (100), ``GRASP_TEMPERATURE`` (200)."""


def build_method(name: str, cfg: dict, sparsity: float, seed: int, options: dict | None = None) -> methods.Method:
    """Method ``name`` at ``sparsity`` with ``seed``, its other options from the notebook config ``cfg``
    (:func:`sparsenb.methods.build`: the settings each method declares, e.g. ``DISTRIBUTION``, SET's
    ``ZETA``, RigL's ``DELTA_T`` / ``ALPHA`` / ``T_END``, SNIP's ``SCOPE``), then ``options`` over them."""
    return methods.build(name, {**cfg, "sparsity": sparsity, "seed": seed, **(options or {})})


def _setup(data: TensorData, cfg: dict, method: str, sparsity: float, seed: int, device: str,
           options: dict | None):
    """Seeded model, method (with ``options`` over the config's) and loaders: shared by the runs below,
    so that :func:`prune_run` and :func:`train_run` with the same arguments build the same masks."""
    set_seed(seed)
    model = models.build(cfg["MODEL"], data.input_shape, data.num_classes)
    dense_init_(model, cfg.get("INIT", "torch"))
    meth = build_method(method, cfg, sparsity, seed, options)
    dev = torch.device(device) if device != "auto" else None
    loaders = data.loaders(cfg["BATCH_SIZE"], seed=seed, pin_memory=dev is not None and dev.type == "cuda")
    return model, meth, loaders


def train_run(data: TensorData, cfg: dict, method: str, sparsity: float, seed: int,
              device: str = "auto", progress: bool = True, options: dict | None = None,
              label: str | None = None) -> dict[str, Any]:
    """Train ``cfg["MODEL"]`` on ``data`` with ``method`` at ``sparsity``; return a summary.

    ``options`` override the method options taken from the config (e.g.
    ``{"distribution": "uniform"}`` for a uniform random mask with ``"static"``, or
    ``{"init": "sparse"}`` for the sparsity-aware weight init of :mod:`sparsenb.core.init`);
    the model starts from the config's ``INIT`` (:func:`sparsenb.core.init.dense_init_`, default ``"torch"``);
    ``label`` replaces the method name in the summary (default: ``method``).
    The config key ``EVAL`` is ``"epoch"`` (default: test accuracy after every
    epoch) or ``"end"`` (only after the last epoch: cheaper; the earlier history
    rows then have no ``test_acc``).

    Returns a dict with ``test_acc``, ``test_loss``, ``train_loss`` (final epoch),
    ``history`` (per-epoch rows), ``density`` (realised), ``nnz``, ``layers``
    (density report), ``input_degree`` (kept connections per input feature of
    the first layer, a flat list; ``None`` for dense), ``collapse`` (the
    :func:`~sparsenb.core.pruning.layer_collapse` report of the masks; ``None`` for dense),
    ``mask_changes`` and ``seconds``.
    """
    t0 = time.perf_counter()
    model, meth, (train_loader, test_loader) = _setup(data, cfg, method, sparsity, seed, device, options)
    opt = make_optimizer(model, cfg.get("OPTIMIZER", "sgd"), lr=cfg["LR"], momentum=cfg.get("MOMENTUM", 0.9),
                         weight_decay=cfg.get("WEIGHT_DECAY", 0.0))
    sched = make_scheduler(opt, cfg.get("SCHEDULE", "cosine"), cfg["EPOCHS"])
    trainer = Trainer(model, meth, opt, epochs=cfg["EPOCHS"], scheduler=sched, device=device,
                      progress=progress, init_data=train_loader)
    eval_mode = cfg.get("EVAL", "epoch")
    if eval_mode not in ("epoch", "end"):
        raise ValueError(f"EVAL must be 'epoch' or 'end', got {eval_mode!r}")
    if eval_mode == "epoch":
        history = trainer.fit(train_loader, test_loader)
    else:
        history = trainer.fit(train_loader)
        ev = trainer.evaluate(test_loader)
        history[-1].update(test_loss=ev["loss"], test_acc=ev["acc"])
    masks = trainer.masks
    first = next(iter(masks)) if masks is not None else None
    return {
        "method": label or method, "sparsity": sparsity, "seed": seed,
        "test_acc": history[-1]["test_acc"], "test_loss": history[-1]["test_loss"],
        "train_loss": history[-1]["train_loss"], "history": history,
        "density": masks.density() if masks is not None else 1.0,
        "nnz": masks.nnz() if masks is not None else sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight")),
        "layers": masks.report() if masks is not None else {},
        "input_degree": first.mask.sum(0).reshape(-1).tolist() if first is not None else None,
        "collapse": layer_collapse(model, masks) if masks is not None else None,
        "mask_changes": len(meth.events),
        "seconds": time.perf_counter() - t0,
    }


def prune_run(data: TensorData, cfg: dict, method: str, sparsity: float, seed: int, device: str = "auto",
              options: dict | None = None, label: str | None = None) -> dict[str, Any]:
    """Only the masks of a :func:`train_run` with the same arguments: no training.

    Builds the same seeded model and method, calls ``init_masks`` (with the
    first training batch, for SNIP/GraSP) and reports the masks. Cheap, so a
    sweep over many sparsities can find where a criterion disconnects the network.

    Returns ``{"method", "sparsity", "seed", "density", "nnz", "layers",
    "collapse" (the layer_collapse report), "seconds"}``.
    """
    t0 = time.perf_counter()
    model, meth, (train_loader, _) = _setup(data, cfg, method, sparsity, seed, device, options)
    model = model.to(pick_device(device))
    masks = meth.init_masks(model, train_loader)
    if masks is None:
        raise ValueError(f"method {method!r} has no masks to report")
    return {"method": label or method, "sparsity": sparsity, "seed": seed, "density": masks.density(),
            "nnz": masks.nnz(), "layers": masks.report(), "collapse": layer_collapse(model, masks),
            "seconds": time.perf_counter() - t0}


def train_fixed_masks(model: torch.nn.Module, masks: Masking, data: TensorData, seed: int, epochs: int, lr: float,
                      batch_size: int, momentum: float = 0.9, weight_decay: float = 0.0, schedule: str = "cosine",
                      device: str = "auto", progress: bool = False) -> list[dict]:
    """Train ``model`` with ``masks`` held fixed: SGD with momentum, ``schedule`` over ``epochs``,
    loaders seeded by ``seed``. Returns the Trainer's per-epoch history."""
    opt = make_optimizer(model, "sgd", lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = make_scheduler(opt, schedule, epochs)
    train_loader, test_loader = data.loaders(batch_size, seed=seed)
    trainer = Trainer(model, FixedMasks(masks, seed=seed), opt, epochs=epochs, scheduler=sched,
                      device=device, progress=progress)
    return trainer.fit(train_loader, test_loader)


def summarize(results: list[dict], key: str = "test_acc") -> list[dict]:
    """Mean and (sample) std of ``key`` over seeds, per (method, sparsity), in first-seen order.

    Returns rows ``{"method", "sparsity", "mean", "std", "n"}``.
    """
    groups: dict[tuple, list[float]] = {}
    for r in results:
        groups.setdefault((r["method"], r["sparsity"]), []).append(float(r[key]))
    rows = []
    for (method, sparsity), vals in groups.items():
        t = torch.tensor(vals, dtype=torch.float64)
        std = float(t.std()) if len(vals) > 1 else 0.0
        rows.append({"method": method, "sparsity": sparsity, "mean": float(t.mean()), "std": std, "n": len(vals)})
    return rows
