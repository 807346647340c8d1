"""Driver of the CTRE notebook (``07_ctre``): extreme-sparsity MLPs, dense vs SET vs RigL vs CTRE.

Atashgahi, Pieterse, Liu, Mocanu, Veldhuis, Pechenizkiy (2022), "A
Brain-inspired Algorithm for Training Highly Sparse Neural Networks",
Machine Learning, doi:10.1007/s10994-022-06266-w. The methods live in :mod:`sparsenb.methods.ctre`.

Setting (as the paper's code, ``zahraatashgahi/CTRE``): an MLP with three
hidden ReLU layers; *every* layer sparse with an Erdős–Rényi topology of
``epsilon``: a layer ``n_in x n_out`` keeps about ``epsilon * (n_in + n_out)``
connections (``epsilon = 1`` is extreme sparsity: ~2 connections per hidden
neuron); SGD with Nesterov momentum; 10 % of the training split held out as
validation; the reported test accuracy is the one at the epoch of best
validation accuracy. The topology changes once per epoch for SET, RigL and CTRE.
The code's weights start Glorot-uniform with zero biases (TensorFlow's default of
its ``masked_fully_connected`` / ``dense`` layers: ``INIT="glorot"``) and its
features are min-max scaled except on madelon (``SCALING="paper"``, see
:mod:`sparsenb.data.tabular`). ``EPOCHS`` may be one number or one per dataset.
"""
from __future__ import annotations

import math
import time
from typing import Any, Sequence

import numpy as np
import torch

from ..nb import claims
from ..data import registry as data_registry
from .. import methods
from ..models import classic as models
from ..data.registry import TensorData
from ..data.tabular import SCALINGS, SCIKIT_FEATURE, load_scikit_feature
from ..core.init import DENSE_INITS, arm_label, dense_init_
from ..core.masks import Masking
from ..data.registry import split_validation  # re-exported for the notebook
from ..train.trainer import Trainer, evaluate, make_optimizer, make_scheduler, set_seed
from .common import summarize
from .spec import settings_class

__all__ = ["Settings", "OURS", "INITS", "arm_rows", "load_dataset", "epochs_for", "init_weights_", "epsilon_sparsity", "split_validation",
           "build_method", "ARM_OPTIONS", "ctre_run", "summarize_runs",
           "claim_beats_baselines", "ctre_claim", "plot_accuracy", "plot_curves", "plot_similarity_growth"]

Settings = settings_class("07_ctre")  # typed, frozen; from specs/07_ctre.json
OURS = {  # the README gallery's number of each claim id in the spec, from results.json's metrics m
    "ctre_beats_set_rigl": lambda m: (f"better CTRE variant beats the better of SET/RigL on {m.get('claim/wins', '—')} of {m.get('claim/datasets', '—')} datasets (mean margin {100 * m.get('claim/mean_margin', float('nan')):+.2f} points)"),
    "ctre_beats_set_rigl+sparse_init": lambda m: (f"better CTRE variant beats the better of SET/RigL on {m.get('claim/sparse+sparse_init/wins', '—')} of {m.get('claim/sparse+sparse_init/datasets', '—')} datasets (mean margin {100 * m.get('claim/sparse+sparse_init/mean_margin', float('nan')):+.2f} points)"),
}

METHOD_LABELS = {"dense": "dense", "set": "SET", "rigl": "RigL", "ctre_sim": "CTRE_sim", "ctre_seq": "CTRE_seq"}
INITS = DENSE_INITS  # the model's dense-scale init, INIT (sparsenb.core.init.dense_init_)
init_weights_ = dense_init_  # kept under the name the notebook used


def load_dataset(name: str, scaling: str = "paper") -> TensorData:
    """A dataset of the notebook: scikit-feature sets (the four by name, any other as
    ``scikit-feature:<NAME>``, a file of your own as ``file:/path/x.mat``) with ``scaling`` (see
    :func:`sparsenb.data.tabular.load_scikit_feature`), any other registered name as registered
    (``mnist5k``/``mnist`` come normalised with the MNIST mean and std, whatever ``scaling`` says)."""
    if scaling not in SCALINGS:
        raise ValueError(f"unknown SCALING {scaling!r}; choose one of {SCALINGS}")
    if name in SCIKIT_FEATURE or name.startswith("scikit-feature:"):
        return load_scikit_feature(name.removeprefix("scikit-feature:"), scaling=scaling)
    if name.startswith("file:") and name.lower().endswith(".mat"):
        return data_registry.load_file(name.removeprefix("file:"), scaling=scaling)
    return data_registry.load(name)


def epochs_for(cfg: dict, dataset: str) -> int:
    """``cfg["EPOCHS"]`` for ``dataset``: an int for every dataset, or a dict ``{dataset: epochs}``."""
    epochs = cfg["EPOCHS"]
    if isinstance(epochs, dict):
        if dataset not in epochs:
            raise ValueError(f"EPOCHS has no entry for dataset {dataset!r}; give one, e.g. "
                             f"EPOCHS={{**EPOCHS, {dataset!r}: 100}}, or a single int for all datasets")
        epochs = epochs[dataset]
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"EPOCHS for {dataset!r} must be an int >= 1, got {epochs!r}")
    return epochs


def epsilon_sparsity(shapes: dict[str, Sequence[int]], epsilon: float) -> float:
    """Global sparsity of an ER topology with ``epsilon`` over weight ``shapes`` (name -> (n_out, n_in)).

    Layer ``l`` keeps ``min(numel_l, epsilon * (n_in + n_out))`` connections (SET/CTRE's
    ``epsilon``); the result is ``1 - kept / total``. With ``distribution="er"`` the per-layer
    nnz of :func:`sparsenb.core.distributions.layer_nnz` at this sparsity is then ``epsilon * (n_in + n_out)``
    (within rounding) for every layer that is not capped at dense.
    """
    if epsilon <= 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    kept = sum(min(math.prod(s), epsilon * (s[0] + s[1])) for s in shapes.values())
    total = sum(math.prod(s) for s in shapes.values())
    return 1.0 - kept / total


ARM_OPTIONS: dict[str, Any] = {
    # what this notebook gives a method beyond its shared settings: (cfg, steps_per_epoch, (X_val, y_val)) -> options
    "rigl": lambda cfg, steps, val: {"update_every": steps, "drop_fraction": cfg["ZETA"], "t_end": cfg["RIGL_T_END"]},
    "ctre_seq": lambda cfg, steps, val: {"val_data": val},
}
"""RigL updates once per epoch (``update_every`` = steps per epoch) with initial drop fraction ``ZETA``
and its cosine decay up to ``RIGL_T_END`` of training; CTRE_seq watches the held-out validation split."""


def build_method(method: str, cfg: dict, sparsity: float, seed: int, steps_per_epoch: int,
                 val: tuple[torch.Tensor, torch.Tensor], init: str = "dense"):
    """The method of one arm, built by :func:`sparsenb.methods.build` from the notebook config: every
    sparse method starts from the same ER mask at ``sparsity`` with weight init ``init``; SET and CTRE
    replace ``ZETA`` of each layer once per epoch (their ``SETTINGS`` read ``ZETA``, and CTRE's
    ``GROW_INIT``, ``SIM_BATCH_SIZE``, ``PATIENCE``); :data:`ARM_OPTIONS` adds RigL's and CTRE_seq's."""
    if method not in METHOD_LABELS:
        raise ValueError(f"unknown method {method!r} for the CTRE notebook; use one of {list(METHOD_LABELS)}")
    extra = ARM_OPTIONS.get(method, lambda *_: {})(cfg, steps_per_epoch, val)
    return methods.build(method, {**cfg, "seed": seed, "sparsity": sparsity, "distribution": "er", "init": init,
                                  **extra})


def _accuracy(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, device: torch.device,
              batch: int = 1000) -> float:
    return evaluate(model, zip(X.split(batch), y.split(batch)), device)["acc"]


def ctre_run(data: TensorData, cfg: dict, method: str, seed: int, device: str = "auto",
             progress: bool = True, init: str = "dense") -> dict[str, Any]:
    """Train one MLP of the CTRE setting on ``data`` with ``method``; return a JSON-able summary.

    ``init``: weight init of the sparse method (:mod:`sparsenb.core.init`) on top of ``cfg["INIT"]``:
    ``"dense"`` (the code's Glorot scale as is) or a sparsity-aware rule such as ``"sparse"``;
    the summary's ``method`` is then :func:`sparsenb.core.init.arm_label` of both (``base``: the method).

    ``cfg`` keys: ``HIDDEN`` (list of widths), ``EPSILON``, ``ZETA``, ``EPOCHS`` (int or
    ``{dataset: int}``, see :func:`epochs_for`), ``INIT`` (see :func:`init_weights_`), ``BATCH_SIZE``,
    ``LR``, ``MOMENTUM``, ``WEIGHT_DECAY``, ``SCHEDULE``, ``VAL_FRACTION``, ``PATIENCE``,
    ``GROW_INIT``, ``SIM_BATCH_SIZE``, ``RIGL_T_END``.

    Returns ``dataset, method, seed, sparsity, test_acc`` (after the last epoch),
    ``test_at_best_val`` (test accuracy at the first epoch of best validation accuracy, the
    paper's protocol; the test set is evaluated only at those epochs), ``best_val_acc``,
    ``best_epoch``, ``history`` (per epoch: train_loss, train_acc, val_acc), ``density``, ``nnz``, ``layers``, ``sim_seconds`` (time of the similarity passes),
    ``sim_epochs``, ``switch_epoch`` (CTRE_seq), ``replaced_by_random`` (CTRE_sim, total),
    ``seconds``.
    """
    t0 = time.perf_counter()
    train, X_val, y_val = split_validation(data, cfg["VAL_FRACTION"], seed=42, stratify=True)
    epochs = epochs_for(cfg, data.name)
    set_seed(seed)
    model = models.build("mlp", data.input_shape, data.num_classes, hidden=tuple(cfg["HIDDEN"]))
    init_weights_(model, cfg["INIT"])
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters() if n.endswith("weight")}
    sparsity = epsilon_sparsity(shapes, cfg["EPSILON"])
    dev = torch.device(device) if device != "auto" else None
    train_loader, test_loader = train.loaders(cfg["BATCH_SIZE"], seed=seed,
                                              pin_memory=dev is not None and dev.type == "cuda")
    meth = build_method(method, cfg, sparsity, seed, len(train_loader), (X_val, y_val), init)
    opt = make_optimizer(model, "sgd", lr=cfg["LR"], momentum=cfg["MOMENTUM"], weight_decay=cfg["WEIGHT_DECAY"],
                         nesterov=True)
    sched = make_scheduler(opt, cfg["SCHEDULE"], epochs)

    best = {"val": -1.0, "test": None, "epoch": 0}

    def evaluate(trainer: Trainer, row: dict) -> None:
        """Validation accuracy every epoch; the test set only when validation improves (as the paper's code)."""
        row["val_acc"] = _accuracy(trainer.model, X_val, y_val, trainer.device)
        if row["val_acc"] > best["val"]:
            best.update(val=row["val_acc"], test=_accuracy(trainer.model, data.X_test, data.y_test, trainer.device),
                        epoch=row["epoch"])

    trainer = Trainer(model, meth, opt, epochs=epochs, scheduler=sched, device=device,
                      progress=progress, init_data=train_loader, callbacks=[evaluate])
    history = trainer.fit(train_loader)
    final = trainer.evaluate(test_loader)
    masks: Masking | None = trainer.masks
    events = getattr(meth, "events", [])
    return {
        "dataset": data.name, "method": arm_label(method, init), "base": method, "init": init, "seed": seed, "epochs": epochs, "sparsity": sparsity if masks is not None else 0.0,
        "test_acc": final["acc"], "test_at_best_val": best["test"],
        "best_val_acc": best["val"], "best_epoch": best["epoch"],
        "history": [{k: r[k] for k in ("epoch", "train_loss", "train_acc", "val_acc")} for r in history],
        "density": masks.density() if masks is not None else 1.0,
        "nnz": masks.nnz() if masks is not None else sum(math.prod(s) for s in shapes.values()),
        "layers": masks.report() if masks is not None else {},
        "sim_seconds": getattr(meth, "sim_seconds", 0.0), "sim_epochs": getattr(meth, "sim_epochs", 0),
        "switch_epoch": getattr(meth, "switch_epoch", None),
        "replaced_by_random": sum(e.get("replaced_by_random", 0) for e in events),
        "grown_by_score": sum(e.get("grown_by_score", 0) for e in events if e.get("cosine")),
        "seconds": time.perf_counter() - t0,
    }


def summarize_runs(results: list[dict], key: str = "test_at_best_val") -> list[dict]:
    """Mean and sample std of ``key`` over seeds per (dataset, method), in first-seen order:
    rows ``{"dataset", "method", "mean", "std", "n"}`` (:func:`sparsenb.experiments.common.summarize`, numpy)."""
    return summarize(results, ("dataset", "method"), key, backend="numpy")


def arm_rows(rows: list[dict], init: str) -> list[dict]:
    """The rows of :func:`summarize_runs` (or the runs of :func:`ctre_run`) of one init arm, renamed to the
    plain method names (dense kept), so that :func:`claim_beats_baselines` / :func:`ctre_claim` judge
    that arm by the same rule."""
    names = {arm_label(m, init): m for m in METHOD_LABELS if m != "dense"}
    return [dict(r, method=names[r["method"]]) if r["method"] in names else r
            for r in rows if r["method"] in names or r["method"] == "dense"]


def claim_beats_baselines(rows: list[dict], datasets: Sequence[str]) -> dict[str, Any]:
    """Does CTRE beat SET and RigL? Per dataset: the better CTRE variant's mean vs the better of SET/RigL.

    Returns ``{"per_dataset": {name: {"ctre", "ctre_best", "baseline", "baseline_best", "wins"}},
    "wins", "n", "holds"}``; ``holds`` = CTRE wins on a strict majority of the datasets
    (max of two vs max of two, so neither side gets more draws).
    """
    mean = {(r["dataset"], r["method"]): r["mean"] for r in rows}
    per = {}
    for d in datasets:
        ctre = {m: mean[(d, m)] for m in ("ctre_sim", "ctre_seq") if (d, m) in mean}
        base = {m: mean[(d, m)] for m in ("set", "rigl") if (d, m) in mean}
        if not ctre or not base:
            raise ValueError(f"{d}: need at least one CTRE variant and one of SET/RigL; have {sorted(ctre) + sorted(base)}")
        cb, bb = max(ctre, key=ctre.get), max(base, key=base.get)
        per[d] = {"ctre": ctre[cb], "ctre_best": cb, "baseline": base[bb], "baseline_best": bb,
                  "wins": bool(ctre[cb] > base[bb])}
    wins = sum(v["wins"] for v in per.values())
    return {"per_dataset": per, "wins": wins, "n": len(per), "holds": wins > len(per) / 2}


COMPARED = ("set", "rigl", "ctre_sim", "ctre_seq")


def ctre_claim(rows: list[dict], results: list[dict], cfg: dict, num_classes: dict[str, int]) -> dict[str, Any]:
    """The notebook's claim "CTRE beats SET and RigL at extreme sparsity", ready for ``run.claim(**...)``.

    The verdict is :func:`claim_beats_baselines` (strict majority of ``cfg["DATASETS"]``), made
    ``inconclusive`` (:func:`sparsenb.nb.claims.comparison`) when any compared arm (SET, RigL,
    CTRE_sim, CTRE_seq on any dataset) is at chance (mean test accuracy at the best validation
    epoch) or its seed-mean validation accuracy never beat its first epoch.

    Args:
        rows: :func:`summarize_runs` of ``results``; results: the runs (each with a ``history``
            of ``val_acc``); cfg: the notebook config; num_classes: dataset -> classes.

    Returns ``{"text", "holds", "detail", "state", "reason", "id"}`` plus ``verdict`` (the
    :func:`claim_beats_baselines` dict), so ``run.claim(**{k: v for k, v in out.items() if k != "verdict"})``.
    """
    datasets = list(cfg["DATASETS"])
    verdict = claim_beats_baselines(rows, datasets)
    mean = {(r["dataset"], r["method"]): r["mean"] for r in rows}
    arms = [(d, m) for d in datasets for m in COMPARED if (d, m) in mean]
    name = {(d, m): f"{d}/{METHOD_LABELS[m]}" for d, m in arms}
    curves = {}
    for d, m in arms:
        runs = [r["history"] for r in results if r["dataset"] == d and r["method"] == m]
        curves[name[(d, m)]] = np.mean([[h["val_acc"] for h in hist] for hist in runs], axis=0).tolist()
    state, reason = claims.comparison(verdict["holds"], {name[a]: mean[a] for a in arms},
                                      {name[a]: num_classes[a[0]] for a in arms}, histories=curves)
    per = verdict["per_dataset"]
    detail = ("; ".join(f"{d}: {METHOD_LABELS[v['ctre_best']]} {100 * v['ctre']:.2f}% vs "
                        f"{METHOD_LABELS[v['baseline_best']]} {100 * v['baseline']:.2f}%" for d, v in per.items())
              + f"; CTRE wins on {verdict['wins']} of {verdict['n']} (test accuracy at best validation epoch, "
                f"mean of {cfg['SEEDS']} seeds, MLP {cfg['HIDDEN']}, eps {cfg['EPSILON']}, {cfg['EPOCHS']} epochs)")
    text = (f"CTRE beats SET and RigL at extreme sparsity (MLP {cfg['HIDDEN']}, ER eps = {cfg['EPSILON']}; "
            f"{', '.join(datasets)})")
    return {"text": text, "holds": verdict["holds"], "detail": detail, "state": state, "reason": reason,
            "id": "ctre_beats_set_rigl", "verdict": verdict}


# ----------------------------------------------------------------------------- plots
def plot_accuracy(rows: list[dict], datasets: Sequence[str], methods_: Sequence[str], title: str = ""):
    """Grouped bars: mean ± std test accuracy (at best validation epoch) per dataset and method."""
    import matplotlib.pyplot as plt

    mean = {(r["dataset"], r["method"]): r for r in rows}
    fig, ax = plt.subplots(figsize=(1.9 * len(datasets) + 2, 3.6))
    w = 0.8 / len(methods_)
    for j, m in enumerate(methods_):
        xs = [i + (j - (len(methods_) - 1) / 2) * w for i in range(len(datasets))]
        vals = [100 * mean[(d, m)]["mean"] if (d, m) in mean else np.nan for d in datasets]
        errs = [100 * mean[(d, m)]["std"] if (d, m) in mean else 0 for d in datasets]
        ax.bar(xs, vals, w, yerr=errs, capsize=2, label=METHOD_LABELS.get(m, m))
    ax.set_xticks(range(len(datasets)), datasets)
    ax.set_ylabel("test accuracy at best val. epoch (%)")
    lo = min(100 * r["mean"] for r in rows if r["method"] != "dense")
    ax.set_ylim(max(0, lo - 10), 100)
    ax.legend(ncol=len(methods_), fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    if title:
        ax.set_title(title, fontsize=9, pad=28)
    fig.tight_layout()
    return fig


def plot_curves(results: list[dict], datasets: Sequence[str], methods_: Sequence[str], key: str = "val_acc"):
    """Per dataset, the mean (over seeds) of ``key`` per epoch for each method; ticks mark CTRE_seq's switch."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(datasets), figsize=(3.2 * len(datasets), 2.9), squeeze=False)
    for ax, d in zip(axes[0], datasets):
        for m in methods_:
            runs = [r for r in results if r["dataset"] == d and r["method"] == m]
            if not runs:
                continue
            curve = 100 * np.mean([[h[key] for h in r["history"]] for r in runs], axis=0)
            line, = ax.plot(range(1, len(curve) + 1), curve, label=METHOD_LABELS.get(m, m), lw=1.2)
            for r in runs:
                if r.get("switch_epoch") is not None:
                    ax.axvline(r["switch_epoch"] + 1, color=line.get_color(), ls=":", lw=0.8)
        ax.set_title(d, fontsize=9)
        ax.set_xlabel("epoch")
    axes[0][0].set_ylabel(f"{key} (%)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_similarity_growth(sim: torch.Tensor, old: torch.Tensor, new: torch.Tensor):
    """Three panels for one layer: |cosine similarity|, the mask before and after a CTRE update."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    im = axes[0].imshow(sim.cpu(), aspect="auto", cmap="viridis")
    fig.colorbar(im, ax=axes[0], label="|cosine similarity|")
    axes[0].set_title("|cosine similarity| (out x in)", fontsize=9)
    axes[1].imshow(old.cpu().float(), aspect="auto", cmap="Greys", interpolation="nearest")
    axes[1].set_title(f"mask before ({int(old.sum())} kept)", fontsize=9)
    change = new.float() - old.float()
    axes[2].imshow(change.cpu(), aspect="auto", cmap="bwr", vmin=-1, vmax=1, interpolation="nearest")
    axes[2].set_title("update: red grown, blue dropped", fontsize=9)
    for ax in axes:
        ax.set_xlabel("input neuron")
    axes[0].set_ylabel("output neuron")
    fig.tight_layout()
    return fig
