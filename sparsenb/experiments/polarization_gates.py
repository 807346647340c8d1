"""Consensus subnetwork with polarization-regularised binary gates: runs, summaries, plots, claims.

Zhi, Babbar, Liu, Sun, Silavong, Shi, Moran 2023, arXiv:2302.10798, "Learning a Consensus Sub-Network
with Polarization Regularization and One Pass Training". The gates are :mod:`sparsenb.layers.gates`, the
regulariser and its schedule :mod:`sparsenb.methods.polarization_gates` (all choices documented there).

Per seed: a dense baseline and one gated run per gate granularity, same initial weights, same data order,
same optimiser and schedule; after training the gates are removed twice, by the hard gates (the model's
outputs must not change) and by the exact target (the ``round((1 - s) n)`` highest gate scores kept), and
both static subnetworks are evaluated.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import torch

from ..data import registry
from ..data.registry import DataError, TensorData
from ..methods.polarization_gates import PolarizationGates, polarized_fraction
from ..models import classic as models
from ..train.augment import RandomCropFlip
from ..train.trainer import Trainer, make_optimizer, make_scheduler, set_seed
from .common import summarize
from .spec import settings_class

__all__ = ["Settings", "OURS", "load_data", "build_model", "dense_run", "gates_run", "summary", "claims",
           "plot_gate_histograms", "plot_training", "PAPER"]

Settings = settings_class("15_polarization_gates")  # typed, frozen; from specs/15_polarization_gates.json
OURS = {  # the README gallery's number of each claim id in the spec, from results.json's metrics m
    "half_removed_under_1pt": lambda m: (f"{100 * m.get('connection/exact_acc_mean', float('nan')):.2f} % at "
                                         f"{100 * m.get('connection/exact_sparsity', float('nan')):.1f} % removed vs dense "
                                         f"{100 * m.get('dense/acc_mean', float('nan')):.2f} %"),
    "gates_bimodal": lambda m: f"{100 * m.get('connection/polarized_min', float('nan')):.1f} % of gates within 0.05 of 0 or 1 (worst seed)",
}

PAPER = {  # what the paper states (abstract, arXiv:2302.10798 v5); its tables were not used
    "claim": "50 % of connections removed with < 1 point accuracy drop (CIFAR-10, CIFAR-100, Tiny-ImageNet; ResNets)",
}


def load_data(name: str) -> TensorData:
    """``sparsenb.data.load(name)``; a name the registry does not have fails with what to do instead."""
    if name not in registry.available():
        raise DataError(f"dataset {name!r} is not available in sparsenb's data registry (the paper profile asks "
                        f"for the real CIFAR-10/100, which no loader here provides yet: the mirror holds only the "
                        f"derived 'cifar10-jpeg' subset). Register a loader for {name!r} in sparsenb/data/images.py, "
                        f"or run with DATASETS=['cifar10-jpeg']. Available: {', '.join(registry.available())}")
    return registry.load(name)


def build_model(cfg: Any, data: TensorData, seed: int) -> torch.nn.Module:
    """``cfg.MODEL`` with ``cfg.MODEL_KWARGS`` for ``data``, weights drawn after ``set_seed(seed)``."""
    set_seed(seed)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.MODEL_KWARGS.items()}
    return models.build(cfg.MODEL, data.input_shape, data.num_classes, **kwargs)


def _trainer(cfg: Any, model: torch.nn.Module, method: Any, seed: int, device: str) -> Trainer:
    opt = make_optimizer(model, "sgd", lr=cfg.LR, momentum=cfg.MOMENTUM, weight_decay=cfg.WEIGHT_DECAY)
    sched = make_scheduler(opt, "cosine", cfg.EPOCHS)
    augment = RandomCropFlip(seed=seed) if cfg.AUGMENT else None
    return Trainer(model, method, opt, epochs=cfg.EPOCHS, scheduler=sched, device=device,
                   progress=False, augment=augment)


def _params(model: torch.nn.Module) -> tuple[int, int]:
    """(weights of Linear/Conv2d, all parameters) of a plain (ungated) model."""
    from ..layers.gates import gateable_modules
    gated = sum(m.weight.numel() for _, m in gateable_modules(model))
    return gated, sum(p.numel() for p in model.parameters())


def dense_run(data: TensorData, cfg: Any, seed: int, device: str = "cpu") -> dict[str, Any]:
    """Train the dense model; ``{"acc", "history", "gated_weights", "params", "seconds"}``."""
    t0 = time.perf_counter()
    model = build_model(cfg, data, seed)
    gated, params = _params(model)
    train, test = data.loaders(cfg.BATCH_SIZE, seed=seed)
    trainer = _trainer(cfg, model, None, seed, device)
    history = trainer.fit(train, test)
    return {"acc": history[-1]["test_acc"], "history": history, "gated_weights": gated, "params": params,
            "seconds": time.perf_counter() - t0}


def gates_run(data: TensorData, cfg: Any, granularity: str, seed: int, device: str = "cpu") -> dict[str, Any]:
    """Train with gates + polarization at ``cfg.SPARSITY``, remove the gates, evaluate.

    Returns ``acc`` (gated model, hard gates, end of training), ``removed_acc`` / ``removed_sparsity``
    (gates removed by their hard values), ``removed_max_abs_diff`` (max |logit difference| between the gated
    and the removed model on the test set: 0 when removal is exact), ``exact_acc`` / ``exact_sparsity`` /
    ``exact_kept`` / ``exact_expected_kept`` (removal keeping exactly ``round((1 - s) n)`` gates),
    ``exact_flipped_weights`` (weights whose hard value differs between the two removals), ``layer_sparsity``,
    ``gate_history`` (per epoch: histogram, polarized fraction, sparsity, lambda), ``polarized`` (final
    fraction of gate scores within ``cfg.POLAR_TOL`` of 0 or 1), ``zeros_exact`` (removed weights are 0),
    ``history`` and ``seconds``.
    """
    t0 = time.perf_counter()
    model = build_model(cfg, data, seed)
    gated_weights, params = _params(model)
    train, test = data.loaders(cfg.BATCH_SIZE, seed=seed)
    method = PolarizationGates(sparsity=cfg.SPARSITY, granularity=granularity, lam=cfg.LAMBDA, gate_lr=cfg.GATE_LR,
                               gate_init=cfg.GATE_INIT, warmup=cfg.WARMUP, ramp=cfg.RAMP, pivot=cfg.PIVOT,
                               bins=cfg.BINS, seed=seed)
    trainer = _trainer(cfg, model, method, seed, device)
    history = trainer.fit(train, test)
    gates = method.gates
    scores = gates.scores()
    logits, y = trainer.predict(test)
    hard_masks = gates.masks()
    n_gates = scores.numel()
    expected = round((1.0 - cfg.SPARSITY) * n_gates)

    exact = gates.exact_masks(cfg.SPARSITY)  # decided before removal, from the same scores
    raw = {n: gates.weights(n).detach().clone() for n in gates.modules}
    removed = gates.remove()  # by the hard gates: must leave the outputs unchanged
    logits_t, _ = trainer.predict(test)
    with torch.no_grad():  # the exact-target subnetwork of the same trained weights
        for n, module in gates.modules.items():
            module.weight.copy_(raw[n] * exact[n].to(raw[n].dtype))
    logits_e, _ = trainer.predict(test)
    total_w = sum(m.numel() for m in exact.values())
    flipped = sum(int((exact[n] != hard_masks[n]).sum()) for n in exact)
    acc = lambda z: float((z.argmax(1) == y).float().mean())  # noqa: E731
    return {
        "granularity": granularity, "seed": seed, "acc": acc(logits), "history": history,
        "removed_acc": acc(logits_t), "removed_max_abs_diff": float((logits - logits_t).abs().max()),
        "removed_sparsity": 1.0 - sum(int(m.sum()) for m in removed.values()) / total_w,
        "exact_acc": acc(logits_e), "exact_sparsity": 1.0 - sum(int(m.sum()) for m in exact.values()) / total_w,
        "exact_kept_gates": int((_gate_keep(exact, granularity)).sum()), "exact_expected_kept": expected,
        "exact_kept_weights": sum(int(m.sum()) for m in exact.values()),
        "exact_flipped_weights": flipped, "n_gates": n_gates, "gated_weights": gated_weights, "params": params,
        "layer_sparsity": {n: 1.0 - float(m.float().mean()) for n, m in exact.items()},
        "zeros_exact": all(bool((model.get_submodule(n).weight[~m] == 0).all()) for n, m in exact.items()),
        "gate_history": method.gate_history, "polarized": polarized_fraction(scores, cfg.POLAR_TOL),
        "seconds": time.perf_counter() - t0,
    }


def _gate_keep(masks: dict[str, torch.Tensor], granularity: str) -> torch.Tensor:
    """The kept gates (flattened) behind connection masks: the masks themselves, or one per output channel."""
    if granularity == "connection":
        return torch.cat([m.reshape(-1) for m in masks.values()])
    return torch.cat([m.reshape(m.shape[0], -1)[:, 0] for m in masks.values()])


def _mean_std(vals: Sequence[float]) -> tuple[float, float]:
    (row,) = summarize([{"v": v} for v in vals], (), "v")
    return row["mean"], row["std"]


def summary(dense: Sequence[dict], gated: dict[str, Sequence[dict]]) -> list[dict]:
    """One row per arm: mean / std over seeds of the test accuracies and the sparsities
    (:func:`sparsenb.experiments.common.summarize`)."""
    long = [{"arm": "dense", "acc": r["acc"], "removed": 0.0} for r in dense]
    for gran, rs in gated.items():
        for key, label, sp in (("acc", "gated, hard gates (end of training)", "removed_sparsity"),
                               ("removed_acc", "gates removed (hard gates)", "removed_sparsity"),
                               ("exact_acc", "gates removed (exact target)", "exact_sparsity")):
            long += [{"arm": f"{gran}: {label}", "acc": r[key], "removed": r[sp]} for r in rs]
    return [{"arm": r["arm"], "test acc (end of training)": r["acc_mean"], "std": r["acc_std"],
             "connections removed": r["removed_mean"], "n": r["n"]}
            for r in summarize(long, ("arm",), {"acc": ("mean", "std"), "removed": ("mean",)})]


def claims(dense: Sequence[dict], connection: Sequence[dict], cfg: Any) -> dict[str, Any]:
    """The two pre-registered verdicts, on the connection gates.

    1. ``half_removed``: mean test accuracy of the exact-target subnetwork >= mean dense accuracy
       - ``cfg.MAX_DROP_POINTS`` points, and every seed's subnetwork removes exactly
       ``round(s n)`` gated connections (``s`` = ``cfg.SPARSITY``).
    2. ``bimodal``: in every seed, at the end of training, at least ``cfg.POLAR_MIN`` of the gate scores
       are within ``cfg.POLAR_TOL`` of 0 or of 1.
    """
    dense_m, _ = _mean_std([r["acc"] for r in dense])
    exact_m, _ = _mean_std([r["exact_acc"] for r in connection])
    exact_count = all(r["exact_kept_gates"] == r["exact_expected_kept"] for r in connection)
    polar = [float(r["polarized"]) for r in connection]
    drop = 100 * (dense_m - exact_m)
    return {"dense_acc": dense_m, "exact_acc": exact_m, "drop_points": drop, "exact_count": exact_count,
            "half_removed": bool(drop < cfg.MAX_DROP_POINTS and exact_count),
            "polarized": polar, "polarized_min": min(polar), "bimodal": bool(min(polar) >= cfg.POLAR_MIN)}



# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------


def plot_gate_histograms(run: dict, epochs: Sequence[int] | None = None):
    """Histograms of the gate scores at a few epochs (log counts), one panel each, and the fraction of
    polarized gates, the sparsity of the hard gates and lambda over the epochs."""
    import matplotlib.pyplot as plt

    hist = run["gate_history"]
    last = hist[-1]["epoch"]
    if epochs is None:
        picks = sorted({0, round(0.1 * last), round(0.2 * last), round(0.3 * last), round(0.5 * last), last})
    else:
        picks = list(epochs)
    rows = {r["epoch"]: r for r in hist}
    picks = [e for e in picks if e in rows]
    fig, axes = plt.subplots(1, len(picks) + 1, figsize=(2.6 * (len(picks) + 1), 2.8))
    for ax, e in zip(axes, picks):
        counts = rows[e]["hist"]
        bins = len(counts)
        ax.bar([(i + 0.5) / bins for i in range(bins)], [max(c, 0.5) for c in counts], width=1 / bins,
               color="#4c72b0", edgecolor="white", linewidth=0.3)
        ax.set_yscale("log")
        ax.set_ylim(0.5, max(counts) * 2)
        ax.set_title(f"epoch {e}: {100 * rows[e]['polarized']:.0f} % polarized", fontsize=9)
        ax.set_xlabel("gate score")
        ax.axvline(0.5, color="grey", lw=0.6, ls=":")
    axes[0].set_ylabel("gates (log)")
    ax = axes[-1]
    ep = [r["epoch"] for r in hist]
    ax.plot(ep, [r["polarized"] for r in hist], label="within 0.05 of 0 or 1")
    ax.plot(ep, [r["sparsity"] for r in hist], label="connections removed")
    lam = [r["lambda"] for r in hist]
    if max(lam) > 0:
        ax.plot(ep, [x / max(lam) for x in lam], ls="--", color="grey", label="lambda / max")
    ax.set_xlabel("epoch")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"{run['granularity']} gates, seed {run['seed']}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_training(dense: Sequence[dict], gated: dict[str, Sequence[dict]]):
    """Test accuracy per epoch (seed 0) of the dense and the gated runs, and the per-layer sparsity of the
    exact-target subnetworks (mean over seeds)."""
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.3))
    a1.plot([h["epoch"] for h in dense[0]["history"]], [h["test_acc"] for h in dense[0]["history"]], label="dense", color="k")
    for gran, rs in gated.items():
        a1.plot([h["epoch"] for h in rs[0]["history"]], [h["test_acc"] for h in rs[0]["history"]], label=f"{gran} gates")
    a1.set_xlabel("epoch")
    a1.set_ylabel("test accuracy (seed 0)")
    a1.legend(fontsize=8)
    width = 0.8 / max(1, len(gated))
    for i, (gran, rs) in enumerate(gated.items()):
        names = list(rs[0]["layer_sparsity"])
        vals = [sum(r["layer_sparsity"][n] for r in rs) / len(rs) for n in names]
        a2.bar([j + i * width for j in range(len(names))], vals, width=width, label=f"{gran} gates")
        a2.set_xticks([j + width * (len(gated) - 1) / 2 for j in range(len(names))], names, rotation=30, fontsize=7)
    a2.set_ylabel("fraction of weights removed")
    a2.set_title("per layer, exact-target subnetwork", fontsize=9)
    a2.legend(fontsize=8)
    fig.tight_layout()
    return fig
