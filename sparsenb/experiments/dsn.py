"""Driver of the DSN notebook: one training run per (dataset, arm, seed), summaries, figures.

Xiao et al. (2022), "Dynamic Sparse Network for Time Series Classification: Learning What
to 'See'", NeurIPS 2022. Model: :mod:`sparsenb.models.dsn`; training scheme: :mod:`sparsenb.methods.dsn`.

Arms (same :class:`~sparsenb.models.dsn.DSNNet`, same seed -> same initial weights and batch order):

* ``"dense"``: no mask; every group trains all ``K`` taps (the dense counterpart of the same
  architecture, as the paper compares);
* ``"static"``: DSN's windowed random masks at density ``D`` within each region, never updated;
* ``"dsn"``: the same initial masks, updated by DSN's magnitude-drop / random-regrow scheme.

Training follows the official code: Adam (lr 3e-4), cosine learning-rate schedule to
``LR_MIN`` (1e-4) over the epochs, batch size ``max(2, min(N_train // 10, BATCH_SIZE))``, and
the model reported is the one with the lowest training loss over the epochs
(``SELECT="min_train_loss"``; ``"last"`` takes the final one). The test set is used once, at the end.

FLOPs follow :mod:`sparsenb.train.flops` (RigL App. H): inference ``f`` = kept weights x output
positions of every conv (bottlenecks and head included, dense in every arm); training
``3 f`` per example per step for all three arms (DSN regrows at random, so it never needs
a dense gradient). Ratios are to the dense arm on the same input length.
"""
from __future__ import annotations

import copy
import math
import time
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..nb import claims
from ..train import flops
from .. import methods
from ..data.registry import TensorData
from ..models.dsn import DSNNet, build_dsn, windowed_convs
from ..train.trainer import Trainer, pick_device, set_seed
from .common import summarize
from .spec import acc_text, settings_class

__all__ = ["Settings", "OURS", "ARMS", "PUBLISHED", "published_claim", "batch_size_for", "build_model", "dsn_run", "summarize_runs",
           "published_gaps", "plot_kernels", "plot_accuracy", "plot_tap_usage"]

Settings = settings_class("10_dsn")  # typed, frozen; from specs/10_dsn.json
OURS = {  # the README gallery's number of each claim id in the spec, from results.json's metrics m
    "dsn_vs_dense": lambda m: "; ".join(f"{ds.split(':')[-1]}: DSN {acc_text(m, f'{ds}/dsn')} vs dense {acc_text(m, f'{ds}/dense')}, " f"{100 * m.get(f'{ds}/dsn/inference_flops_ratio', float('nan')):.1f} % of dense FLOPs" for ds in ("ucr:GunPoint", "ucr:ItalyPowerDemand")),
    "dsn_near_published": lambda m: "; ".join(f"{ds.split(':')[-1]}: DSN {acc_text(m, f'{ds}/dsn')}, worst gap " f"{m.get(f'{ds}/dsn/worst_gap_to_published_points', float('nan')):+.2f} points" for ds in ("ucr:GunPoint", "ucr:ItalyPowerDemand")),
}

ARMS = ("dense", "static", "dsn")

PUBLISHED: dict[str, dict[str, float]] = {
    # test accuracy (%) from the OS-CNN authors' published result tables
    # (Tang et al., "Omni-Scale CNNs: a simple and effective kernel size configuration for
    # time series classification", ICLR 2022)
    "GunPoint": {"ROCKET": 100.0, "InceptionTime": 100.0, "OS-CNN": 99.9},
    "ItalyPowerDemand": {"ROCKET": 97.0, "InceptionTime": 96.5, "OS-CNN": 94.7},
}


def batch_size_for(n_train: int, cap: int) -> int:
    """The official code's batch size: ``max(2, min(n_train // 10, cap))``."""
    return max(2, min(n_train // 10, cap))


def build_model(data: TensorData, cfg: dict) -> DSNNet:
    """A :class:`DSNNet` for ``data`` from the config keys WIDTH, DEPTH, KERNEL, GROUPS, PADDING, ADAPTIVE_SIZE."""
    return build_dsn(data.input_shape, data.num_classes, width=cfg["WIDTH"], depth=cfg["DEPTH"],
                     kernel_size=cfg["KERNEL"], groups=cfg["GROUPS"], padding=cfg["PADDING"],
                     adaptive_size=cfg["ADAPTIVE_SIZE"])


def _method(arm: str, cfg: dict, seed: int, steps_per_epoch: int):
    """The DSN method of ``arm`` (``None`` for dense): ``ALPHA``, ``T_END``, ``FLOOR`` read by
    :func:`sparsenb.methods.build`; ``DENSITY`` is ``1 - sparsity`` and ``UPDATE_EVERY`` (epochs, as the
    official code) becomes ``update_every`` in steps."""
    if arm == "dense":
        return None
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; choose one of {ARMS}")
    return methods.build("dsn", {**cfg, "sparsity": 1.0 - cfg["DENSITY"], "fix": arm == "static", "seed": seed,
                                 "update_every": cfg["UPDATE_EVERY"] * steps_per_epoch})


def _kernel_profiles(model: DSNNet) -> dict[str, Any]:
    """Per wide conv: mean |w| per (group, tap) and kept fraction per (group, tap); first conv's kernels."""
    out: dict[str, Any] = {"abs_w": [], "kept": []}
    for i, (name, conv) in enumerate(windowed_convs(model).items()):
        w = conv.weight.detach().float().cpu()
        mask = getattr(conv.conv, "weight_mask", None)
        kept = (mask.cpu() if mask is not None else torch.ones_like(w, dtype=torch.bool)).float()
        out["abs_w"].append([w[conv.group_slice(g)].abs().mean((0, 1)).tolist() for g in range(conv.groups)])
        out["kept"].append([kept[conv.group_slice(g)].mean((0, 1)).tolist() for g in range(conv.groups)])
        if i == 0:
            out["first_kernels"] = w.mean(1).tolist()  # (out, K): mean over input channels
            out["windows"] = list(conv.windows)
            out["group_channels"] = conv.group_channels
    return out


def dsn_run(data: TensorData, cfg: dict, arm: str, seed: int, device: str = "auto",
            progress: bool = True) -> dict[str, Any]:
    """Train one arm on ``data`` with ``seed``; return a JSON-serialisable summary.

    Returns ``test_acc``, ``test_loss``, ``train_loss`` (of the selected epoch), ``selected_epoch``,
    ``history`` (per-epoch train loss/acc, density), ``region_density`` (kept / region size over
    all wide convs; ``None`` for dense), ``density`` (kept / all wide-conv weights),
    ``outside_region_nonzero`` (nonzero weights outside the windows; must be 0 for sparse arms),
    ``f_forward`` and ``f_dense`` (inference MACs per example of this net and of its dense
    version), ``train_macs`` (total training MACs), ``mask_updates``, ``profiles``
    (see :func:`_kernel_profiles`), ``batch_size``, ``seconds``.
    """
    t0 = time.perf_counter()
    set_seed(seed)
    model = build_model(data, cfg)
    dev = pick_device(device)
    bs = batch_size_for(len(data.y_train), cfg["BATCH_SIZE"])
    train_loader, test_loader = data.loaders(bs, seed=seed, pin_memory=dev.type == "cuda")
    method = _method(arm, cfg, seed, len(train_loader))
    opt = torch.optim.Adam(model.parameters(), lr=cfg["LR"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["EPOCHS"], eta_min=cfg["LR_MIN"])
    best: dict[str, Any] = {"loss": math.inf, "epoch": 0, "state": None}

    def keep_best(trainer: Trainer, row: dict) -> None:
        if cfg["SELECT"] == "last" or row["train_loss"] <= best["loss"]:
            best.update(loss=row["train_loss"], epoch=row["epoch"], state=copy.deepcopy(trainer.model.state_dict()))

    if cfg["SELECT"] not in ("min_train_loss", "last"):
        raise ValueError(f"SELECT must be 'min_train_loss' or 'last', got {cfg['SELECT']!r}")
    trainer = Trainer(model, method, opt, epochs=cfg["EPOCHS"], scheduler=sched, device=dev,
                      progress=progress, callbacks=[keep_best])
    history = trainer.fit(train_loader)
    model.load_state_dict(best["state"])
    ev = trainer.evaluate(test_loader)
    convs = windowed_convs(model)
    outside = sum(int(((c.weight != 0) & ~c.region()).sum()) for c in convs.values()) if method else None
    kept = sum(int(c.conv.weight_mask.sum()) for c in convs.values()) if method else None
    region = sum(int(c.region().sum()) for c in convs.values())
    numel = sum(c.weight.numel() for c in convs.values())
    example = data.X_train[:2].to(dev)
    f_forward = flops.forward_macs(model, example, masked=method is not None)
    f_dense = flops.forward_macs(model, example, masked=False)
    steps = cfg["EPOCHS"] * len(train_loader)
    return {
        "dataset": data.name, "arm": arm, "seed": seed,
        "test_acc": ev["acc"], "test_loss": ev["loss"], "train_loss": best["loss"], "selected_epoch": best["epoch"],
        "history": [{k: h[k] for k in ("epoch", "train_loss", "train_acc", "density")} for h in history],
        "region_density": kept / region if method else None,
        "density": kept / numel if method else 1.0,
        "nnz": kept if method else numel,
        "outside_region_nonzero": outside,
        "f_forward": f_forward, "f_dense": f_dense,
        "train_macs": flops.training_macs(method or methods.get("dense"), len(data.y_train) * cfg["EPOCHS"],
                                          f_forward, f_dense),
        "mask_updates": len({e["step"] for e in method.events}) if method else 0,
        "profiles": _kernel_profiles(model),
        "batch_size": bs, "steps": steps,
        "seconds": time.perf_counter() - t0,
    }


def summarize_runs(results: Sequence[dict]) -> list[dict]:
    """One row per (dataset, arm): mean/std test accuracy over seeds, FLOPs ratios to the dense arm.

    Rows ``{"dataset", "arm", "n", "acc_mean", "acc_std", "inference_flops_ratio",
    "training_flops_ratio", "region_density", "density"}``; ratios divide by the dense arm's mean
    (``nan`` when the dataset has no dense run).
    """
    means = summarize(results, ("dataset", "arm"), {"test_acc": ("mean", "std"), "f_forward": ("mean",),
                                                    "train_macs": ("mean",), "density": ("mean",)}, backend="numpy")
    dense = {m["dataset"]: m for m in means if m["arm"] == "dense"}
    rows = []
    for m in means:
        d = dense.get(m["dataset"])
        region = [r["region_density"] for r in results if (r["dataset"], r["arm"]) == (m["dataset"], m["arm"])]
        rows.append({
            "dataset": m["dataset"], "arm": m["arm"], "n": m["n"],
            "acc_mean": m["test_acc_mean"], "acc_std": m["test_acc_std"],
            "inference_flops_ratio": float(m["f_forward_mean"] / (d["f_forward_mean"] if d else math.nan)),
            "training_flops_ratio": float(m["train_macs_mean"] / (d["train_macs_mean"] if d else math.nan)),
            "region_density": float(np.mean(region)) if region[0] is not None else None,
            "density": m["density_mean"],
        })
    return rows


def published_gaps(summary: Sequence[dict], arm: str = "dsn") -> list[dict]:
    """Our ``arm``'s mean accuracy (points) minus each published accuracy, for the sets in :data:`PUBLISHED`."""
    out = []
    for row in summary:
        name = row["dataset"].split(":", 1)[-1]
        if row["arm"] != arm or name not in PUBLISHED:
            continue
        for other, acc in PUBLISHED[name].items():
            out.append({"dataset": name, "method": other, "published": acc, "ours": 100 * row["acc_mean"],
                        "gap": 100 * row["acc_mean"] - acc})
    return out


def published_claim(summary: Sequence[dict], num_classes: dict[str, int], arm: str = "dsn",
                    max_gap: float = 2.0) -> dict[str, Any]:
    """The claim "DSN is within ``max_gap`` points of the published accuracies of ROCKET, InceptionTime
    and OS-CNN" on ``datasets``, ready for ``run.claim(**...)``.

    Judged on the datasets with a reference in :data:`PUBLISHED`; those without one are named in the
    detail (or, if none has one, the claim is ``"not evaluated"`` with the reason), never dropped.
    An arm at chance level makes it ``"inconclusive"`` (:func:`sparsenb.nb.claims.comparison`).

    ``summary``: :func:`summarize_runs` rows; ``num_classes``: dataset -> classes, for every dataset run.
    """
    datasets = list(num_classes)
    gaps = published_gaps([r for r in summary if r["dataset"] in datasets], arm)
    names = {d: d.split(":", 1)[-1] for d in datasets}
    with_ref = [d for d in datasets if names[d] in PUBLISHED]
    without = [names[d] for d in datasets if names[d] not in PUBLISHED]
    text = (f"DSN is within {max_gap:g} points of the published accuracies of ROCKET, InceptionTime and OS-CNN "
            f"({', '.join(names[d] for d in with_ref) or ', '.join(without)})")
    claim = {"text": text, "id": "dsn_near_published"}
    if not with_ref:
        return {**claim, "holds": None, "state": claims.NOT_EVALUATED, "detail": "",
                "reason": f"no published ROCKET / InceptionTime / OS-CNN accuracy for {', '.join(without)} "
                          f"(references exist for {', '.join(sorted(PUBLISHED))})"}
    holds = all(g["gap"] >= -max_gap for g in gaps)
    rows = {r["dataset"]: r for r in summary if r["arm"] == arm}
    state, reason = claims.comparison(holds, {f"{names[d]}/{arm}": rows[d]["acc_mean"] for d in with_ref},
                                      {f"{names[d]}/{arm}": num_classes[d] for d in with_ref})
    detail = "; ".join(f"{g['dataset']}: DSN {g['ours']:.2f} % vs {g['method']} {g['published']:g} % ({g['gap']:+.2f} pts)"
                       for g in gaps)
    if without:
        detail += f"; not evaluated on {', '.join(without)} (no published reference)"
    return {**claim, "holds": holds, "state": state, "reason": reason, "detail": detail}


# --------------------------------------------------------------------------- figures
_GROUP_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def plot_kernels(dsn_result: dict, dense_result: dict | None = None, n_show: int = 4) -> plt.Figure:
    """The learned first-layer kernels per group (rows: groups; left: DSN, right: dense).

    Each panel draws ``n_show`` kernels of the group (mean over input channels) against the tap
    index, with the group's window shaded: DSN's kernels are zero outside the window.
    """
    runs = [("DSN", dsn_result)] + ([("dense", dense_result)] if dense_result is not None else [])
    prof = dsn_result["profiles"]
    windows, gc = prof["windows"], prof["group_channels"]
    k = len(prof["first_kernels"][0])
    fig, axes = plt.subplots(len(windows), len(runs), figsize=(5 * len(runs), 1.9 * len(windows)),
                             squeeze=False, sharex=True)
    for col, (label, res) in enumerate(runs):
        kernels = np.array(res["profiles"]["first_kernels"])
        for g, w in enumerate(windows):
            ax = axes[g, col]
            ax.axvspan(-0.5, w - 0.5, color=_GROUP_COLORS[g % 5], alpha=0.12)
            block = kernels[g * gc:(g + 1) * gc]
            order = np.argsort(-np.abs(block).sum(1))[:n_show]  # the strongest kernels of the group
            for j in order:
                ax.plot(range(k), block[j], marker=".", ms=3, lw=1)
            ax.axhline(0, color="k", lw=0.5)
            ax.set_ylabel(f"group {g + 1}\n({w} taps)")
            if g == 0:
                ax.set_title(f"{label}: first-layer kernels ({res['dataset']}, seed {res['seed']})")
    for ax in axes[-1]:
        ax.set_xlabel("tap")
    fig.tight_layout()
    return fig


def plot_tap_usage(results: Sequence[dict], arm: str = "dsn") -> plt.Figure:
    """Mean |w| per tap for each group, averaged over the wide convs and seeds of ``arm`` (per dataset)."""
    datasets = list(dict.fromkeys(r["dataset"] for r in results))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 3.2), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        rs = [r for r in results if r["dataset"] == ds and r["arm"] == arm]
        prof = np.array([r["profiles"]["abs_w"] for r in rs]).mean(axis=(0, 1))  # (groups, K)
        windows = rs[0]["profiles"]["windows"]
        for g, w in enumerate(windows):
            ax.plot(prof[g], color=_GROUP_COLORS[g % 5], label=f"group {g + 1} ({w} taps)")
            ax.axvline(w - 0.5, color=_GROUP_COLORS[g % 5], ls=":", lw=1)
        ax.set(title=f"{arm}: mean |w| per tap, {ds}", xlabel="tap", ylabel="mean |w|")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_accuracy(results: Sequence[dict]) -> plt.Figure:
    """Test accuracy (%) per arm and dataset: dots = seeds, bars = mean; published methods as ticks."""
    datasets = list(dict.fromkeys(r["dataset"] for r in results))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.4), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        arms = [a for a in ARMS if any(r["dataset"] == ds and r["arm"] == a for r in results)]
        for i, arm in enumerate(arms):
            accs = [100 * r["test_acc"] for r in results if r["dataset"] == ds and r["arm"] == arm]
            ax.bar(i, np.mean(accs), color="lightgray", edgecolor="k")
            ax.plot([i] * len(accs), accs, "o", color="k", ms=4)
        pub = PUBLISHED.get(ds.split(":", 1)[-1], {})
        for j, (name, acc) in enumerate(pub.items()):
            ax.axhline(acc, color=_GROUP_COLORS[j], ls="--", lw=1, label=f"{name} {acc:g}")
        lo = min([100 * r["test_acc"] for r in results if r["dataset"] == ds] + list(pub.values()))
        ax.set_ylim(max(0, lo - 3), 100.5)
        ax.set_xticks(range(len(arms)), arms)
        ax.set(title=ds, ylabel="test accuracy (%)")
        if pub:
            ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
