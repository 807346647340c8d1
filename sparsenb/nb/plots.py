"""Shared figures. Every function returns a matplotlib ``Figure`` (saved with ``Run.figure``)."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from ..core.distributions import layer_nnz

__all__ = ["accuracy_vs_sparsity", "layer_densities", "input_connectivity", "training_curves"]


def accuracy_vs_sparsity(rows: Sequence[Mapping], dense: Mapping | None = None, title: str = "") -> plt.Figure:
    """Mean test accuracy (%) ± std over seeds vs sparsity, one line per method.

    ``rows``: dicts with ``method``, ``sparsity``, ``mean``, ``std`` (accuracy in [0, 1]).
    ``dense``: ``{"mean", "std"}`` drawn as a horizontal band.
    """
    fig, ax = plt.subplots(figsize=(6, 4))
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = sorted((r for r in rows if r["method"] == method), key=lambda r: r["sparsity"])
        x = [100 * r["sparsity"] for r in rs]
        ax.errorbar(x, [100 * r["mean"] for r in rs], yerr=[100 * r["std"] for r in rs],
                    marker="o", capsize=3, label=method)
    if dense is not None:
        m, s = 100 * dense["mean"], 100 * dense["std"]
        ax.axhline(m, color="k", ls="--", lw=1, label="dense")
        ax.axhspan(m - s, m + s, color="k", alpha=0.1)
    ax.set(xlabel="sparsity (%)", ylabel="test accuracy (%)", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def layer_densities(shapes: Mapping[str, Sequence[int]], density: float,
                    kinds: Sequence[str] = ("uniform", "er", "erk")) -> plt.Figure:
    """Grouped bars: per-layer density of each distribution at a global ``density``."""
    names = list(shapes)
    numel = {n: int(np.prod(shapes[n])) for n in names}
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(names), 3.5))
    width = 0.8 / len(kinds)
    for i, kind in enumerate(kinds):
        nnz = layer_nnz(shapes, density, kind)
        ax.bar(np.arange(len(names)) + i * width, [nnz[n] / numel[n] for n in names], width, label=kind)
    ax.set_xticks(np.arange(len(names)) + width * (len(kinds) - 1) / 2,
                  [f"{n}\n{'x'.join(map(str, shapes[n]))}" for n in names], fontsize=8)
    ax.set(ylabel="layer density", title=f"per-layer density at global density {density:g}")
    ax.legend()
    fig.tight_layout()
    return fig


def input_connectivity(degree: Mapping[str, Sequence[float]], image_shape: Sequence[int] = (28, 28),
                       label: str = "connections kept per input pixel") -> plt.Figure:
    """One image per entry: how many connections each input pixel keeps in the first layer.

    ``degree``: label -> one count per input (``prod(image_shape)`` values). All panels share one
    colour scale (0 to the largest count of any panel) and one colour bar labelled ``label``, so
    the same colour means the same count in every panel.
    """
    from matplotlib.colors import Normalize

    images = {k: np.asarray(d, dtype=float).reshape(image_shape) for k, d in degree.items()}
    norm = Normalize(vmin=0.0, vmax=max(1.0, *(float(im.max()) for im in images.values())))
    fig, axes = plt.subplots(1, len(images), figsize=(3 * len(images) + 1.0, 3.2), squeeze=False,
                             layout="constrained")
    for ax, (title, im) in zip(axes[0], images.items()):
        shown = ax.imshow(im, cmap="viridis", norm=norm)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.colorbar(shown, ax=axes[0].tolist(), shrink=0.85, label=label)
    return fig


def training_curves(histories: Mapping[str, Sequence[Mapping]], key: str = "test_acc",
                    title: str = "") -> plt.Figure:
    """``key`` (e.g. test accuracy) per epoch for each labelled history."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, h in histories.items():
        ax.plot([r["epoch"] for r in h], [r[key] for r in h], label=label)
    ax.set(xlabel="epoch", ylabel=key.replace("_", " "), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
