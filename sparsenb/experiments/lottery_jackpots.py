"""Lottery jackpots vs magnitude pruning (with and without fine-tuning) vs edge-popup: runs, summaries,
plots and the claim rules of notebook 14.

Zhang et al. (2023), TPAMI, "Lottery Jackpots Exist in Pre-trained Models" (algorithm:
:mod:`sparsenb.methods.jackpot`). One seed = one dense network pretrained here (cached as a ``.pt``
file in ``results/_scratch/14_lottery_jackpots/cache/``, keyed by the settings it depends on, so reruns
skip it), then at every sparsity ``s``, all from the same pretrained weights and the same per-layer
budgets (global magnitude over the scored layers, the output layer dense):

- ``magnitude``: the magnitude mask, weights as pretrained, nothing trained;
- ``magnitude_bn``: the same with the batch-norm running statistics re-estimated on the training
  data (only for models with batch norm; it separates what the jackpot gains by its mask from what
  any masked network gains by fresh BN statistics, which the jackpot search gets for free by running
  in train mode);
- ``finetune``: the magnitude mask with the kept weights fine-tuned (SGD, ``FINETUNE_LR``, cosine) for
  ``SEARCH_EPOCHS`` epochs: the usual prune-then-fine-tune baseline at the same epoch budget;
- ``jackpot``: scores from the magnitude mask (1 / 0.99), weights frozen, the short restriction after
  every step, ``SEARCH_EPOCHS`` epochs of SGD on the scores (``SEARCH_LR``, cosine, momentum,
  weight decay);
- ``edgepopup``: edge-popup over the same frozen pretrained weights from random scores, with the same
  per-layer kept counts and the same optimizer and epochs.

The test accuracy of every arm is measured once, after its last epoch (no model selection on the test set).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..core.masks import Masking
from ..data.registry import TensorData, load
from ..methods.jackpot import Jackpot, edge_popup, jackpot_targets, magnitude_masks, mask_overlap
from ..methods.sup_tickets import reestimate_bn
from ..models import classic as models
from ..nb import claims as claim_states
from ..nb.record import SCRATCH, config_hash, project_root
from ..train.augment import RandomCropFlip
from ..train.trainer import Trainer, make_optimizer, make_scheduler, pick_device, set_seed
from ..train.trainer import evaluate as train_evaluate
from .common import train_fixed_masks
from .spec import settings_class

__all__ = ["Settings", "OURS", "ARMS", "PAPER", "load_data", "build_model", "pretrain", "evaluate", "search_scores",
           "run_sparsity", "summarize_runs", "claims", "plot_accuracy", "plot_overlap", "plot_search"]

STEM = "14_lottery_jackpots"
Settings = settings_class(STEM)  # typed, frozen; from specs/14_lottery_jackpots.json

ARMS = ("magnitude", "magnitude_bn", "finetune", "jackpot", "edgepopup")
LABELS = {"dense": "pretrained dense", "magnitude": "magnitude (no training)",
          "magnitude_bn": "magnitude + BN re-estimated", "finetune": "magnitude + fine-tuning",
          "jackpot": "lottery jackpot (scores only)", "edgepopup": "edge-popup, random scores"}

PAPER = {  # official README (zyxxmu/lottery-jackpots), 30 epochs of search, CIFAR-10 top-1 %
    ("ResNet-32", 0.90): 93.70, ("ResNet-32", 0.95): 92.90,
    ("VGG-19", 0.90): 93.88, ("VGG-19", 0.95): 93.49,
}


def _pct(m: dict, key: str) -> str:
    v = m.get(key)
    return f"{100 * v:.2f} %" if isinstance(v, (int, float)) else "—"


OURS = {  # the README gallery's number of each claim id in the spec, from results.json's metrics m
    "jackpot_recovers": lambda m: (f"jackpot {_pct(m, 'jackpot/0.9/test_acc_mean')} (90 %), "
                                   f"{_pct(m, 'jackpot/0.95/test_acc_mean')} (95 %) vs dense {_pct(m, 'dense/test_acc_mean')}"),
    "mask_overlap": lambda m: f"min overlap with the magnitude mask {_pct(m, 'jackpot/min_overlap')}",
    "exact_sparsity": lambda m: (f"max per-layer deviation {m.get('jackpot/max_nnz_deviation', '—')} weights over "
                                 f"{m.get('jackpot/steps_checked', '—')} steps"),
}


# ---------------------------------------------------------------------------------------------
# data, model, pretraining
# ---------------------------------------------------------------------------------------------

def load_data(cfg: Any) -> TensorData:
    """``cfg["DATASET"]`` (subset to ``N_TRAIN`` / ``N_TEST`` examples if set, fixed seed 0)."""
    data = load(cfg["DATASET"])
    if cfg["N_TRAIN"] is not None or cfg["N_TEST"] is not None:
        data = data.subset(cfg["N_TRAIN"], cfg["N_TEST"], seed=0)
    return data


def build_model(cfg: Any, data: TensorData) -> nn.Module:
    """``cfg["MODEL"]`` with ``cfg["MODEL_KWARGS"]`` (see :func:`sparsenb.models.classic.build`)."""
    return models.build(cfg["MODEL"], data.input_shape, data.num_classes, **dict(cfg["MODEL_KWARGS"]))


PRETRAIN_KEYS = ("DATASET", "N_TRAIN", "N_TEST", "MODEL", "MODEL_KWARGS", "PRETRAIN_EPOCHS", "PRETRAIN_LR",
                 "MOMENTUM", "WEIGHT_DECAY", "BATCH_SIZE", "AUGMENT", "THREADS")


def cache_dir() -> Path:
    """Where the pretrained networks are cached (git-ignored scratch folder)."""
    return project_root() / "results" / SCRATCH / STEM / "cache"


def evaluate(model: nn.Module, loader, device: torch.device) -> float:
    """Test accuracy (eval mode; the model's mode is restored): :func:`sparsenb.train.evaluate`'s ``acc``."""
    return train_evaluate(model, loader, device)["acc"]


def _augment(cfg: Any, seed: int) -> Callable | None:
    return RandomCropFlip(padding=4, seed=seed) if cfg["AUGMENT"] else None


def pretrain(cfg: Any, data: TensorData, seed: int, device: str = "cpu",
             folder: Path | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """The dense network of ``seed``: loaded from the cache if it is there, else trained (SGD, cosine,
    ``PRETRAIN_EPOCHS``) and saved. Returns ``(state_dict, info)``, info = ``{"test_acc", "seconds",
    "from_cache", "path"}`` (``seconds``: the training time when it was first run)."""
    key = config_hash({k: cfg[k] for k in PRETRAIN_KEYS} | {"seed": seed})
    folder = folder or cache_dir()
    path = folder / f"pretrained-{seed}-{key}.pt"
    if path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        info = json.loads((folder / f"pretrained-{seed}-{key}.json").read_text())
        return saved, {**info, "from_cache": True, "path": str(path)}
    t0 = time.perf_counter()
    set_seed(seed)
    dev = pick_device(device)
    model = build_model(cfg, data)
    opt = make_optimizer(model, "sgd", lr=cfg["PRETRAIN_LR"], momentum=cfg["MOMENTUM"], weight_decay=cfg["WEIGHT_DECAY"])
    sched = make_scheduler(opt, "cosine", cfg["PRETRAIN_EPOCHS"])
    train_loader, test_loader = data.loaders(cfg["BATCH_SIZE"], seed=seed)
    Trainer(model, None, opt, epochs=cfg["PRETRAIN_EPOCHS"], scheduler=sched, device=dev, progress=False,
            augment=_augment(cfg, seed)).fit(train_loader)
    info = {"test_acc": evaluate(model, test_loader, dev), "seconds": time.perf_counter() - t0}
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    (folder / f"pretrained-{seed}-{key}.json").write_text(json.dumps(info))
    return state, {**info, "from_cache": False, "path": str(path)}


# ---------------------------------------------------------------------------------------------
# one sparsity
# ---------------------------------------------------------------------------------------------

def search_scores(model: nn.Module, scores: Sequence[nn.Parameter], data: TensorData, cfg: Any, seed: int,
                  device: torch.device, after_step: Callable[[], None] | None = None) -> list[dict]:
    """Train only ``scores`` (SGD ``SEARCH_LR``, momentum, weight decay, cosine over ``SEARCH_EPOCHS``),
    model in train mode, calling ``after_step()`` after every optimizer step. Returns per-epoch rows
    ``{"epoch", "train_loss", "train_acc"}``."""
    opt = torch.optim.SGD(list(scores), lr=cfg["SEARCH_LR"], momentum=cfg["MOMENTUM"], weight_decay=cfg["WEIGHT_DECAY"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg["SEARCH_EPOCHS"])
    train_loader, _ = data.loaders(cfg["BATCH_SIZE"], seed=seed)
    on_step = (lambda trainer, step: after_step()) if after_step is not None else None
    hist = Trainer(model, None, opt, epochs=cfg["SEARCH_EPOCHS"], scheduler=sched, device=device, progress=False,
                   augment=_augment(cfg, seed), on_step=on_step, batch_bar=False).fit(train_loader)
    return [{k: r[k] for k in ("epoch", "train_loss", "train_acc")} for r in hist]


def _frozen_params(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter but the scores, cloned: the tensors a search must leave bit-identical."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if not n.endswith("scores")}


def _identical(before: dict[str, torch.Tensor], model: nn.Module) -> bool:
    after = {n: p.detach() for n, p in model.named_parameters() if not n.endswith("scores")}
    return before.keys() == after.keys() and all(torch.equal(before[n], after[n]) for n in before)


def _has_bn(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def run_sparsity(cfg: Any, data: TensorData, state: dict[str, torch.Tensor], seed: int, sparsity: float,
                 device: str = "cpu") -> dict[str, Any]:
    """All arms at one sparsity from the pretrained ``state`` (module doc); JSON-able.

    Returns ``{"sparsity", "seed", "layers": {name: {"numel", "kept"}}, "<arm>": {"test_acc", ...}}``;
    ``jackpot`` also has ``overlap`` (with the magnitude mask), ``layer_overlap``, ``swaps``, ``steps``,
    ``max_nnz_deviation``, ``weights_identical``, ``history``; ``edgepopup`` has ``overlap`` too.
    """
    dev = pick_device(device)
    _, test_loader = data.loaders(cfg["BATCH_SIZE"], seed=seed)

    def fresh() -> nn.Module:
        m = build_model(cfg, data)
        m.load_state_dict(state)
        return m.to(dev)

    out: dict[str, Any] = {"sparsity": sparsity, "seed": seed}
    # magnitude mask (and its per-layer budget), no training
    model = fresh()
    targets = jackpot_targets(model)
    weights = {n: getattr(mod, a).detach() for n, mod, a in targets}
    mag = magnitude_masks(weights, sparsity)
    out["layers"] = {n: {"numel": m.numel(), "kept": int(m.sum())} for n, m in mag.items()}
    with torch.no_grad():
        for n, mod, a in targets:
            getattr(mod, a).mul_(mag[n])
    out["magnitude"] = {"test_acc": evaluate(model, test_loader, dev)}
    if _has_bn(model):
        t0 = time.perf_counter()
        reestimate_bn(model, data.loaders(cfg["BATCH_SIZE"], seed=seed)[0], dev)
        out["magnitude_bn"] = {"test_acc": evaluate(model, test_loader, dev), "seconds": time.perf_counter() - t0}

    # magnitude + fine-tuning (weights trained, mask fixed)
    t0 = time.perf_counter()
    model = fresh()
    masking = Masking(model, [n for n, _, _ in targets])
    masking.set_masks({n: m.to(dev) for n, m in mag.items()})
    set_seed(seed)
    hist = train_fixed_masks(model, masking, data, seed=seed, epochs=cfg["SEARCH_EPOCHS"], lr=cfg["FINETUNE_LR"],
                             batch_size=cfg["BATCH_SIZE"], momentum=cfg["MOMENTUM"], weight_decay=cfg["WEIGHT_DECAY"],
                             schedule="cosine", device=str(dev))
    out["finetune"] = {"test_acc": hist[-1]["test_acc"], "history": [{k: r[k] for k in ("epoch", "train_loss", "test_acc")}
                                                                      for r in hist], "seconds": time.perf_counter() - t0}

    # lottery jackpot
    t0 = time.perf_counter()
    model = fresh()
    set_seed(seed)
    jp = Jackpot(model, sparsity, kept_score=cfg["KEPT_SCORE"], pruned_score=cfg["PRUNED_SCORE"])
    start_acc = evaluate(model, test_loader, dev)
    before = _frozen_params(model)
    steps = [0]

    def after_step() -> None:
        jp.restrict()
        steps[0] += 1

    hist = search_scores(model, jp.parameters(), data, cfg, seed, dev, after_step)
    masks = {n: m.detach().cpu() for n, m in jp.masks().items()}
    out["jackpot"] = {
        "test_acc": evaluate(model, test_loader, dev), "start_test_acc": start_acc,
        "overlap": mask_overlap(masks, mag),
        "layer_overlap": {n: mask_overlap({n: masks[n]}, {n: mag[n]}) for n in mag},
        "changed_fraction": 1.0 - mask_overlap(masks, mag),
        "swaps": jp.swaps, "steps": steps[0], "max_nnz_deviation": jp.max_deviation,
        "nnz_exact": all(int(masks[n].sum()) == int(mag[n].sum()) for n in mag),
        "weights_identical": _identical(before, model), "history": hist, "seconds": time.perf_counter() - t0,
    }

    # edge-popup from random scores, same per-layer counts
    t0 = time.perf_counter()
    model = fresh()
    g = torch.Generator().manual_seed(10_000 + seed)
    pop = edge_popup(model, keep={n: int(m.sum()) for n, m in mag.items()}, generator=g)
    set_seed(seed)
    hist = search_scores(model, pop.parameters(), data, cfg, seed, dev)
    acc = evaluate(model, test_loader, dev)
    pmasks = {n: m.detach().cpu() for n, m in pop.masks().items()}
    out["edgepopup"] = {"test_acc": acc, "overlap": mask_overlap(pmasks, mag), "history": hist,
                        "seconds": time.perf_counter() - t0}
    return out


# ---------------------------------------------------------------------------------------------
# summaries and claims
# ---------------------------------------------------------------------------------------------

def summarize_runs(results: Sequence[dict]) -> list[dict]:
    """Rows ``{"method", "sparsity", "test_acc_mean", "test_acc_std", "n"}`` per arm and sparsity
    (mean and sample std over seeds), plus the jackpot's and edge-popup's mean ``overlap``."""
    rows = []
    for s in sorted({r["sparsity"] for r in results}):
        at = [r for r in results if r["sparsity"] == s]
        for arm in ARMS:
            vals = [r[arm]["test_acc"] for r in at if arm in r]
            if not vals:
                continue
            t = torch.tensor(vals, dtype=torch.float64)
            row = {"method": arm, "sparsity": s, "test_acc_mean": float(t.mean()),
                   "test_acc_std": float(t.std()) if len(vals) > 1 else 0.0, "n": len(vals)}
            ov = [r[arm]["overlap"] for r in at if "overlap" in r.get(arm, {})]
            if ov:
                row["overlap_mean"] = sum(ov) / len(ov)
            rows.append(row)
    return rows


def claims(cfg: Any, dense: Sequence[float], results: Sequence[dict], num_classes: int) -> tuple[dict, list[dict]]:
    """The three pre-written rules. Returns ``(metrics, claims)``, claims as ``{"id", "text", "state",
    "holds", "reason", "detail"}``.

    1. ``jackpot_recovers``: at every sparsity of ``RECOVER_AT`` that was run, the jackpot's mean test
       accuracy is at least the pretrained dense mean minus ``TOLERANCE_POINTS`` points (no weight updated).
    2. ``mask_overlap``: at every sparsity run, the jackpot's final mask keeps at least ``OVERLAP_MIN`` of
       the magnitude mask's kept weights (mean over seeds).
    3. ``exact_sparsity``: after every optimizer step of every search, every layer's kept count equals
       its magnitude budget, and no frozen parameter changed (bit-identical).
    """
    rows = summarize_runs(results)
    dense_mean = sum(dense) / len(dense)
    metrics: dict[str, Any] = {"dense/test_acc_mean": dense_mean, "dense/test_acc": list(dense)}
    for r in rows:
        metrics[f"{r['method']}/{r['sparsity']:g}/test_acc_mean"] = r["test_acc_mean"]
        metrics[f"{r['method']}/{r['sparsity']:g}/test_acc_std"] = r["test_acc_std"]
        if "overlap_mean" in r:
            metrics[f"{r['method']}/{r['sparsity']:g}/overlap_mean"] = r["overlap_mean"]
    out = []
    tol = cfg["TOLERANCE_POINTS"]
    jp = {r["sparsity"]: r for r in rows if r["method"] == "jackpot"}
    # 1
    at = [s for s in cfg["RECOVER_AT"] if s in jp]
    text1 = (f"The lottery jackpot recovers the pretrained accuracy without updating any weight "
             f"(within {tol:g} points, sparsity {', '.join(f'{100 * s:g} %' for s in cfg['RECOVER_AT'])}, "
             f"{cfg['MODEL']} on {cfg['DATASET']})")
    if at:
        gaps = {s: jp[s]["test_acc_mean"] - dense_mean for s in at}
        metrics["jackpot/recover_min_gap"] = min(gaps.values())
        holds = all(g >= -tol / 100 for g in gaps.values())
        detail = (f"dense {100 * dense_mean:.2f} %; " + "; ".join(
            f"{100 * s:g} %: jackpot {100 * jp[s]['test_acc_mean']:.2f} % ({100 * gaps[s]:+.2f} points)" for s in at)
                  + f"; rule: every gap >= -{tol:g} points; {len(dense)} seed(s), {cfg['SEARCH_EPOCHS']} search epochs")
        arms = {"dense": dense_mean, **{f"jackpot {100 * s:g} %": jp[s]["test_acc_mean"] for s in at}}
        state, reason = claim_states.comparison(holds, arms, num_classes)
        out.append({"id": "jackpot_recovers", "text": text1, "state": state, "holds": holds if state in (claim_states.HELD, claim_states.NOT_HELD) else None,
                    "reason": reason, "detail": detail})
    else:
        out.append({"id": "jackpot_recovers", "text": text1, "state": claim_states.NOT_EVALUATED, "holds": None,
                    "reason": f"none of RECOVER_AT {cfg['RECOVER_AT']} is in SPARSITIES {cfg['SPARSITIES']}", "detail": ""})
    # 2
    ov = {s: r["overlap_mean"] for s, r in jp.items()}
    metrics["jackpot/min_overlap"] = min(ov.values())
    pop_ov = {r["sparsity"]: r["overlap_mean"] for r in rows if r["method"] == "edgepopup"}
    holds2 = all(v >= cfg["OVERLAP_MIN"] for v in ov.values())
    out.append({"id": "mask_overlap", "state": claim_states.HELD if holds2 else claim_states.NOT_HELD, "holds": holds2,
                "reason": "",
                "text": f"The jackpot's mask overlaps the magnitude mask heavily (at least {100 * cfg['OVERLAP_MIN']:g} % "
                        f"of its kept weights, every sparsity)",
                "detail": "; ".join(f"{100 * s:g} %: jackpot {100 * v:.2f} %, edge-popup {100 * pop_ov.get(s, float('nan')):.2f} %, "
                                    f"chance {100 * (1 - s):.0f} %" for s, v in ov.items())
                          + f"; rule: jackpot overlap >= {100 * cfg['OVERLAP_MIN']:g} % at every sparsity"})
    # 3
    dev = max(r["jackpot"]["max_nnz_deviation"] for r in results)
    steps = sum(r["jackpot"]["steps"] for r in results)
    exact = all(r["jackpot"]["nnz_exact"] for r in results)
    identical = all(r["jackpot"]["weights_identical"] for r in results)
    metrics.update({"jackpot/max_nnz_deviation": dev, "jackpot/steps_checked": steps,
                    "jackpot/weights_identical": identical, "jackpot/swaps_total": sum(r["jackpot"]["swaps"] for r in results)})
    holds3 = dev == 0 and exact and identical
    out.append({"id": "exact_sparsity", "state": claim_states.HELD if holds3 else claim_states.NOT_HELD, "holds": holds3,
                "reason": "",
                "text": "The short restriction keeps every layer's sparsity exact, and no weight changes during the search",
                "detail": f"largest |kept - budget| over {steps} steps x {len(results[0]['layers'])} layers: {dev}; final "
                          f"counts exact: {exact}; frozen parameters bit-identical after every search: {identical}; "
                          f"{metrics['jackpot/swaps_total']} swapped pairs in total"})
    return metrics, out


# ---------------------------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------------------------

_STYLE = {"magnitude": dict(color="tab:gray", marker="v", ls=":"), "magnitude_bn": dict(color="tab:brown", marker="^", ls=":"),
          "finetune": dict(color="tab:blue", marker="s"), "jackpot": dict(color="tab:red", marker="o", lw=2),
          "edgepopup": dict(color="tab:green", marker="D")}


def plot_accuracy(rows: Sequence[dict], dense: float, title: str = "", paper: dict | None = None):
    """Test accuracy vs sparsity of every arm (mean ± std over seeds), the pretrained dense as a line;
    ``paper``: {label: {sparsity: accuracy in [0, 1]}} drawn as hollow markers."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    for arm in ARMS:
        pts = sorted((r["sparsity"], r["test_acc_mean"], r["test_acc_std"]) for r in rows if r["method"] == arm)
        if pts:
            s, m, e = zip(*pts)
            ax.errorbar([100 * v for v in s], [100 * v for v in m], yerr=[100 * v for v in e], capsize=3,
                        label=LABELS[arm], **_STYLE[arm])
    ax.axhline(100 * dense, color="black", lw=1, label=LABELS["dense"])
    for i, (label, pts) in enumerate((paper or {}).items()):
        ax.scatter([100 * s for s in pts], [100 * v for v in pts.values()], facecolors="none",
                   edgecolors=["purple", "darkorange"][i % 2], marker="*", s=90, label=f"paper: {label}")
    ax.set_xlabel("sparsity (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_overlap(results: Sequence[dict], title: str = ""):
    """Left: overlap with the magnitude mask (jackpot, edge-popup, chance = density) vs sparsity.
    Right: the jackpot's per-layer overlap at each sparsity (first seed)."""
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8))
    sp = sorted({r["sparsity"] for r in results})
    for arm, style in (("jackpot", _STYLE["jackpot"]), ("edgepopup", _STYLE["edgepopup"])):
        ys = [100 * sum(r[arm]["overlap"] for r in results if r["sparsity"] == s)
              / sum(1 for r in results if r["sparsity"] == s) for s in sp]
        a1.plot([100 * s for s in sp], ys, label=LABELS[arm], **style)
    a1.plot([100 * s for s in sp], [100 * (1 - s) for s in sp], color="black", ls="--", label="chance (density)")
    a1.set_xlabel("sparsity (%)")
    a1.set_ylabel("kept weights shared with magnitude (%)")
    a1.set_ylim(0, 102)
    a1.grid(alpha=0.3)
    a1.legend(fontsize=7)
    seed0 = min(r["seed"] for r in results)
    for r in (r for r in results if r["seed"] == seed0):
        names = list(r["jackpot"]["layer_overlap"])
        a2.plot(range(len(names)), [100 * r["jackpot"]["layer_overlap"][n] for n in names], marker="o",
                label=f"{100 * r['sparsity']:g} %")
        a2.set_xticks(range(len(names)), [n.replace(".weight", "") for n in names], rotation=45, ha="right", fontsize=7)
    a2.set_ylabel("jackpot overlap per layer (%)")
    a2.grid(alpha=0.3)
    a2.legend(fontsize=7, title="sparsity")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_search(results: Sequence[dict], title: str = ""):
    """Training loss per epoch of the jackpot and edge-popup searches and of fine-tuning (first seed)."""
    import matplotlib.pyplot as plt

    seed0 = min(r["seed"] for r in results)
    rs = [r for r in results if r["seed"] == seed0]
    fig, axes = plt.subplots(1, len(rs), figsize=(3.8 * len(rs), 3.2), squeeze=False)
    for ax, r in zip(axes[0], rs):
        for arm in ("jackpot", "edgepopup", "finetune"):
            h = r[arm]["history"]
            ax.plot([x["epoch"] for x in h], [x["train_loss"] for x in h], label=LABELS[arm], **_STYLE[arm])
        ax.set_title(f"sparsity {100 * r['sparsity']:g} %")
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
