"""The SLaK experiment: dense 7x7 vs dense large square kernels vs SLaK on small images.

Liu et al. (2023), "More ConvNets in the 2020s: Scaling up Kernels Beyond 51x51 using
Sparsity", ICLR. One unit of work (:func:`slak_run`) builds one variant of
:func:`sparsenb.models.convnext.build_variant`, trains it (SLaK with
:class:`sparsenb.methods.slak.SLaK`, the dense variants without masks) and measures

* test accuracy, time per training epoch (training only, measured in this run);
* parameters (:func:`parameter_counts`): **nonzero weights** = kept entries of every Conv/Linear
  weight (mask sum; all entries for a dense net) and **other** = every bias, batch-norm,
  layer-norm and layer-scale parameter, counted in full; "nonzero params" is their sum;
* forward MACs per example (:func:`sparsenb.train.flops.forward_macs`, kept weights x output positions);
* the effective receptive field (:func:`effective_receptive_field`) and its high-contribution
  area ratios (:func:`erf_area_ratio`), as in the paper's Sec. 5 / RepLKNet (Ding et al. 2022).
"""
from __future__ import annotations

import math
import time
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import methods
from ..train.augment import RandomCropFlip
from ..models.convnext import ConvNeXtSmall, build_variant
from ..data.registry import TensorData
from ..train.flops import forward_macs
from ..core.masks import PRUNABLE_TYPES
from ..train.trainer import Trainer, make_optimizer, make_scheduler, set_seed
from .spec import acc_text, settings_class

__all__ = ["Settings", "OURS", "parameter_counts", "effective_receptive_field", "erf_area_ratio", "erf_centre", "slak_run",
           "build_from_config", "erf_images", "plot_erf", "plot_accuracy_cost", "format_acc", "mean_std", "ERF_THRESHOLDS"]

Settings = settings_class("12_slak")  # typed, frozen; from specs/12_slak.json
OURS = {  # the README gallery's number of each claim id in the spec, from results.json's metrics m
    "slak_beats_dense7": lambda m: (f"SLaK {acc_text(m, 'slak')} vs dense 7x7 {acc_text(m, 'dense7')} " f"({m.get('slak/nonzero_params', 0):,} vs {m.get('dense7/nonzero_params', 0):,} " f"nonzero params)"),
    "slak_larger_erf": lambda m: ("r(20/30/50/99 %): SLaK " + "/".join(f"{m.get(f'slak/erf_r{t}_mean', float('nan')):.3f}" for t in ("0.2", "0.3", "0.5", "0.99")) + " vs dense 7x7 " + "/".join(f"{m.get(f'dense7/erf_r{t}_mean', float('nan')):.3f}" for t in ("0.2", "0.3", "0.5", "0.99"))),
}

ERF_THRESHOLDS = (0.2, 0.3, 0.5, 0.99)
"""Contribution fractions t of the high-contribution area ratio r(t) (RepLKNet, SLaK)."""


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """``{"weights", "nonzero_weights", "depthwise_nonzero", "other", "nonzero_params"}``.

    ``weights``: entries of all Conv/Linear weights; ``nonzero_weights``: the kept ones (the
    ``weight_mask`` buffer where there is one, else every entry, so a dense net counts in full);
    ``depthwise_nonzero``: the part of it in depthwise convs (``groups == in_channels > 1``);
    ``other``: all remaining parameters (biases, norms, layer scale), counted in full;
    ``nonzero_params = nonzero_weights + other``.
    """
    weights = kept = dw = 0
    weight_ids = set()
    for m in model.modules():
        if isinstance(m, PRUNABLE_TYPES):
            mask = getattr(m, "weight_mask", None)
            n_kept = int(mask.sum()) if mask is not None else m.weight.numel()
            weights += m.weight.numel()
            kept += n_kept
            weight_ids.add(id(m.weight))
            if isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels:
                dw += n_kept
    other = sum(p.numel() for p in model.parameters() if id(p) not in weight_ids)
    return {"weights": weights, "nonzero_weights": kept, "depthwise_nonzero": dw, "other": other,
            "nonzero_params": kept + other}


def effective_receptive_field(model: ConvNeXtSmall, images: torch.Tensor, stage: int = -1,
                              batch_size: int = 25) -> torch.Tensor:
    """Mean contribution of each input pixel to the central output of a stage, ``(H, W)``.

    For each image ``x`` (RepLKNet's / SLaK's ERF code): ``c = sum_ch relu(F(x)[ch, h/2, w/2])``
    with ``F`` = the feature map of ``stage`` (the last by default), ``g = relu(dc/dx)`` summed
    over the input channels; the result is ``g`` averaged over the images. The model is put in
    eval mode (batch norm uses its running statistics) and restored.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got {tuple(images.shape)}")
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    total = torch.zeros(images.shape[-2:], dtype=torch.float64)
    try:
        for chunk in images.split(batch_size):
            x = chunk.to(dev).requires_grad_(True)
            feats = model.features(x, stage)
            h, w = feats.shape[-2:]
            central = torch.relu(feats[:, :, h // 2, w // 2]).sum()
            (grad,) = torch.autograd.grad(central, x)
            total += torch.relu(grad).sum(1).sum(0).detach().double().cpu()
    finally:
        model.train(was_training)
    return (total / len(images)).float()


def erf_centre(model: ConvNeXtSmall, image_hw: Sequence[int], stage: int = -1) -> tuple[int, int]:
    """Input pixel at the centre of the receptive field of the central output ``(h/2, w/2)`` of ``stage``.

    Every stem/downsampling conv is ``2 x 2`` with stride 2, so an output index ``i`` of a stage
    with total stride ``s`` covers inputs ``s*i .. s*i + s - 1``; its centre is ``s*i + (s - 1) // 2``.
    """
    last = stage % len(model.stages)
    s = 2 ** (last + 1)
    return tuple(s * ((n // s) // 2) + (s - 1) // 2 for n in image_hw)  # type: ignore[return-value]


def erf_area_ratio(scores: torch.Tensor | np.ndarray, t: float, centre: Sequence[int] | None = None) -> float:
    """High-contribution area ratio ``r(t)`` of an ERF map ``(H, W)``.

    As in RepLKNet / SLaK: the map is rescaled to ``a = log10(1 + scores) / max``; ``r(t)`` is
    the area (pixels, clipped to the image) of the smallest square centred on ``centre``
    (default ``(H//2, W//2)``) whose ``a`` sums to more than ``t`` of the total, divided by
    ``H * W``. Larger ``r`` = the contributions are spread over a larger area.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or not np.isfinite(s).all() or (s < 0).any():
        raise ValueError("scores must be a finite, non-negative (H, W) map")
    a = np.log10(1.0 + s)
    if not 0.0 < t < 1.0:
        raise ValueError(f"t must be in (0, 1), got {t}")
    h, w = a.shape
    total = a.sum()
    if total <= 0:
        raise ValueError("the ERF map is all zero: no input pixel reaches the central output")
    cy, cx = centre if centre is not None else (h // 2, w // 2)
    for r in range(0, max(h, w)):
        box = a[max(0, cy - r):cy + r + 1, max(0, cx - r):cx + r + 1]
        if box.sum() / total > t:
            return box.size / (h * w)
    return 1.0


def build_from_config(variant: str, data: TensorData, cfg: dict) -> ConvNeXtSmall:
    """:func:`sparsenb.models.convnext.build_variant` with the notebook's settings."""
    return build_variant(variant, data.input_shape, data.num_classes, dims=cfg["DIMS"], depths=cfg["DEPTHS"],
                         large_kernels=cfg["LARGE_KERNELS"], small_kernel=cfg["SMALL_KERNEL"],
                         base_kernel=cfg["BASE_KERNEL"], width=cfg["WIDTH"], layer_scale=cfg["LAYER_SCALE"])


def erf_images(data: TensorData, n: int, size: int | None = None) -> torch.Tensor:
    """The first ``n`` test images, bilinearly resized to ``size x size`` (``None``/0 = as they are).

    RepLKNet and SLaK measure the ERF on images resized far beyond the training resolution
    (1024 x 1024 for 224 x 224 ImageNet models) so that the receptive fields do not fill the image;
    the network is fully convolutional, so it runs on any size.
    """
    x = data.X_test[:n]
    if size and tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x


def _erf_summary(model: ConvNeXtSmall, images: torch.Tensor) -> dict[str, Any]:
    erf = effective_receptive_field(model, images)
    centre = erf_centre(model, images.shape[-2:])
    return {"map": erf.tolist(), "centre": list(centre),
            "ratios": {str(t): erf_area_ratio(erf, t, centre) for t in ERF_THRESHOLDS}}


def slak_run(data: TensorData, cfg: dict, variant: str, seed: int, device: str = "auto",
             progress: bool = True) -> dict[str, Any]:
    """Train one variant (``"dense7"``, ``"dense_large"``, ``"slak"``) with seed ``seed``; return a summary.

    Config keys: model (``DIMS, DEPTHS, LARGE_KERNELS, SMALL_KERNEL, BASE_KERNEL, WIDTH,
    LAYER_SCALE``), training (``EPOCHS, BATCH_SIZE, LR, WEIGHT_DECAY, AUGMENT, FLIP``), SLaK
    (``SPARSITY, SLAK_INIT, UPDATE_EVERY, PRUNE_RATE``), ``ERF_IMAGES`` (test images for the ERF) and
    ``ERF_SIZE`` (their side after resizing, see :func:`erf_images`).

    Returns ``variant, seed, test_acc, test_loss, history`` (per-epoch rows; their ``seconds``
    are training only), ``epoch_seconds`` (mean), ``params`` (:func:`parameter_counts`),
    ``density`` (of the masked weights; 1 for dense), ``macs`` (forward MACs per example, kept
    weights) and ``dense_macs`` (all weights), ``erf`` and ``erf_init`` (:func:`_erf_summary`
    after and before training), ``mask_changes`` and ``seconds``.
    """
    t0 = time.perf_counter()
    set_seed(seed)
    model = build_from_config(variant, data, cfg)
    erf_x = erf_images(data, cfg["ERF_IMAGES"], cfg["ERF_SIZE"])
    erf_init = _erf_summary(model, erf_x)["ratios"]
    method = None
    if variant == "slak":
        method = methods.build("slak", {**cfg, "seed": seed})  # SPARSITY, SLAK_INIT, UPDATE_EVERY, PRUNE_RATE
    pin = torch.cuda.is_available() and device in ("auto", "cuda")
    train_loader, test_loader = data.loaders(cfg["BATCH_SIZE"], seed=seed, pin_memory=pin)
    opt = make_optimizer(model, "adamw", lr=cfg["LR"], weight_decay=cfg["WEIGHT_DECAY"])
    sched = make_scheduler(opt, "cosine", cfg["EPOCHS"])
    augment = RandomCropFlip(padding=cfg["AUGMENT"], flip=cfg["FLIP"], seed=seed) if cfg["AUGMENT"] else None
    init_batch = (data.X_train[:cfg["BATCH_SIZE"]], data.y_train[:cfg["BATCH_SIZE"]])
    trainer = Trainer(model, method, opt, epochs=cfg["EPOCHS"], scheduler=sched, device=device,
                      progress=progress, init_data=init_batch, augment=augment)
    history = trainer.fit(train_loader)  # no per-epoch test pass: the epoch time is training only
    ev = trainer.evaluate(test_loader)
    example = data.X_test[:1].to(trainer.device)
    return {
        "variant": variant, "seed": seed, "test_acc": ev["acc"], "test_loss": ev["loss"], "history": history,
        "epoch_seconds": float(np.mean([h["seconds"] for h in history])),
        "params": parameter_counts(model),
        "density": trainer.masks.density() if trainer.masks is not None else 1.0,
        "macs": forward_macs(model, example, masked=True), "dense_macs": forward_macs(model, example, masked=False),
        "erf": _erf_summary(model, erf_x), "erf_init": erf_init,
        "mask_changes": len(method.events) if method is not None else 0,
        "seconds": time.perf_counter() - t0,
    }


# ------------------------------------------------------------------- figures
_LABELS = {"dense7": "dense 7x7", "dense_large": "dense large square", "slak": "SLaK"}


def plot_erf(results: list[dict], kernels: Sequence[int] | None = None):
    """One heatmap per variant: ``log10(1 + ERF)`` averaged over seeds, rescaled to [0, 1]."""
    import matplotlib.pyplot as plt

    variants = [v for v in _LABELS if any(r["variant"] == v for r in results)]
    fig, axes = plt.subplots(1, len(variants), figsize=(3.6 * len(variants), 3.6), squeeze=False)
    for ax, v in zip(axes[0], variants):
        rs = [r for r in results if r["variant"] == v]
        a = np.log10(1 + np.mean([np.asarray(r["erf"]["map"]) for r in rs], axis=0))
        im = ax.imshow(a / a.max(), cmap="magma", vmin=0, vmax=1)
        cy, cx = rs[0]["erf"]["centre"]
        ax.plot([cx], [cy], "c+", ms=10)
        r30 = np.mean([r["erf"]["ratios"]["0.3"] for r in rs])
        ax.set_title(f"{_LABELS[v]}\nr(30%) = {r30:.3f}", fontsize=10)
        ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="log10(1 + contribution), rescaled")
    fig.suptitle("Effective receptive field of the central output of the last stage" +
                 (f" (large kernels {list(kernels)})" if kernels else ""), fontsize=10)
    return fig


def plot_accuracy_cost(results: list[dict]):
    """Test accuracy (dots per seed, mean bar) against nonzero parameters, MACs and epoch time."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    keys = (("params", "nonzero parameters"), ("macs", "forward MACs / example (kept weights)"),
            ("epoch_seconds", "seconds / training epoch (this run)"))
    for ax, (key, label) in zip(axes, keys):
        for i, v in enumerate(v for v in _LABELS if any(r["variant"] == v for r in results)):
            rs = [r for r in results if r["variant"] == v]
            xs = [r["params"]["nonzero_params"] if key == "params" else r[key] for r in rs]
            ys = [100 * r["test_acc"] for r in rs]
            ax.scatter(xs, ys, color=f"C{i}", alpha=0.6, label=_LABELS[v])
            ax.errorbar([np.mean(xs)], [np.mean(ys)], yerr=[np.std(ys)], fmt="D", color=f"C{i}", ms=7)
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def format_acc(metrics: dict, variant: str) -> str:
    """``"mean ± std %"`` of ``<variant>/test_acc_mean`` / ``_std`` in recorded metrics, ``"—"`` if absent."""
    if f"{variant}/test_acc_mean" not in metrics:
        return "—"
    return f"{100 * metrics[f'{variant}/test_acc_mean']:.2f} ± {100 * metrics[f'{variant}/test_acc_std']:.2f} %"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (0 for one value)."""
    v = [float(x) for x in values]
    if not v:
        return math.nan, math.nan
    return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
