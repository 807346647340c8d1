"""Pruning at initialisation compared with random pruning: the criteria, layer collapse, figures.

Notebook ``02_pruning_at_init`` prunes a freshly initialised network once with
a criterion, trains it with the masks fixed, and compares the criteria with
random masks of the same global sparsity:

* random, uniform per layer or ERK per layer (Evci et al. 2020) -- the
  baselines of Frankle, Dziugaite, Roy, Carbin (2021), "Pruning Neural
  Networks at Initialization: Why are We Missing the Mark?", ICLR, and Su et
  al. (2020), "Sanity-Checking Pruning Methods: Random Tickets can Win the
  Jackpot", NeurIPS;
* global magnitude ``|theta|``; SNIP ``|g * theta|`` (Lee et al. 2019);
  GraSP ``theta * (H g)`` (Wang et al. 2020); SynFlow
  ``|theta * dR/dtheta|``, ``R = 1^T (prod_l |W_l|) 1``, over 100 rounds
  (Tanaka et al. 2020). The equations live in :mod:`sparsenb.core.criteria`.

**Layer collapse** (Tanaka et al. 2020): a global criterion can prune every
weight of a layer, or leave no path from the input to the output, and the
network can then learn nothing. Here a criterion *collapses* at a sparsity if

1. :func:`sparsenb.core.pruning.layer_collapse` reports ``connected=False`` for the
   masks of at least one seed (no output unit reachable from the input), or
2. the trained network's test accuracy, averaged over seeds, is at most
   ``acc_threshold`` (default 0.2 = twice chance on 10 classes: a network with a
   single live output unit separates at most two classes).

The *highest sparsity before collapse* of a criterion is the largest sparsity
``s`` of the grid such that it collapses at no grid sparsity ``<= s``
(:func:`max_sparsity_before_collapse`).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from .spec import settings_class

__all__ = ["Settings", "OURS", "CRITERIA", "collapse_table", "max_sparsity_before_collapse", "plot_accuracy_vs_sparsity",
           "plot_collapse_map", "plot_layer_density"]

Settings = settings_class("02_pruning_at_init")  # typed, frozen; from specs/02_pruning_at_init.json
OURS = {  # the README gallery's number of each claim id in the spec, from results.json's metrics m
    "synflow_latest_collapse": lambda m: "; ".join(f"{name}: " + ", ".join(f"{c} {m.get(f'{key}/{c}/max_sparsity_before_collapse')}" for c in ("synflow", "snip", "grasp", "magnitude", "random_erk")) for key, name in (("lenet300", "LeNet-300-100"), ("lenet5", "LeNet-5"))),
    "criteria_near_random_at_0.9": lambda m: " / ".join(f"{100 * m[k]:+.2f} points" if k in m else "—" for k in ("lenet300/gap_best_criterion_vs_random_erk_at_0.9", "lenet5/gap_best_criterion_vs_random_erk_at_0.9")) + " (LeNet-300-100 / LeNet-5)",
}

CRITERIA: dict[str, tuple[str, dict[str, Any]]] = {
    "random_uniform": ("static", {"distribution": "uniform"}),
    "random_erk": ("static", {"distribution": "erk"}),
    "magnitude": ("magnitude_init", {}),
    "snip": ("snip", {}),
    "grasp": ("grasp", {}),
    "synflow": ("synflow", {}),
}
"""label -> (registered method, options for :func:`sparsenb.experiments.common.train_run`)."""


def collapse_table(sweep: Sequence[Mapping], summary: Sequence[Mapping] = (),
                   acc_threshold: float = 0.2) -> list[dict[str, Any]]:
    """One row per (method, sparsity): is the criterion collapsed there (see the module doc)?

    Args:
        sweep: :func:`sparsenb.experiments.common.prune_run` results (``method``,
            ``sparsity``, ``seed``, ``collapse``), any number of seeds.
        summary: optional :func:`sparsenb.experiments.common.summarize` rows (``method``,
            ``sparsity``, ``mean`` test accuracy) of the trained runs.
        acc_threshold: a trained mean accuracy ``<=`` this counts as collapsed.

    Returns:
        Rows ``{"method", "sparsity", "seeds", "connected_seeds", "acc" (mean or
        None if not trained), "collapsed" (bool), "reason" ("disconnected",
        "accuracy" or "")}``, sorted by method (first-seen order) then sparsity.
    """
    acc = {(r["method"], r["sparsity"]): r["mean"] for r in summary}
    groups: dict[tuple, list[bool]] = {}
    for r in sweep:
        groups.setdefault((r["method"], r["sparsity"]), []).append(bool(r["collapse"]["connected"]))
    order = list(dict.fromkeys(m for m, _ in groups))
    rows = []
    for method in order:
        for s in sorted(s for m, s in groups if m == method):
            conn = groups[(method, s)]
            a = acc.get((method, s))
            reason = "disconnected" if not all(conn) else "accuracy" if a is not None and a <= acc_threshold else ""
            rows.append({"method": method, "sparsity": s, "seeds": len(conn), "connected_seeds": sum(conn),
                         "acc": a, "collapsed": bool(reason), "reason": reason})
    return rows


def max_sparsity_before_collapse(table: Sequence[Mapping]) -> dict[str, float | None]:
    """Per method, the largest grid sparsity with no collapse at it or at any lower grid sparsity.

    ``table``: rows of :func:`collapse_table`. ``None`` when the method already
    collapses at its lowest sparsity.
    """
    out: dict[str, float | None] = {}
    for method in dict.fromkeys(r["method"] for r in table):
        best = None
        for r in sorted((r for r in table if r["method"] == method), key=lambda r: r["sparsity"]):
            if r["collapsed"]:
                break
            best = r["sparsity"]
        out[method] = best
    return out


def _density_axis(ax, sparsities: Sequence[float]) -> None:
    """x = density (1 - sparsity) on a log scale, decreasing to the right, ticks labelled as sparsity."""
    ax.set_xscale("log")
    ss = sorted(set(sparsities))
    ax.set_xticks([1 - s for s in ss], [f"{s:g}" for s in ss], rotation=45, fontsize=8)
    ax.minorticks_off()
    ax.set_xlim(max(1 - s for s in ss) * 1.4, min(1 - s for s in ss) / 1.4)


def plot_accuracy_vs_sparsity(panels: Mapping[str, tuple[Sequence[Mapping], Mapping | None]],
                              chance: float | None = 0.1) -> plt.Figure:
    """Test accuracy (%) ± std over seeds vs sparsity, one panel per model, one line per criterion.

    ``panels``: ``{title: (summary rows with method/sparsity/mean/std, dense row or None)}``.
    The x axis is logarithmic in density (1 - sparsity), so 0.99 and 0.999 are
    as far apart as 0.9 and 0.99; the dense network is a dashed band, labelled
    with its accuracy in each panel. One legend for all panels, below them.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.6), squeeze=False)
    for ax, (title, (rows, dense)) in zip(axes[0], panels.items()):
        for method in dict.fromkeys(r["method"] for r in rows):
            rs = sorted((r for r in rows if r["method"] == method), key=lambda r: r["sparsity"])
            ax.errorbar([1 - r["sparsity"] for r in rs], [100 * r["mean"] for r in rs],
                        yerr=[100 * r["std"] for r in rs], marker="o", ms=4, capsize=3, label=method,
                        ls="--" if method.startswith("random") else "-")
        _density_axis(ax, [r["sparsity"] for r in rows])
        if dense is not None:
            m, s = 100 * dense["mean"], 100 * dense["std"]
            ax.axhline(m, color="k", ls="--", lw=1, label="dense (± std)")
            ax.axhspan(m - s, m + s, color="k", alpha=0.1)
            ax.text(ax.get_xlim()[1], m - 1.5, f"dense {m:.1f}% ", ha="right", va="top", fontsize=8)
        if chance is not None:
            ax.axhline(100 * chance, color="grey", ls=":", lw=1, label="chance")
        ax.set(xlabel="sparsity (log scale of density)", ylabel="test accuracy (%)", title=title, ylim=(0, 100))
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 8), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def plot_collapse_map(tables: Mapping[str, Sequence[Mapping]]) -> plt.Figure:
    """Criterion x sparsity grid per model: trained and not collapsed (green), connected but not
    trained (light green: only connectivity is known there), collapsed because the trained accuracy
    is at chance (orange), collapsed because disconnected (red). Cells show the trained mean
    accuracy (%) where the sparsity was trained; a black frame marks each criterion's highest
    sparsity before collapse."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch, Rectangle

    fig, axes = plt.subplots(len(tables), 1, figsize=(11, 2.3 + 0.45 * 6 * len(tables)), squeeze=False)
    cmap = ListedColormap(["#41ab5d", "#c7e9c0", "#fdb462", "#ef3b2c"])
    for ax, (title, table) in zip(axes[:, 0], tables.items()):
        methods = list(dict.fromkeys(r["method"] for r in table))
        ss = sorted({r["sparsity"] for r in table})
        grid = np.full((len(methods), len(ss)), np.nan)
        cell = {(r["method"], r["sparsity"]): r for r in table}
        for i, m in enumerate(methods):
            for j, s in enumerate(ss):
                r = cell.get((m, s))
                if r is None:
                    continue
                grid[i, j] = {"": 0 if r["acc"] is not None else 1, "accuracy": 2, "disconnected": 3}[r["reason"]]
                label = f"{100 * r['acc']:.0f}" if r["acc"] is not None else ""
                if r["connected_seeds"] < r["seeds"] and r["connected_seeds"] > 0:
                    label += f"\n{r['connected_seeds']}/{r['seeds']} conn."
                ax.text(j, i, label, ha="center", va="center", fontsize=7)
        ax.imshow(grid, cmap=cmap, vmin=0, vmax=3, aspect="auto")
        best = max_sparsity_before_collapse(table)
        for i, m in enumerate(methods):
            if best[m] is not None:
                ax.add_patch(Rectangle((ss.index(best[m]) - 0.5, i - 0.5), 1, 1, fill=False, lw=2, ec="k"))
        ax.set_xticks(range(len(ss)), [f"{s:g}" for s in ss], fontsize=8)
        ax.set_yticks(range(len(methods)), methods, fontsize=8)
        ax.set(title=title, xlabel="sparsity")
    axes[0, 0].legend(handles=[Patch(color=cmap(0), label="trained, not collapsed"),
                               Patch(color=cmap(1), label="connected (not trained)"),
                               Patch(color=cmap(2), label="trained accuracy <= 20%"),
                               Patch(color=cmap(3), label="disconnected (layer_collapse)"),
                               Patch(fill=False, ec="k", lw=2, label="highest sparsity\nbefore collapse")],
                      title="numbers: trained\nmean accuracy (%)", title_fontsize=7,
                      fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def plot_layer_density(panels: Mapping[str, Sequence[Mapping]], title: str = "") -> plt.Figure:
    """Per-layer density (log scale) that each criterion chose, one panel per model.

    ``panels``: ``{model title: [prune_run / train_run results at one sparsity, one per criterion]}``
    (each with ``method`` and ``layers`` = ``{layer: {"nnz", "numel", "density"}}``). An empty
    layer is drawn at the bottom of the axis and marked "0".
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 3.8), squeeze=False)
    for ax, (name, rows) in zip(axes[0], panels.items()):
        layers = list(rows[0]["layers"])
        dens = [d["density"] for r in rows for d in r["layers"].values() if d["density"] > 0]
        floor = min(dens) / 3 if dens else 1e-4
        width = 0.8 / len(rows)
        for i, r in enumerate(rows):
            x = np.arange(len(layers)) + i * width
            y = [max(r["layers"][n]["density"], floor) for n in layers]
            ax.bar(x, y, width, label=r["method"])
            for xi, n in zip(x, layers):
                if r["layers"][n]["nnz"] == 0:
                    ax.text(xi, floor, "0", ha="center", va="bottom", fontsize=7, color="red")
        ax.set_yscale("log")
        ax.set_ylim(floor / 1.5, 1.5)
        ax.set_xticks(np.arange(len(layers)) + width * (len(rows) - 1) / 2,
                      [f"{n}\n{rows[0]['layers'][n]['numel']:,} weights" for n in layers], fontsize=7)
        ax.set(ylabel="layer density (log)", title=f"{name}, {title}" if title else name)
        ax.grid(alpha=0.3, axis="y")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig
