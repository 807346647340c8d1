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
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
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


def summarize(rows: Iterable[Mapping], by: Sequence[str] = ("method", "sparsity"),
              metrics: str | Sequence[str] | Mapping[str, Sequence[str]] = "test_acc",
              stats: Sequence[str] = ("mean", "std"), backend: str = "torch") -> list[dict]:
    """Group ``rows`` by their values of the keys ``by`` and reduce ``metrics`` over each group.

    The one summary of the notebooks (mean and spread over seeds, per arm). Groups come in
    first-seen order. Each output row holds the ``by`` keys and their values, ``n`` (rows in the
    group) and, per metric, the ``stats`` among ``"mean"``, ``"std"`` (sample standard deviation,
    0 for one row), ``"max"``, ``"min"``. Column names: one metric given as a string gets the bare
    stat names (``{"method", "sparsity", "n", "mean", "std"}`` by default); a sequence of metrics
    gets ``<metric>_<stat>``; a mapping ``{metric: stats}`` chooses the stats per metric (same naming).

    ``backend``: ``"torch"`` (float64 tensors) or ``"numpy"``. The two round sums differently from
    five values on; every notebook keeps the one its committed record was computed with.
    """
    if backend not in ("torch", "numpy"):
        raise ValueError(f"backend must be 'torch' or 'numpy', got {backend!r}")
    bare = isinstance(metrics, str)
    plan = ({metrics: tuple(stats)} if bare else dict(metrics) if isinstance(metrics, Mapping)
            else {m: tuple(stats) for m in metrics})
    unknown = {s for ss in plan.values() for s in ss} - set(_STATS)
    if unknown:
        raise ValueError(f"unknown stats {sorted(unknown)}; choose from {sorted(_STATS)}")
    groups: dict[tuple, list[Mapping]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in by), []).append(r)
    out = []
    for key, members in groups.items():
        row: dict[str, Any] = {**dict(zip(by, key)), "n": len(members)}
        for metric, wanted in plan.items():
            values = [float(r[metric]) for r in members]
            for stat in wanted:
                row[stat if bare else f"{metric}_{stat}"] = _STATS[stat](values, backend)
        out.append(row)
    return out


def _mean(values: list[float], backend: str) -> float:
    return float(torch.tensor(values, dtype=torch.float64).mean()) if backend == "torch" else float(np.mean(values))


def _std(values: list[float], backend: str) -> float:
    if len(values) < 2:
        return 0.0
    return (float(torch.tensor(values, dtype=torch.float64).std()) if backend == "torch"
            else float(np.asarray(values).std(ddof=1)))


_STATS = {"mean": _mean, "std": _std, "max": lambda v, b: float(max(v)), "min": lambda v, b: float(min(v))}
