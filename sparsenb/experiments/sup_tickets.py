"""Driver of the Sup-tickets notebook: base DST runs, Sup-tickets runs, summaries and plots.

The algorithm lives in :mod:`sparsenb.methods.sup_tickets`. Here: the two units of
work the notebook caches (one base DST run, one Sup-tickets run, per method and
seed) and what the notebook shows of them. Both runs of a ``(method, seed)`` pair
start from the same seeded weights and mask and use the same optimizer, data,
augmentation and **the same total number of epochs** ``EPOCHS``: the base DST
model trains all of them with the step schedule; Sup-tickets spends
``EPOCHS - CYCLES * CYCLE_EPOCHS`` on DST pre-training (the same method and
schedule, compressed to that length) and the rest on cycles, as the authors'
``main_suptickets.py`` splits ``--epochs`` with ``--cycle_rate``.

Config keys read (see ``sparsenb.nb.catalog``): ``MODEL``, ``WIDTH``, ``BLOCKS``,
``DISTRIBUTION``, ``EPOCHS``, ``CYCLE_EPOCHS``, ``CYCLE_RATE``, ``BATCH_SIZE``, ``LR``,
``MOMENTUM``, ``WEIGHT_DECAY``, ``SCHEDULE``, ``AUGMENT``, ``LR_MIN``, ``LR_MAX``,
``REEXPLORE``, ``PRUNE_SCOPE``, ``CARRY``, ``BN_UPDATE`` and the DST options of
:func:`sparsenb.experiments.common.build_method` (``ZETA``, ``DELTA_T``, ``ALPHA``, ``T_END``).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable

import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from ..models import classic as models
from ..core import seeding
from ..train.augment import RandomCropFlip
from ..data.registry import TensorData
from .common import build_method
from .common import summarize as common_summarize
from ..core.masks import Masking
from ..train.metrics import mask_distance
from ..methods import sup_tickets as st
from ..train.trainer import FunctionLR, Trainer, make_optimizer, make_scheduler, pick_device, set_seed
from ..train.trainer import evaluate as _evaluate
from .spec import acc_text, settings_class

__all__ = ["Settings", "OURS", "GROWTH", "build_trainer", "evaluate", "train_cycle", "base_run", "sup_tickets_run", "summarize", "paired_gaps",
           "plot_cycles", "plot_summary", "plot_schedule"]

Settings = settings_class("09_sup_tickets")  # typed, frozen; from specs/09_sup_tickets.json
OURS = {  # the README gallery's number of each claim id in the spec, from results.json's metrics m
    "set/sup_beats_base_and_last": lambda m: (f"superposed {acc_text(m, 'set/superposed')} vs base {acc_text(m, 'set/base')} vs last " f"ticket {acc_text(m, 'set/last_ticket')}"),
    "rigl/sup_beats_base_and_last": lambda m: (f"superposed {acc_text(m, 'rigl/superposed')} vs base {acc_text(m, 'rigl/base')} vs last " f"ticket {acc_text(m, 'rigl/last_ticket')}"),
}

GROWTH = {"set": "random", "rigl": "gradient"}
"""Growth rule of the large prune-and-regrow per base DST method (the authors' ``--growth``)."""


def build_trainer(data: TensorData, cfg: dict, method: str, sparsity: float, seed: int, epochs: int,
                  device: str = "auto", progress: bool = False) -> tuple[Trainer, DataLoader, DataLoader]:
    """Seeded model, DST method, SGD, step schedule over ``epochs``, augmentation; ``(trainer, train, test)``."""
    if method not in GROWTH:
        raise ValueError(f"Sup-tickets needs a base DST method in {sorted(GROWTH)}, got {method!r}")
    set_seed(seed)
    dev = pick_device(device)
    model = models.build(cfg["MODEL"], data.input_shape, data.num_classes, width=cfg["WIDTH"], blocks=cfg["BLOCKS"])
    meth = build_method(method, cfg, sparsity, seed)
    train_loader, test_loader = data.loaders(cfg["BATCH_SIZE"], seed=seed, pin_memory=dev.type == "cuda",
                                             test_batch_size=500)
    opt = make_optimizer(model, "sgd", lr=cfg["LR"], momentum=cfg["MOMENTUM"], weight_decay=cfg["WEIGHT_DECAY"])
    sched = make_scheduler(opt, cfg["SCHEDULE"], epochs)
    augment = RandomCropFlip(padding=4, seed=seed) if cfg["AUGMENT"] else None
    trainer = Trainer(model, meth, opt, epochs=epochs, scheduler=sched, device=dev, progress=progress,
                      augment=augment)
    return trainer, train_loader, test_loader


def evaluate(model: nn.Module, loader: Iterable, device: torch.device) -> float:
    """Test accuracy of ``model`` (eval mode) over ``loader`` (:func:`sparsenb.train.trainer.evaluate`)."""
    return _evaluate(model, loader, device)["acc"]


def train_cycle(model: nn.Module, optimizer: torch.optim.Optimizer, loader: Iterable, cycle_epochs: int,
                lr_min: float, lr_max: float, device: torch.device, augment: Callable | None = None,
                amp: bool = False, loss_fn: Callable | None = None) -> list[dict]:
    """Train one cycle of ``cycle_epochs`` epochs with the mask frozen and a per-step triangular LR.

    The :class:`~sparsenb.train.trainer.Trainer` with no method and a per-step
    :class:`~sparsenb.train.trainer.FunctionLR`: step ``i`` of epoch ``e`` (``n`` steps per epoch) runs at
    ``triangular_lr((e + (i + 1) / n) / cycle_epochs, lr_min, lr_max)``. The masks must already be
    attached to ``optimizer`` (pruned weights stay exactly zero); nothing here changes them.
    Returns one row per epoch: ``epoch``, ``train_loss``, ``train_acc``, ``lr_first``, ``lr_last``
    (the LR of the epoch's first and last step).
    """
    n = len(loader)
    total = n * cycle_epochs

    def lr_at(k: int) -> float:  # FunctionLR asks once more after the last step: that LR stays set
        e, i = divmod(min(k, total - 1), n)
        return st.triangular_lr((e + (i + 1) / n) / cycle_epochs, lr_min, lr_max)

    trainer = Trainer(model, None, optimizer, epochs=cycle_epochs, scheduler=FunctionLR(optimizer, lr_at),
                      scheduler_step="step", device=device, amp=amp, loss_fn=loss_fn, progress=False,
                      augment=augment, batch_bar=False)
    return [{"epoch": h["epoch"], "train_loss": h["train_loss"], "train_acc": h["train_acc"],
             "lr_first": lr_at(e * n), "lr_last": lr_at(e * n + n - 1)} for e, h in enumerate(trainer.fit(loader))]


def base_run(data: TensorData, cfg: dict, method: str, sparsity: float, seed: int, device: str = "auto",
             progress: bool = False) -> dict[str, Any]:
    """The base DST model: ``method`` for all ``EPOCHS``. Returns ``test_acc``, ``density``, ``nnz``, ``history``, ``seconds``."""
    t0 = time.perf_counter()
    trainer, train_loader, test_loader = build_trainer(data, cfg, method, sparsity, seed, cfg["EPOCHS"], device,
                                                       progress)
    history = trainer.fit(train_loader)
    return {"method": method, "variant": "base", "sparsity": sparsity, "seed": seed,
            "test_acc": evaluate(trainer.model, test_loader, trainer.device), "density": trainer.masks.density(),
            "nnz": trainer.masks.nnz(), "history": history, "mask_changes": len(trainer.method.events),
            "seconds": time.perf_counter() - t0}


def _fixed_batch(data: TensorData, size: int, seed: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random training batch (for the dense gradient of RigL-style regrowth)."""
    idx = torch.randperm(len(data.y_train), generator=seeding.generator(seed, "sup_tickets_grad"))[:size]
    return data.X_train[idx].to(device), data.y_train[idx].to(device)


def sup_tickets_run(data: TensorData, cfg: dict, method: str, sparsity: float, seed: int, device: str = "auto",
                    progress: bool = False) -> dict[str, Any]:
    """Sup-tickets on top of ``method``: DST pre-training, then the cycles of :mod:`sparsenb.methods.sup_tickets`.

    Returns ``pretrain_acc`` (ticket 0), ``cycles`` (one row per cycle: ``ticket_acc``,
    ``sup_acc``, ``union_density`` of the average before pruning, ``sup_density``,
    ``mask_change`` = Hamming distance of the ticket's mask to the previous ticket's,
    ``train_loss``, ``regrown``), ``last_ticket_acc``, ``sup_acc`` (final superposed ticket),
    ``sup_acc_no_bn`` (the final superposition pruned but without BN re-estimation: its
    running statistics are the averaged ones), ``density`` and ``nnz`` of the
    trained and the superposed network, ``pretrain_epochs``, ``cycles_n``, ``seconds``.
    """
    t0 = time.perf_counter()
    pretrain, n_cycles = st.split_epochs(cfg["EPOCHS"], cfg["CYCLE_EPOCHS"], cfg["CYCLE_RATE"])
    trainer, train_loader, test_loader = build_trainer(data, cfg, method, sparsity, seed, pretrain, device, progress)
    trainer.fit(train_loader)
    model, masks, dev = trainer.model, trainer.masks, trainer.device
    names, nnz = list(masks.params), masks.nnz()
    target = nnz if cfg["PRUNE_SCOPE"] == "global" else {n: r["nnz"] for n, r in masks.report().items()}
    bn_loader = DataLoader(TensorDataset(data.X_train, data.y_train), batch_size=cfg["BATCH_SIZE"])
    avg = st.float_state(model)  # θ_0: the DST pre-trained network
    prev_masks = {n: m.clone() for n, m in ((mp.name, mp.mask) for mp in masks)}
    out: dict[str, Any] = {"method": method, "variant": "sup_tickets", "sparsity": sparsity, "seed": seed,
                           "pretrain_epochs": pretrain, "cycles_n": n_cycles,
                           "pretrain_acc": evaluate(model, test_loader, dev), "cycles": []}
    gen = seeding.generator(seed, "sup_tickets_regrow")
    for k in tqdm(range(1, n_cycles + 1), desc=f"cycles {method}", disable=not progress, leave=False):
        model.train()
        grads = (st.dense_gradients(model, _fixed_batch(data, cfg["BATCH_SIZE"], seed + k, dev))
                 if GROWTH[method] == "gradient" else None)
        regrown = st.reexplore_(masks, cfg["REEXPLORE"], GROWTH[method], generator=gen, grads=grads)
        rows = train_cycle(model, trainer.optimizer, train_loader, cfg["CYCLE_EPOCHS"], cfg["LR_MIN"],
                              cfg["LR_MAX"], dev, augment=trainer.augment, amp=trainer.amp)
        ticket_masks = {mp.name: mp.mask.clone() for mp in masks}
        st.superpose_(avg, st.float_state(model), k)
        union = sum(int((avg[n] != 0).sum()) for n in names) / masks.numel()
        sup = st.superposed_model(model, avg, names, target, cfg["PRUNE_SCOPE"],
                                  bn_loader if cfg["BN_UPDATE"] else None)
        if k == n_cycles:  # ablation: the final superposition without BN re-estimation
            out["sup_acc_no_bn"] = evaluate(st.superposed_model(model, avg, names, target, cfg["PRUNE_SCOPE"], None),
                                            test_loader, dev)
        if cfg["CARRY"] == "pruned":
            avg = st.float_state(sup)
        elif cfg["CARRY"] != "dense":
            raise ValueError(f"CARRY must be 'pruned' (authors' code) or 'dense', got {cfg['CARRY']!r}")
        sup_masks = Masking(sup, names)
        out["cycles"].append({
            "cycle": k, "ticket_acc": evaluate(model, test_loader, dev), "sup_acc": evaluate(sup, test_loader, dev),
            "union_density": union, "sup_density": sup_masks.density(), "sup_nnz": sup_masks.nnz(),
            "sup_nonzero": sum(int((mp.param != 0).sum()) for mp in sup_masks),
            "mask_change": mask_distance(prev_masks, ticket_masks), "train_loss": rows[-1]["train_loss"],
            "lr_last": rows[-1]["lr_last"], "regrown": sum(r["grown"] for r in regrown)})
        prev_masks = ticket_masks
    last = out["cycles"][-1]
    out.update(last_ticket_acc=last["ticket_acc"], sup_acc=last["sup_acc"], density=masks.density(), nnz=nnz,
               sup_density=last["sup_density"], sup_nnz=last["sup_nnz"], sup_nonzero=last["sup_nonzero"],
               train_loss_first=trainer.history[0]["train_loss"], train_loss_last=last["train_loss"],
               seconds=time.perf_counter() - t0)
    return out


def summarize(base: list[dict], sup: list[dict]) -> list[dict]:
    """Mean and sample std over seeds of the base model, the last cheap ticket and the superposed ticket, per method:
    rows ``{"method", "model", "mean", "std", "n"}`` (:func:`sparsenb.experiments.common.summarize`)."""
    long = [{"method": method, "model": label, "acc": v}
            for method in dict.fromkeys(r["method"] for r in base + sup)
            for label, runs, key in (("base DST", base, "test_acc"), ("DST pre-trained (ticket 0)", sup, "pretrain_acc"),
                                     ("last cheap ticket", sup, "last_ticket_acc"), ("superposed ticket", sup, "sup_acc"))
            for v in (r[key] for r in runs if r["method"] == method)]
    return common_summarize(long, ("method", "model"), "acc")


def paired_gaps(base: list[dict], sup: list[dict], method: str) -> dict[str, list[float]]:
    """Per seed: ``sup_minus_base`` and ``sup_minus_last`` test-accuracy gaps of ``method``."""
    b = {r["seed"]: r["test_acc"] for r in base if r["method"] == method}
    s = [r for r in sup if r["method"] == method]
    return {"sup_minus_base": [r["sup_acc"] - b[r["seed"]] for r in s],
            "sup_minus_last": [r["sup_acc"] - r["last_ticket_acc"] for r in s]}


def plot_cycles(sup: list[dict], base: list[dict], title: str = "") -> plt.Figure:
    """Test accuracy after each cycle: cheap ticket k vs superposed ticket k (mean over seeds), base DST as a line."""
    methods_ = list(dict.fromkeys(r["method"] for r in sup))
    fig, axes = plt.subplots(1, len(methods_), figsize=(4.2 * len(methods_), 3.4), squeeze=False)
    for ax, method in zip(axes[0], methods_):
        runs = [r for r in sup if r["method"] == method]
        ks = [0] + [c["cycle"] for c in runs[0]["cycles"]]
        mean = lambda key: [sum(r["cycles"][k - 1][key] for r in runs) / len(runs) for k in ks[1:]]  # noqa: E731
        pre = sum(r["pretrain_acc"] for r in runs) / len(runs)
        ax.plot(ks, [pre] + mean("ticket_acc"), "o-", label="cheap ticket k")
        ax.plot(ks, [pre] + mean("sup_acc"), "s-", label="superposed (pruned, BN re-est.)")
        b = [r["test_acc"] for r in base if r["method"] == method]
        ax.axhline(sum(b) / len(b), color="k", ls="--", lw=1, label="base DST, same epochs")
        ax.set(xlabel="cycle k (0 = DST pre-trained)", ylabel="test accuracy", title=f"{method.upper()} {title}")
        ax.set_xticks(ks)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_summary(rows: list[dict], title: str = "") -> plt.Figure:
    """Bars of mean test accuracy (± std over seeds) per method and model."""
    methods_ = list(dict.fromkeys(r["method"] for r in rows))
    labels = list(dict.fromkeys(r["model"] for r in rows))
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    w = 0.8 / len(labels)
    for j, label in enumerate(labels):
        sel = [next(r for r in rows if r["method"] == m and r["model"] == label) for m in methods_]
        ax.bar([i + j * w for i in range(len(methods_))], [r["mean"] for r in sel], w,
               yerr=[r["std"] for r in sel], capsize=3, label=label)
    lo = min(r["mean"] - r["std"] for r in rows)
    ax.set(xticks=[i + w * (len(labels) - 1) / 2 for i in range(len(methods_))],
           xticklabels=[m.upper() for m in methods_], ylabel="test accuracy", title=title,
           ylim=(max(0.0, lo - 0.05), None))
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def plot_schedule(cfg: dict, steps_per_epoch: int = 20) -> plt.Figure:
    """The learning rate of a Sup-tickets run: the step schedule of pre-training, then the triangular cycles."""
    pretrain, n_cycles = st.split_epochs(cfg["EPOCHS"], cfg["CYCLE_EPOCHS"], cfg["CYCLE_RATE"])
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg["LR"])
    sched = make_scheduler(opt, cfg["SCHEDULE"], pretrain)
    xs, lrs = [], []
    for e in range(pretrain):
        xs += [e, e + 1]
        lrs += [opt.param_groups[0]["lr"]] * 2
        sched.step()
    n = steps_per_epoch * cfg["CYCLE_EPOCHS"]
    for c in range(n_cycles):
        for i in range(n + 1):
            xs.append(pretrain + c * cfg["CYCLE_EPOCHS"] + cfg["CYCLE_EPOCHS"] * i / n)
            lrs.append(st.triangular_lr(i / n, cfg["LR_MIN"], cfg["LR_MAX"]))
    fig, ax = plt.subplots(figsize=(6, 2.8))
    ax.plot(xs, lrs)
    for c in range(1, n_cycles + 1):
        ax.axvline(pretrain + c * cfg["CYCLE_EPOCHS"], color="grey", lw=0.6, ls=":")
    ax.set(xlabel="epoch", ylabel="learning rate", yscale="log",
           title=f"{pretrain} epochs DST pre-training + {n_cycles} cycles × {cfg['CYCLE_EPOCHS']} (dotted: tickets)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
