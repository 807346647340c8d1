"""Lottery tickets: iterative magnitude pruning (IMP) with the Trainer, its controls and its figure.

Frankle, Carbin (2019), "The Lottery Ticket Hypothesis: Finding Sparse,
Trainable Neural Networks", ICLR. A winning ticket is found by training,
pruning the fraction ``p`` of the smallest remaining weights of every layer
(``p = 0.2``, output layer ``0.1``) and resetting the survivors to their
initial values ``theta_0``; after ``r`` rounds layer ``l`` keeps

    nnz_l(r) = round(numel_l * (1 - p_l) ** r)

weights. The controls, trained in every round with the ticket's per-layer
counts, are a random re-initialisation of the ticket's mask (``reinit``) and a
random mask on ``theta_0`` (``random_mask``). The algorithm itself is
:func:`sparsenb.methods.imp.iterative_magnitude_pruning`; :func:`run_imp`
plugs the :class:`~sparsenb.train.Trainer` into it as the per-round
training, with a fixed number of epochs (no early stopping) and the test
accuracy of the last epoch.

Config keys read by :func:`run_imp`: ``MODEL``, ``EPOCHS``, ``BATCH_SIZE``,
``LR``, ``OPTIMIZER`` ("adam"), ``MOMENTUM``, ``WEIGHT_DECAY``, ``SCHEDULE``
("constant"), ``ROUNDS``, ``RATE`` (0.2), ``OUTPUT_RATE`` (0.1), ``REWIND``
("init" or a step number).
"""
from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import torch

from ..models import classic as models
from ..data.registry import TensorData
from ..core.masks import Masking
from ..methods.imp import FixedMasks, iterative_magnitude_pruning
from ..train.trainer import Trainer, make_optimizer, make_scheduler, pick_device
from .common import summarize
from .spec import acc_text, settings_class

__all__ = ["Settings", "OURS", "run_imp", "imp_summary", "matches_dense", "plot_imp", "ARMS"]

Settings = settings_class("03_lottery_tickets")  # typed, frozen; from specs/03_lottery_tickets.json
OURS = {  # the README gallery's number of each claim id in the spec, from results.json's metrics m
    "tickets_match_dense": lambda m: (f"{m.get('ticket_min_in_7_21_pct_remaining', float('nan')) * 100:.2f} % (worst round in " f"range) vs dense {acc_text(m, 'dense')}"),
    "reinit_falls_behind": lambda m: (f"{100 * m.get('reinit_minus_ticket_max_at_5pct', float('nan')):+.2f} points " f"(reinit - ticket, best case at <= 5 % remaining)"),
}

ARMS = ("ticket", "reinit", "random_mask")
"""The three lines of the paper's figure: winning ticket, random reinitialisation, random mask."""


class FirstBatches:
    """The first ``steps`` batches of consecutive passes over ``loader`` (each pass reshuffles), as one epoch.

    Iterating starts no pass before its first batch is asked for and stops right after batch
    ``steps``, so the loader's generator advances exactly as in a ``while``/``for``/``break`` loop.
    """

    def __init__(self, loader: Any, steps: int):
        self.loader, self.steps = loader, steps

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        done = 0
        while done < self.steps:
            for batch in self.loader:
                yield batch
                done += 1
                if done >= self.steps:
                    return


def run_imp(data: TensorData, cfg: Mapping[str, Any], seed: int, device: str = "auto", progress: bool = False,
            controls: Sequence[str] = ("reinit", "random_mask")) -> list[dict[str, Any]]:
    """Iterative magnitude pruning of ``cfg["MODEL"]`` on ``data`` for one seed, with controls.

    Every training (each round's ticket and each control) is ``cfg["EPOCHS"]``
    epochs of the Trainer with the masks fixed, a fresh optimizer and LR
    schedule, and the same batch order (the train loader is seeded with
    ``seed``); the test set is evaluated once, after the last epoch.

    Returns:
        One row per round ``r = 0..ROUNDS``: ``{"round", "density",
        "pct_remaining" (100 * density), "nnz": {layer: int}, "ticket": metrics}``
        plus ``{control: metrics}`` for ``r >= 1``; metrics are ``{"test_acc",
        "test_loss", "train_acc", "train_loss", "train_loss_curve" (per epoch),
        "density", "seconds"}``.
    """
    dev = pick_device(device)

    def make_model():
        return models.build(cfg["MODEL"], data.input_shape, data.num_classes)

    def train_fn(model: torch.nn.Module, masks: Masking, steps: int | None = None) -> dict[str, Any]:
        t0 = time.perf_counter()
        train_loader, test_loader = data.loaders(cfg["BATCH_SIZE"], seed=seed, pin_memory=dev.type == "cuda")
        opt = make_optimizer(model, cfg.get("OPTIMIZER", "adam"), lr=cfg["LR"], momentum=cfg.get("MOMENTUM", 0.9),
                             weight_decay=cfg.get("WEIGHT_DECAY", 0.0))
        if steps is not None:  # dense pre-training to the rewind point theta_k: the first `steps` batches
            masks.attach(opt)
            Trainer(model, None, opt, epochs=1, device=dev, amp=False, progress=False,
                    batch_bar=False).fit(FirstBatches(train_loader, steps))
            return {"steps": steps}
        sched = make_scheduler(opt, cfg.get("SCHEDULE", "constant"), cfg["EPOCHS"])
        trainer = Trainer(model, FixedMasks(masks, seed=seed), opt, epochs=cfg["EPOCHS"], scheduler=sched,
                          device=dev, progress=progress)
        history = trainer.fit(train_loader)
        ev = trainer.evaluate(test_loader)
        return {"test_acc": ev["acc"], "test_loss": ev["loss"], "train_acc": history[-1]["train_acc"],
                "train_loss": history[-1]["train_loss"], "train_loss_curve": [h["train_loss"] for h in history],
                "density": masks.density(), "seconds": time.perf_counter() - t0}

    rows = iterative_magnitude_pruning(
        make_model, train_fn, rounds=cfg["ROUNDS"], rate=cfg.get("RATE", 0.2),
        output_rate=cfg.get("OUTPUT_RATE", 0.1), rewind=cfg.get("REWIND", "init"),
        control=list(controls) if controls else "ticket", seed=seed)
    for row in rows:
        row["pct_remaining"] = 100.0 * row["density"]
    return rows


def imp_summary(runs: Sequence[Sequence[Mapping]], key: str = "test_acc") -> list[dict[str, Any]]:
    """Mean and sample std over seeds of ``key`` per (arm, round) (:func:`sparsenb.experiments.common.summarize`).

    ``runs``: one :func:`run_imp` result per seed (same rounds). Returns rows
    ``{"arm", "round", "pct_remaining", "mean", "std", "n"}``; round 0 (the
    dense network) appears once, as ``"ticket"``.
    """
    long = [{"arm": arm, "round": r, "pct_remaining": float(runs[0][r]["pct_remaining"]), key: run[r][arm][key]}
            for arm in ARMS for r in range(len(runs[0])) for run in runs if arm in run[r]]
    return summarize(long, ("arm", "round", "pct_remaining"), key)


def matches_dense(mean: float, dense_mean: float, dense_std: float, tolerance: float = 0.002) -> bool:
    """The ticket "matches" the dense network: ``mean >= dense_mean - max(dense_std, tolerance)``,
    i.e. within one standard deviation of the dense mean or 0.2 accuracy points, whichever is larger
    (beating it counts as matching)."""
    return mean >= dense_mean - max(dense_std, tolerance)


def plot_imp(summary: Sequence[Mapping], title: str = "", band: tuple[float, float] | None = None,
             ylabel: str = "test accuracy (%)") -> plt.Figure:
    """Accuracy (%, test by default) vs % of weights remaining (log scale, 100 % on the left) with
    error bars (± std over seeds): one line per arm; the dense network is a dashed band.
    ``band`` = ``(lo, hi)`` % remaining shades the range a claim is about."""
    fig, ax = plt.subplots(figsize=(7, 4.3))
    labels = {"ticket": "winning ticket (rewound to init)", "reinit": "random reinitialisation",
              "random_mask": "random mask (same per-layer sparsity)"}
    dense = next(r for r in summary if r["round"] == 0)
    for arm in ARMS:
        rs = [dense] + sorted((r for r in summary if r["arm"] == arm and r["round"] > 0), key=lambda r: r["round"])
        # every arm starts from the dense network (round 0)
        ax.errorbar([r["pct_remaining"] for r in rs], [100 * r["mean"] for r in rs],
                    yerr=[100 * r["std"] for r in rs], marker="o", ms=3.5, capsize=2.5, label=labels[arm])
    m, s = 100 * dense["mean"], 100 * dense["std"]
    ax.axhline(m, color="k", ls="--", lw=1, label=f"dense ({m:.2f} ± {s:.2f} %)")
    ax.axhspan(m - s, m + s, color="k", alpha=0.1)
    if band is not None:
        ax.axvspan(band[0], band[1], color="tab:blue", alpha=0.06, label=f"{band[0]:g}-{band[1]:g} % remaining")
    ax.set_xscale("log")
    ticks = [100, 51.3, 21.1, 7.0, 3.6, 1.9, 1.0]
    lo = min(r["pct_remaining"] for r in summary)
    ax.set_xticks([t for t in ticks if t >= lo * 0.95], [f"{t:g}" for t in ticks if t >= lo * 0.95])
    ax.minorticks_off()
    ax.set_xlim(130, lo / 1.3)
    ax.set(xlabel="% of weights remaining (log scale)", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig
