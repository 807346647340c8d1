"""Random search in the node space of an over-parameterized MLP, as a sparse-architecture baseline.

Farahani (2024), "Random Search as a Baseline for Sparse Neural Network
Architecture Search", arXiv:2403.08265.

The search space (node configurations of an initialised parent MLP, weight masks as outer
products of kept-node vectors) and the search itself live in the library,
:mod:`sparsenb.methods.random_search`; this module runs the notebook's comparison.

Random search (the paper's baseline). Draw ``K`` configurations uniformly at
random on the same initialised parent, score each *untrained* subnetwork by its
loss on held-out validation data, and keep the best::

    k* = argmin_k  L_val(theta_0 (.) M^(k)),      L_val = mean cross-entropy

("finding better initialized sparse sub-networks that are positioned more
advantageously in the loss landscape", the paper's abstract). The *random*
baseline is configuration ``k = 0``: one uniform draw at the same sparsity on
the same parent. Both are then trained identically (same data order) and
compared after training -- final accuracy and speed of convergence -- over
seeds, with a significance test (:func:`compare`).
"""
from __future__ import annotations

import math
import time
from typing import Any, Sequence

import torch

from ..data.registry import TensorData, split_validation  # noqa: F401  (re-exported for the notebook)
from ..core.masks import Masking
from ..methods.random_search import masked_eval, node_masks, random_search
from ..models.classic import MLP
from ..train.trainer import set_seed
from .common import train_fixed_masks
from .spec import acc_text, settings_class

__all__ = ["Settings", "OURS", "split_validation", "search_run", "epochs_to_fraction", "compare",
           "plot_final_accuracy", "plot_learning_curves", "plot_init_loss_vs_final"]

Settings = settings_class("04_random_search")  # typed, frozen; from specs/04_random_search.json
OURS = {  # the README gallery's number of each claim id in the spec, from results.json's metrics m
    "search_not_more_accurate": lambda m: (f"search {acc_text(m, 'search/0.75')} vs random {acc_text(m, 'random/0.75')} " f"(one-sided Welch p = {m.get('0.75/acc_welch_p_greater', float('nan')):.2f})"),
    "search_not_faster": lambda m: (f"epochs to 99% of final acc., 75% removed: search " f"{m.get('search/0.75/epochs_to_conv_mean', float('nan')):.1f} vs random " f"{m.get('random/0.75/epochs_to_conv_mean', float('nan')):.1f}"),
}







def search_run(train: TensorData, X_val: torch.Tensor, y_val: torch.Tensor, arm: str, sparsity: float,
               seed: int, hidden: Sequence[int], candidates: int, epochs: int, lr: float, batch_size: int,
               momentum: float = 0.9, weight_decay: float = 0.0, schedule: str = "cosine",
               device: str = "auto", progress: bool = False) -> dict[str, Any]:
    """Initialise the parent MLP from ``seed``, pick a subnetwork and train it.

    ``arm``: ``"dense"`` (the parent itself), ``"random"`` (configuration 0 of the search:
    one uniform draw) or ``"search"`` (the best of ``candidates`` by validation loss at init).
    The parent's initial weights, the candidate draws and the data order depend on ``seed`` only,
    so ``random`` and ``search`` of one seed share the parent and differ in the chosen nodes alone.

    Returns ``arm``, ``sparsity``, ``seed``, ``test_acc``, ``test_loss``, ``train_loss`` (final
    epoch), ``history``, ``density`` (kept weights / parent weights), ``nnz``, ``init_val_loss``
    and ``init_val_acc`` of the chosen subnetwork, ``candidate_losses`` (all ``K``, search arms),
    ``chosen`` (index) and ``seconds``.
    """
    if arm not in ("dense", "random", "search"):
        raise ValueError(f"arm must be 'dense', 'random' or 'search', got {arm!r}")
    set_seed(seed)
    t0 = time.perf_counter()
    model = MLP(math.prod(train.input_shape), tuple(hidden), train.num_classes)
    masks = Masking(model)
    found: dict[str, Any] = {"candidate_losses": None, "chosen": None}
    if arm == "dense":
        ev = masked_eval(model, {}, X_val, y_val)
    else:
        gen = torch.Generator().manual_seed(10_000 + seed)
        res = random_search(model, sparsity, X_val, y_val, candidates, gen)
        chosen = res["best"] if arm == "search" else 0
        masks.set_masks(node_masks(model, res["configs"][chosen]))
        ev = {"loss": res["losses"][chosen], "acc": res["accs"][chosen]}
        found = {"candidate_losses": res["losses"], "chosen": chosen}
    history = train_fixed_masks(model, masks, train, seed, epochs, lr, batch_size, momentum, weight_decay, schedule,
                                device, progress)
    last = history[-1]
    return {"arm": arm, "sparsity": sparsity, "seed": seed, "test_acc": last["test_acc"],
            "test_loss": last["test_loss"], "train_loss": last["train_loss"], "history": history,
            "density": masks.density(), "nnz": masks.nnz(), "init_val_loss": ev["loss"],
            "init_val_acc": ev["acc"], **found, "seconds": time.perf_counter() - t0}


def epochs_to_fraction(history: Sequence[dict], fraction: float, key: str = "test_acc") -> int:
    """First epoch (1-based) at which ``history[e][key] >= fraction * history[-1][key]``."""
    target = fraction * history[-1][key]
    for row in history:
        if row[key] >= target:
            return int(row["epoch"])
    return int(history[-1]["epoch"])  # unreachable when fraction <= 1


def compare(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Is ``a`` larger than ``b``? Welch's t-test and the Mann-Whitney U test.

    Returns ``mean_a``, ``mean_b``, ``diff`` (mean_a - mean_b), ``welch_t``, ``welch_p``
    (two-sided), ``welch_p_greater`` (one-sided, H1: mean a > mean b) and ``mwu_p_greater``
    (one-sided Mann-Whitney U, H1: a tends to be larger). Identical samples give p = 1.
    """
    from scipy import stats

    a, b = [float(x) for x in a], [float(x) for x in b]
    if len(a) < 2 or len(b) < 2:
        raise ValueError("compare needs at least two values per group")
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    out = {"mean_a": mean_a, "mean_b": mean_b, "diff": mean_a - mean_b,
           "welch_t": 0.0, "welch_p": 1.0, "welch_p_greater": 1.0, "mwu_p_greater": 1.0}
    if len(set(a + b)) == 1:
        return out
    two = stats.ttest_ind(a, b, equal_var=False)
    one = stats.ttest_ind(a, b, equal_var=False, alternative="greater")
    if not math.isnan(two.statistic):  # nan when both groups have zero variance
        out.update(welch_t=float(two.statistic), welch_p=float(two.pvalue), welch_p_greater=float(one.pvalue))
    out["mwu_p_greater"] = float(stats.mannwhitneyu(a, b, alternative="greater").pvalue)
    return out


# ---------------------------------------------------------------------------------------- figures
ARM_COLORS = {"random": "C0", "search": "C1", "dense": "k"}


def plot_final_accuracy(results: Sequence[dict], title: str = ""):
    """Final test accuracy per seed (dots) and mean ± std, random vs search at each node sparsity;
    the dense parent as a band."""
    import matplotlib.pyplot as plt
    import numpy as np

    sparsities = sorted({r["sparsity"] for r in results if r["arm"] != "dense"})
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for k, arm in enumerate(("random", "search")):
        for i, s in enumerate(sparsities):
            acc = [100 * r["test_acc"] for r in results if r["arm"] == arm and r["sparsity"] == s]
            x = i + (k - 0.5) * 0.3
            ax.scatter(x + np.linspace(-0.05, 0.05, len(acc)), acc, s=12, color=ARM_COLORS[arm], alpha=0.6)
            ax.errorbar(x + 0.1, np.mean(acc), yerr=np.std(acc), marker="D", color=ARM_COLORS[arm], capsize=3,
                        label=f"{arm} (best of K)" if arm == "search" and i == 0 else (arm if i == 0 else None))
    dense = [100 * r["test_acc"] for r in results if r["arm"] == "dense"]
    if dense:
        ax.axhline(np.mean(dense), color="k", ls="--", lw=1, label="dense parent")
        ax.axhspan(np.mean(dense) - np.std(dense), np.mean(dense) + np.std(dense), color="k", alpha=0.08)
    ax.set_xticks(range(len(sparsities)), [f"{100 * s:g}% nodes removed" for s in sparsities])
    ax.set(ylabel="final test accuracy (%)", title=title)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_learning_curves(results: Sequence[dict], key: str = "test_acc"):
    """Mean ``key`` per epoch over seeds (± std band), random vs search, one panel per node sparsity."""
    import matplotlib.pyplot as plt
    import numpy as np

    sparsities = sorted({r["sparsity"] for r in results if r["arm"] != "dense"})
    fig, axes = plt.subplots(1, len(sparsities), figsize=(4 * len(sparsities), 3.4), sharey=True, squeeze=False)
    for ax, s in zip(axes[0], sparsities):
        for arm in ("random", "search"):
            curves = np.array([[100 * h[key] for h in r["history"]] for r in results
                               if r["arm"] == arm and r["sparsity"] == s])
            ep = np.arange(1, curves.shape[1] + 1)
            m, sd = curves.mean(0), curves.std(0)
            ax.plot(ep, m, color=ARM_COLORS[arm], label=arm)
            ax.fill_between(ep, m - sd, m + sd, color=ARM_COLORS[arm], alpha=0.15)
        ax.set(xlabel="epoch", title=f"{100 * s:g}% of hidden nodes removed")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    axes[0][0].legend(fontsize=8)
    lo = min(np.percentile([100 * h[key] for r in results for h in r["history"]], 5), 100)
    axes[0][0].set_ylim(lo, None)  # the 5th percentile: the first epoch(s) may fall below the axis
    fig.text(0.5, -0.02, "y-axis starts at the 5th percentile of all per-epoch accuracies", ha="center", fontsize=7)
    fig.tight_layout()
    return fig


def plot_init_loss_vs_final(results: Sequence[dict]):
    """Left: the K candidates' validation losses at initialisation (seed 0, each sparsity), with the
    random (k = 0) and searched (argmin) picks. Right: init validation loss vs final test accuracy of
    every trained subnetwork -- does a lower loss at initialisation predict a better trained network?"""
    import matplotlib.pyplot as plt

    sparse = [r for r in results if r["arm"] != "dense"]
    sparsities = sorted({r["sparsity"] for r in sparse})
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for i, s in enumerate(sparsities):
        r0 = next(r for r in sparse if r["sparsity"] == s and r["arm"] == "search" and r["seed"] == min(
            x["seed"] for x in sparse))
        losses = r0["candidate_losses"]
        axes[0].hist(losses, bins=20, alpha=0.45, color=f"C{i + 2}", label=f"{100 * s:g}% removed")
        axes[0].axvline(losses[0], color=f"C{i + 2}", ls=":", lw=1.5)
        axes[0].axvline(min(losses), color=f"C{i + 2}", ls="-", lw=1.5)
    axes[0].set(xlabel="validation loss at initialisation", ylabel="candidates",
                title="K candidates (seed 0): dotted = random pick, solid = search pick")
    axes[0].legend(fontsize=8)
    for i, s in enumerate(sparsities):
        for arm, marker in (("random", "o"), ("search", "^")):
            rs = [r for r in sparse if r["sparsity"] == s and r["arm"] == arm]
            axes[1].scatter([r["init_val_loss"] for r in rs], [100 * r["test_acc"] for r in rs], marker=marker,
                            color=f"C{i + 2}", s=18, label=f"{arm}, {100 * s:g}% removed")
    axes[1].set(xlabel="validation loss at initialisation", ylabel="final test accuracy (%)",
                title="trained subnetworks (o random, ^ search)")
    axes[1].grid(alpha=0.3)
    axes[1].legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    fig.tight_layout()
    return fig
