"""How the pruning fraction changes what a two-layer network learns: signal or noise.

Yang, Liang, Guo, Wu, Wang (2023), "Theoretical Characterization of How Neural
Network Pruning Affects its Generalization", ICLR 2023, arXiv:2301.00335
(journal version: "Random Pruning Over-parameterized Neural Networks Can Improve
Generalization: A Training Dynamics Analysis", JMLR 26(84), 2025). The data
model and the network are those of Cao, Chen, Belkin, Gu (2022), "Benign
Overfitting in Two-layer Convolutional Neural Networks", NeurIPS, with a random
pruning mask on the first layer drawn at initialisation.

Data (one example, two patches of dimension ``d``)::

    y ~ Uniform{-1, +1},   x = (x^(1), x^(2)) = (y * mu, xi),
    mu = ||mu|| * e_1                              (the signal sits on input coordinate 1)
    xi ~ N(0, sigma_p^2 * (I - e_1 e_1^T))         (Gaussian noise orthogonal to the signal)

Network (2m neurons, ``m`` per class ``j`` in {+1, -1}; the second layer is fixed)::

    f(W, x)    = F_{+1}(W_{+1}, x) - F_{-1}(W_{-1}, x)
    F_j(W_j, x) = (1/m) sum_{r=1..m} sum_{k=1,2} sigma(<w_{j,r} (.) M_{j,r}, x^(k)>)
    sigma(z)   = max(0, z)^q                        (polynomial ReLU, q > 2 in Cao et al.)

``M_{j,r}`` in {0,1}^d is the pruning mask of neuron (j, r): it keeps exactly
``round((1 - p) d)`` input coordinates chosen uniformly at random (``p`` = the
pruning fraction), so a neuron sees the signal only if it keeps coordinate 1
(probability 1 - p) and sees noise of squared norm ~ (1 - p) sigma_p^2 d.

Training: ``w_{j,r}^(0) ~ N(0, sigma_0^2 I)``, full-batch gradient descent with
step size ``eta`` (the :class:`~sparsenb.train.trainer.Trainer`: one epoch of ``steps`` full-batch
steps, ``on_step`` logging at log-spaced steps) on the logistic loss::

    L_S(W) = (1/n) sum_i log(1 + exp(-y_i f(W, x_i)))

with the mask attached to the optimizer (pruned weights stay exactly zero).

Signal-noise decomposition tracked during training (Cao et al. 2022)::

    signal learning     gamma_{j,r}   = <w_{j,r} (.) M_{j,r}, mu>
    noise memorization  rho_{j,r,i}   = <w_{j,r} (.) M_{j,r}, xi_i>

The paper's claims: below a threshold on ``p``, gradient descent drives the
training loss to zero and the test error is small -- and the bound improves as
``p`` grows (pruning removes noise from each neuron while neurons that keep the
signal coordinate keep all of it); at a large ``p``, the training loss still
goes to zero (the network memorizes noise) but the test error is no better than
random guessing (almost no neuron keeps the signal).

:func:`mlp_prune_run` is the real-data check: an MLP whose hidden layer is
randomly pruned at initialisation with fraction ``p`` and then trained.
"""
from __future__ import annotations

import math
import time
from typing import Any, Mapping, Sequence

import torch
from torch.nn import functional as F

from ..data.registry import TensorData
from ..core.masks import Masking
from ..models.classic import MLP
from ..models.patchnet import PatchData, PatchNet, make_patch_data, neuron_masks, signal_noise
from ..core import seeding
from ..train.trainer import Trainer, set_seed
from .common import summarize, train_fixed_masks
from .spec import settings_class

__all__ = ["Settings", "OURS", "log_steps", "train_gd",
           "mlp_prune_run", "summarize_sweep", "plot_sweep", "plot_dynamics", "plot_mlp_sweep", "SWEEP_KEYS", "claims"]

Settings = settings_class("05_pruning_fraction")  # typed, frozen; from specs/05_pruning_fraction.json
OURS = {  # the README gallery's number of each claim id in the spec, from results.json's metrics m
    "low_error_below_threshold": lambda m: (f"test error {100 * m.get('p0.0/test_err_mean', float('nan')):.1f} % at p = 0 -> " f"{100 * m.get('best_p_test_err_mean', float('nan')):.1f} % at p = " f"{m.get('best_p', float('nan')):g}"),
    "chance_error_at_large_p": lambda m: (f"p = {m.get('p_max', float('nan')):g}: train loss " f"{m.get('p_max_train_loss_mean', float('nan')):.1e}, test error " f"{100 * m.get('p_max_test_err_mean', float('nan')):.1f} %"),
}







@torch.no_grad()
def _error(net: PatchNet, data: PatchData) -> float:
    return float((data.y * net(data.X) <= 0).float().mean())


def log_steps(steps: int, points: int) -> set[int]:
    """Step 0, ``steps`` and about ``points`` log-spaced steps in between (the dynamics are fast early)."""
    if steps < 0 or points < 1:
        raise ValueError(f"need steps >= 0 and points >= 1, got {steps}, {points}")
    grid = {0, steps}
    if steps > 0:
        grid |= {round(steps ** (i / points)) for i in range(points + 1)}
    return grid


def train_gd(p: float, seed: int, d: int, n: int, m: int, mu_norm: float, sigma_p: float, sigma_0: float,
             q: float, eta: float, steps: int, n_test: int = 2000, log_points: int = 40) -> dict[str, Any]:
    """Draw data, a network and a pruning mask (all from ``seed``); run full-batch GD; return a summary.

    Returns ``p``, ``seed``, final ``train_loss``, ``train_err``, ``test_err``, the signal/noise
    quantities of :func:`signal_noise`, ``density`` (kept fraction of first-layer weights),
    ``signal_neurons`` (neurons whose mask keeps the signal coordinate, out of 2m),
    ``history`` (rows at step 0 and ~``log_points`` log-spaced steps up to ``steps``) and ``seconds``.
    """
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    train = make_patch_data(n, d, mu_norm, sigma_p, gen)
    test = make_patch_data(n_test, d, mu_norm, sigma_p, gen)
    net = PatchNet(d, m, q, sigma_0, gen)
    masks = Masking(net, names=["weight"])
    masks.update("weight", neuron_masks(d, m, p, gen))
    opt = torch.optim.SGD(net.parameters(), lr=eta)  # plain full-batch gradient descent
    masks.attach(opt)
    history: list[dict] = []
    log_at = log_steps(steps, log_points)

    def loss_at(step: int) -> torch.Tensor:
        """The logistic loss L_S(W) on the training set; raises once it is not finite."""
        loss = F.softplus(-train.y * net(train.X)).mean()
        if not math.isfinite(float(loss.detach())):
            raise FloatingPointError(f"loss became {float(loss.detach())} at step {step} (p={p}, eta={eta}): lower eta")
        return loss

    @torch.no_grad()
    def log(step: int) -> None:  # the weights W^(step): step updates done
        history.append({"step": step, "train_loss": float(loss_at(step)), "train_err": _error(net, train),
                        "test_err": _error(net, test), **signal_noise(net, train)})

    log(0)
    if steps > 0:  # one epoch of `steps` full-batch steps; on_step logs W^(step+1) at the chosen steps
        trainer = Trainer(net, None, opt, epochs=1, device="cpu", amp=False, progress=False, batch_bar=False,
                          batch_fn=lambda tr, _: (loss_at(tr.step), None, 1),
                          on_step=lambda tr, step: log(step + 1) if step + 1 in log_at else None)
        trainer.fit([None] * steps)
    last = history[-1]
    return {"p": p, "seed": seed, **{k: v for k, v in last.items() if k != "step"},
            "density": masks.density(), "signal_neurons": int(masks["weight"][..., 0].sum()),
            "history": history, "seconds": time.perf_counter() - t0}


def mlp_prune_run(data: TensorData, p: float, seed: int, hidden: int, epochs: int, lr: float,
                  batch_size: int, momentum: float = 0.9, weight_decay: float = 0.0, schedule: str = "cosine",
                  device: str = "auto", progress: bool = False) -> dict[str, Any]:
    """One-hidden-layer MLP ``in -> hidden -> classes``; the hidden layer keeps exactly
    ``round((1 - p) * numel)`` random weights (pruned at initialisation, fixed), the output
    layer stays dense, as the theory's fixed second layer is not pruned. SGD with momentum.

    Returns ``p``, ``seed``, ``test_acc``, ``test_loss``, ``train_loss``, ``train_acc`` (final
    epoch), ``density`` (of the hidden layer), ``history`` and ``seconds``.
    """
    set_seed(seed)
    t0 = time.perf_counter()
    in_features = math.prod(data.input_shape)
    model = MLP(in_features, (hidden,), data.num_classes)
    masks = Masking(model, names=["1.weight"])
    gen = seeding.generator(seed, "mask")  # not torch.Generator().manual_seed(seed): that replays the init
    masks.set_random({"1.weight": round((1.0 - p) * masks["1.weight"].numel())}, generator=gen)
    history = train_fixed_masks(model, masks, data, seed, epochs, lr, batch_size, momentum, weight_decay, schedule,
                                device, progress)
    last = history[-1]
    return {"p": p, "seed": seed, "test_acc": last["test_acc"], "test_loss": last["test_loss"],
            "train_loss": last["train_loss"], "train_acc": last["train_acc"], "density": masks.density(),
            "history": history, "seconds": time.perf_counter() - t0}


def summarize_sweep(rows: Sequence[Mapping], keys: Sequence[str]) -> list[dict]:
    """Per pruning fraction (ascending): ``{"p", "n", "<key>_mean", "<key>_std", "<key>_max"}`` over seeds
    (sample std; 0 for one seed): :func:`sparsenb.experiments.common.summarize` by ``p``."""
    ordered = sorted(({**r, "p": float(r["p"])} for r in rows), key=lambda r: r["p"])
    return summarize(ordered, ("p",), {key: ("mean", "std", "max") for key in keys})


# ---------------------------------------------------------------------------------------- figures
def _by_p(rows: Sequence[Mapping], key: str) -> tuple[list[float], list[list[float]]]:
    ps = sorted({float(r["p"]) for r in rows})
    return ps, [[float(r[key]) for r in rows if float(r["p"]) == p] for p in ps]


def plot_sweep(rows: Sequence[Mapping], chance: float = 0.5, loss_tol: float | None = None, title: str = ""):
    """Left: test error vs pruning fraction (seeds as dots, mean ± std). Right: final training loss
    on a log scale (seeds as dots, losses below 1e-12 drawn at 1e-12; the line is the *largest* loss
    over seeds, the quantity a "loss goes to 0 in every run" criterion checks; ``loss_tol`` dashed).

    ``rows``: results of :func:`train_gd` (keys ``p``, ``test_err``, ``train_loss``).
    """
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ps, errs = _by_p(rows, "test_err")
    for p, v in zip(ps, errs):
        axes[0].scatter([p] * len(v), v, s=10, color="0.6", zorder=1)
    axes[0].errorbar(ps, [np.mean(v) for v in errs], yerr=[np.std(v) for v in errs], marker="o", capsize=3,
                     color="C0", zorder=2, label="mean ± std over seeds (dots: seeds)")
    axes[0].axhline(chance, color="C3", ls="--", lw=1, label="random guessing")
    axes[0].set(xlabel="pruning fraction p", ylabel="test error", ylim=(-0.02, 0.68), title="test error")
    axes[0].legend(fontsize=8, loc="upper left")
    floor = 1e-12
    ps, losses = _by_p(rows, "train_loss")
    for p, v in zip(ps, losses):
        axes[1].scatter([p] * len(v), np.maximum(v, floor), s=10, color="0.6", zorder=1)
    axes[1].plot(ps, [max(max(v), floor) for v in losses], marker="o", color="C0", zorder=2, label="max over seeds")
    if loss_tol is not None:
        axes[1].axhline(loss_tol, color="C3", ls="--", lw=1, label=f"tolerance {loss_tol:g}")
    axes[1].set(xlabel="pruning fraction p", ylabel="final training loss", yscale="log",
                title=f"final training loss (log scale, floor {floor:g}); initial loss ln 2")
    axes[1].legend(fontsize=8, loc="upper left")
    for ax in axes:
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_dynamics(histories: Mapping[str, Sequence[Mapping]]):
    """Signal learning ``max |<w, mu>|`` vs noise memorization ``mean_i max_r |<w, xi_i>|`` over GD steps,
    one panel per labelled run (e.g. a small, a moderate and a large pruning fraction)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(histories), figsize=(4 * len(histories), 3.6), sharey=True, squeeze=False)
    for ax, (label, h) in zip(axes[0], histories.items()):
        steps = [max(r["step"], 1) for r in h]
        ax.plot(steps, [r["signal_max"] for r in h], color="C0", label=r"signal  $\max_{j,r}|\langle w_{j,r},\mu\rangle|$")
        ax.plot(steps, [r["noise_max"] for r in h], color="C3", ls="--",
                label=r"noise  $\mathrm{mean}_i \max_r|\langle w_{y_i,r},\xi_i\rangle|$")
        ax2 = ax.twinx()
        ax2.plot(steps, [r["train_loss"] for r in h], color="0.5", lw=1, ls=":")
        ax.plot([], [], color="0.5", lw=1, ls=":", label="training loss (right axis)")
        ax2.set_ylim(0, 0.75)
        if ax is axes[0][-1]:
            ax2.set_ylabel("training loss (dotted)")
        else:
            ax2.set_yticklabels([])
        ax.set_xscale("log")
        ax.set(xlabel="gradient-descent step (step 0 shown at 1)", title=f"{label}; test error {h[-1]['test_err']:.2f}")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("inner product")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def plot_mlp_sweep(rows: Sequence[Mapping], title: str = ""):
    """Real-data check: test accuracy and final training loss vs the hidden layer's pruning fraction."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key, label, scale in ((axes[0], "test_acc", "test accuracy (%)", 100.0),
                                  (axes[1], "train_loss", "final training loss", 1.0)):
        ps, vals = _by_p(rows, key)
        vals = [[scale * x for x in v] for v in vals]
        for p, v in zip(ps, vals):
            ax.scatter([p] * len(v), v, s=10, color="0.6", zorder=1)
        ax.errorbar(ps, [np.mean(v) for v in vals], yerr=[np.std(v) for v in vals], marker="o", capsize=3, zorder=2)
        ax.set(xlabel="pruning fraction p of the hidden layer", ylabel=label)
        ax.grid(alpha=0.3)
    if 0.0 in ps:
        axes[0].axhline(100 * np.mean([r["test_acc"] for r in rows if float(r["p"]) == 0.0]), color="k", ls="--",
                        lw=1, label="dense (p = 0)")
        axes[0].legend(fontsize=8)
    axes[1].set_yscale("log")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------- claims
SWEEP_KEYS = ["test_err", "train_loss", "train_err", "signal_max", "noise_max", "signal_neurons"]
"""Per-run values of :func:`train_gd` that the synthetic sweep summarises (:func:`summarize_sweep`)."""


def claims(cfg: Mapping[str, Any], results: Sequence[Mapping], summary: Sequence[Mapping],
           mlp_summary: Sequence[Mapping], num_classes: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The notebook's recorded numbers and its three claims, computed from its runs.

    Args:
        cfg: the resolved settings (``P_GRID``, ``MLP_P``, ``TRAIN_LOSS_TOL``, ``LOW_ERR``, ``NEAR_CHANCE``,
            ``ALPHA``, ``D``, ``N``, ``MLP_DATASET``, ``MLP_SEEDS``).
        results: one dict per synthetic run (:func:`train_gd`: ``p``, ``test_err``, ``train_loss``,
            ``signal_neurons`` ...).
        summary: :func:`summarize_sweep` of ``results`` over :data:`SWEEP_KEYS`.
        mlp_summary: :func:`summarize_sweep` of the real-data runs over ``["test_acc", "train_loss"]``
            (must contain ``p = 0``).
        num_classes: classes of the real data (for the chance-level rule of :mod:`sparsenb.nb.claims`).

    Returns:
        ``(metrics, claims)``: ``{name: value}`` for :meth:`Run.record`, and one dict per claim with the
        keyword arguments of :meth:`Run.claim` (``text``, ``holds``, ``detail``, ``id`` and, for the
        real-data claim, ``state``/``reason``).

    Rules (fixed before running): (1) ``low_error_below_threshold`` holds if the lowest mean test error is
    at some ``p* > 0``, every run with ``p <= p*`` fits (training loss ``<= TRAIN_LOSS_TOL``), that error is
    ``<= LOW_ERR``, a one-sided Welch test says ``p = 0`` errs more than ``p*`` (``< ALPHA``) and the
    Spearman correlation of ``p`` and error on ``[0, p*]`` is negative. (2) ``chance_error_at_large_p``
    holds if at the largest ``p`` every run fits and the mean test error is ``>= NEAR_CHANCE``.
    (3) ``real_data_mild_pruning`` holds if the best ``0 < p <= 0.9`` is at least as accurate as dense and
    the largest ``p`` more than one point worse.
    """
    from scipy import stats
    from ..nb.claims import comparison

    m: dict[str, Any] = {}
    for row in summary:
        for k in SWEEP_KEYS:
            m[f"p{row['p']}/{k}_mean"] = row[f"{k}_mean"]
        m[f"p{row['p']}/test_err_std"] = row["test_err_std"]
        m[f"p{row['p']}/train_loss_max"] = row["train_loss_max"]
    for row in mlp_summary:
        for k in ("test_acc_mean", "test_acc_std", "train_loss_mean"):
            m[f"mlp/p{row['p']}/{k}"] = row[k]
    by_p = {row["p"]: row for row in summary}
    out = []

    best = min(summary, key=lambda row: row["test_err_mean"])
    p_best = best["p"]
    below = [r for r in results if r["p"] <= p_best]
    err0 = [r["test_err"] for r in results if r["p"] == 0.0]
    err_best = [r["test_err"] for r in results if r["p"] == p_best]
    welch = stats.ttest_ind(err0, err_best, equal_var=False, alternative="greater") if p_best > 0 else None
    welch_p = float(welch.pvalue) if welch is not None and math.isfinite(welch.pvalue) else 1.0
    curve = [row for row in summary if row["p"] <= p_best]
    rho = (float(stats.spearmanr([row["p"] for row in curve], [row["test_err_mean"] for row in curve]).statistic)
           if len(curve) > 2 else float("nan"))
    fits = all(r["train_loss"] <= cfg["TRAIN_LOSS_TOL"] for r in below)
    m.update({"best_p": p_best, "best_p_test_err_mean": best["test_err_mean"], "p0_vs_best_welch_p": welch_p,
              "spearman_p_vs_err_below_best": rho if math.isfinite(rho) else 0.0})
    synthetic = f"(two-layer net, signal-noise data, d = {cfg['D']}, n = {cfg['N']})"
    out.append(dict(
        text=f"Below a threshold, training loss goes to 0 and test error is low and falls as p grows {synthetic}",
        holds=p_best > 0 and fits and best["test_err_mean"] <= cfg["LOW_ERR"] and welch_p < cfg["ALPHA"] and rho < 0,
        id="low_error_below_threshold",
        detail=f"lowest mean test error at p* = {p_best:g}: {100 * best['test_err_mean']:.1f}% vs "
               f"{100 * by_p[0.0]['test_err_mean']:.1f}% at p = 0 (one-sided Welch p = {welch_p:.2g}); Spearman "
               f"rho(p, error) on [0, p*] = {rho:.2f}; all runs with p <= p* reach training loss <= "
               f"{cfg['TRAIN_LOSS_TOL']}: {fits} (max {max(r['train_loss'] for r in below):.1e}); mean errors by p: "
               + ", ".join(f"{row['p']:g}: {100 * row['test_err_mean']:.1f}%" for row in summary)))

    p_max = max(cfg["P_GRID"])
    top = by_p[p_max]
    top_runs = [r for r in results if r["p"] == p_max]
    no_signal = sum(r["signal_neurons"] == 0 for r in top_runs)
    m.update({"p_max": p_max, "p_max_train_loss_mean": top["train_loss_mean"],
              "p_max_test_err_mean": top["test_err_mean"], "p_max_runs_without_signal_neuron": no_signal})
    out.append(dict(
        text=f"At a large p, training loss still goes to 0 while test error is near 50% {synthetic}",
        holds=all(r["train_loss"] <= cfg["TRAIN_LOSS_TOL"] for r in top_runs) and top["test_err_mean"] >= cfg["NEAR_CHANCE"],
        id="chance_error_at_large_p",
        detail=f"p = {p_max:g}: training loss mean {top['train_loss_mean']:.1e} (max {top['train_loss_max']:.1e}, "
               f"training error {100 * top['train_err_mean']:.1f}%), test error {100 * top['test_err_mean']:.1f}% "
               f"± {100 * top['test_err_std']:.1f}; {no_signal} of {len(top_runs)} "
               f"seeds have no neuron that keeps the signal coordinate; signal {top['signal_max_mean']:.2f} vs noise "
               f"{top['noise_max_mean']:.2f}"))

    mlp_by_p = {row["p"]: row for row in mlp_summary}
    dense_acc = mlp_by_p[0.0]["test_acc_mean"]
    best_mild = max((row for row in mlp_summary if 0 < row["p"] <= 0.9), key=lambda row: row["test_acc_mean"])
    p_top = max(cfg["MLP_P"])
    mlp_top = mlp_by_p[p_top]
    m["mlp/best_mild_p"] = best_mild["p"]
    mlp_holds = best_mild["test_acc_mean"] >= dense_acc and mlp_top["test_acc_mean"] < dense_acc - 0.01
    state, reason = comparison(mlp_holds, {"dense": dense_acc, f"p = {best_mild['p']:g}": best_mild["test_acc_mean"],
                                           f"p = {p_top:g}": mlp_top["test_acc_mean"]}, num_classes)
    out.append(dict(
        text=f"Real data (MLP on {cfg['MLP_DATASET']}): a mild random pruning fraction (p <= 0.9) is at least as "
             f"accurate as dense, the largest (p = {p_top:g}) is more than one point worse",
        holds=mlp_holds, id="real_data_mild_pruning", state=state, reason=reason,
        detail=f"dense {100 * dense_acc:.2f}%, best mild p = {best_mild['p']:g}: {100 * best_mild['test_acc_mean']:.2f}%, "
               f"p = {p_top:g}: {100 * mlp_top['test_acc_mean']:.2f}% ({cfg['MLP_SEEDS']} seeds); by p: "
               + ", ".join(f"{row['p']:g}: {100 * row['test_acc_mean']:.2f}%" for row in mlp_summary)))
    return m, out
