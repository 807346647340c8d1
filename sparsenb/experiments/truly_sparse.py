"""Training drivers for truly sparse MLPs (SET evolution, importance pruning) and their masked twins.

Curci, Mocanu, Pechenizkiy (2021), "Truly Sparse Neural Networks at Scale",
arXiv:2102.01732. The layers live in :mod:`sparsenb.layers.truly_sparse`; this
module runs experiments with them:

* :func:`train_truly_sparse`: a :class:`~sparsenb.layers.truly_sparse.TrulySparseMLP`
  (ER topology, ``nnz_l = epsilon * (n_l + n_{l+1})``) trained with SGD by the
  :class:`~sparsenb.train.trainer.Trainer` (:class:`TopologyEvolution` in its method hooks); at the end
  of every epoch but the last: importance pruning when
  :func:`~sparsenb.layers.truly_sparse.should_prune` holds (neurons with
  ``I_i = sum_j |W_ij| <= percentile_q(I)`` lose all incoming connections), then
  SET evolution (drop the fraction ``ZETA`` closest to zero, regrow as many at random);
* :func:`train_masked_set`: the same MLP as dense ``nn.Linear`` layers with
  :class:`sparsenb.Masking` masks, trained by :class:`sparsenb.Trainer` with
  :class:`sparsenb.methods.set.SET` at the same per-layer densities (``"er"``
  distribution at the truly sparse network's global density), for a one-to-one comparison;
* :func:`scaling_sweep`: forward+backward time and memory of one square layer vs width
  for dense, masked-dense and truly sparse layers (a timing loop written out by hand: it
  measures single steps and trains nothing, so it does not go through the Trainer);
* :func:`dense_equivalent_bytes`, :func:`peak_rss_mb`: memory bookkeeping.

Config keys read (``cfg`` is a dict, e.g. a resolved :mod:`sparsenb.nb.catalog` profile):
``HIDDEN`` (list of widths), ``EPSILON``, ``ZETA``, ``EPOCHS``, ``BATCH_SIZE``, ``LR``,
``MOMENTUM``, ``WEIGHT_DECAY``, ``OPTIMIZER`` ("sgd"), ``SCHEDULE`` ("constant"),
``ACTIVATION`` ("relu" | "allrelu"), ``ALPHA`` (0.6), ``DROPOUT`` (0), ``INIT`` (a
:class:`~sparsenb.layers.truly_sparse.TrulySparseLinear` init: "linear", "he_uniform" (the authors' code:
dense fan-in), "sparse_he" / "sparse_glorot" (each neuron's kept fan-in, initial and regrown weights,
:mod:`sparsenb.core.init`), or "he_sparse": He-uniform rescaled to the layer's *mean* sparse fan-in
``nnz / n_out`` for the initial weights only, regrown ones at the dense ``init_bound``; kept for the
committed ``scale`` record of notebook 06),
``TEST_BATCH_SIZE`` (1000),
``EVOLVE_LAST`` (False: the authors' code keeps the output layer's topology),
``PRUNE`` (False), ``PRUNE_START``, ``PRUNE_EVERY``, ``PRUNE_PERCENTILE`` (20), ``PRUNE_REMOVE``
(True: as in the paper, pruned neurons leave the network for good and the percentile is taken over
the remaining neurons, see :func:`importance_prune_alive` and :func:`remove_neurons`; False: the
layer module's :func:`~sparsenb.layers.truly_sparse.importance_prune`, which only cuts incoming
connections that SET regrowth may restore).
"""
from __future__ import annotations

import math
import os
import resource
import statistics
import time
from typing import Any, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .. import methods
from ..data.registry import TensorData
from ..layers.truly_sparse import (TrulySparseLinear, TrulySparseMLP, active_neurons, er_layer_nnz,
                                   importance_prune_alive, regrow_alive, remove_neurons, should_prune)
from ..models.classic import MLP
from ..train.trainer import Trainer, evaluate, make_optimizer, make_scheduler, set_seed
from .spec import acc_text, settings_class

__all__ = ["Settings", "OURS", "MaskedSquareLinear", "TopologyEvolution", "train_truly_sparse", "train_masked_set", "remove_neurons", "importance_prune_alive", "regrow_alive", "build_truly_sparse", "er_layer_nnz",
           "scaling_sweep", "dense_equivalent_bytes", "peak_rss_mb", "active_neurons", "claims"]

Settings = settings_class("06_truly_sparse")  # typed, frozen; from specs/06_truly_sparse.json
OURS = {  # the README gallery's number of each claim id in the spec, from results.json's metrics m
    "set": lambda m: f"truly sparse {acc_text(m, 'set_truly_sparse')} vs masked {acc_text(m, 'set_masked')}",
    "activation": lambda m: f"All-ReLU {acc_text(m, 'allrelu')} vs ReLU {acc_text(m, 'relu')}",
    "pruning": lambda m: (f"{100 * m.get('pruning/neurons_removed_frac_mean', float('nan')):.0f} % of hidden neurons removed, {acc_text(m, 'pruned')} vs {acc_text(m, 'allrelu')}"),
    "activation+sparse_he_init": lambda m: f"All-ReLU {acc_text(m, 'allrelu+sparse_he_init')} vs ReLU {acc_text(m, 'relu+sparse_he_init')}",
    "pruning+sparse_he_init": lambda m: (f"{100 * m.get('pruning+sparse_he_init/neurons_removed_frac_mean', float('nan')):.0f} % of hidden neurons removed, {acc_text(m, 'pruned+sparse_he_init')} vs {acc_text(m, 'allrelu+sparse_he_init')}"),
}


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB: ``VmHWM`` of /proc/self/status on
    Linux (``ru_maxrss`` there includes the high-water mark inherited from the parent of a
    fork+exec, e.g. the ``sparsenb run`` process), else ``ru_maxrss`` (KiB on Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024



def dense_equivalent_bytes(sizes: Sequence[int], bytes_per_value: int = 4) -> dict[str, int]:
    """Memory a dense MLP of these sizes needs: ``weights`` (W and b, float32) and
    ``training`` (weights + gradients + SGD momentum = 3x). Activations not included."""
    n = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    return {"params": n, "weights": n * bytes_per_value, "training": 3 * n * bytes_per_value}


def build_truly_sparse(sizes: Sequence[int], cfg: dict, seed: int) -> TrulySparseMLP:
    """The seeded :class:`TrulySparseMLP` of ``cfg`` (topology and init from ``Generator(seed)``)."""
    g = torch.Generator().manual_seed(seed)
    init = cfg.get("INIT", "linear")
    model = TrulySparseMLP(sizes, epsilon=cfg["EPSILON"], activation=cfg.get("ACTIVATION", "relu"),
                           alpha=cfg.get("ALPHA", 0.6), dropout=cfg.get("DROPOUT", 0.0),
                           init="he_uniform" if init == "he_sparse" else init, generator=g)
    if init == "he_sparse":  # He-uniform w.r.t. the mean *sparse* fan-in nnz / n_out (initial values only)
        with torch.no_grad():
            for layer in model.layers:
                fan_in = max(1.0, layer.nnz / layer.out_features)
                layer.values.mul_(math.sqrt(layer.in_features / fan_in))
    return model






class TopologyEvolution:
    """The end-of-epoch topology change of a :class:`TrulySparseMLP`, in the Trainer's method hooks.

    It creates no masks (the layers hold only their nonzeros) and does nothing per step; after
    every epoch but the last (``on_epoch_end``): importance pruning when ``PRUNE`` and
    :func:`should_prune`, then SET evolution, with the neuron removal of ``PRUNE_REMOVE`` around it
    (see :func:`train_truly_sparse`). Its state (evolution generator, pruned neurons, seconds spent
    training) travels in the Trainer's checkpoint.
    """

    def __init__(self, model: TrulySparseMLP, optimizer: torch.optim.Optimizer, cfg: dict, epochs: int,
                 generator: torch.Generator):
        self.model, self.optimizer, self.cfg, self.epochs, self.generator = model, optimizer, cfg, epochs, generator
        self.pruned_sets: list[set] = [set() for _ in model.layers[:-1]]
        self.pruned_now = 0
        self.train_seconds = 0.0

    def init_masks(self, model: nn.Module, data: Any = None) -> None:
        return None

    def setup(self, total_steps: int, steps_per_epoch: int, epochs: int) -> None:
        pass

    def after_backward(self, step: int, masks: Any) -> None:
        pass

    def after_step(self, step: int, masks: Any) -> None:
        pass

    def on_epoch_end(self, epoch: int, masks: Any) -> None:
        cfg, model, opt, pruned_sets = self.cfg, self.model, self.optimizer, self.pruned_sets
        self.pruned_now = 0
        if epoch >= self.epochs - 1:
            return
        if cfg.get("PRUNE", False) and should_prune(epoch, cfg["PRUNE_START"], cfg["PRUNE_EVERY"]):
            if cfg.get("PRUNE_REMOVE", True):
                newly = importance_prune_alive(model, pruned_sets, cfg.get("PRUNE_PERCENTILE", 20.0))
            else:
                newly = model.importance_prune(cfg.get("PRUNE_PERCENTILE", 20.0), opt)
            for s, idx in zip(pruned_sets, newly):
                before = len(s)
                s.update(idx.tolist())
                self.pruned_now += len(s) - before
        removing = cfg.get("PRUNE", False) and cfg.get("PRUNE_REMOVE", True) and any(pruned_sets)
        if removing:
            remove_neurons(model, pruned_sets, opt)  # the pruned neurons leave; their connections are gone
            budget = [layer.nnz for layer in model.layers]
        model.evolve(cfg["ZETA"], opt, self.generator, include_last=cfg.get("EVOLVE_LAST", False))
        if removing:  # regrowth that landed on a removed neuron is moved to the neurons still present
            remove_neurons(model, pruned_sets, opt)
            regrow_alive(model, pruned_sets, budget, opt, self.generator)

    def state_dict(self) -> dict:
        return {"evolution_generator": self.generator.get_state(), "pruned": [sorted(s) for s in self.pruned_sets],
                "train_seconds": self.train_seconds}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["evolution_generator"])
        self.pruned_sets = [set(p) for p in state["pruned"]]
        self.train_seconds = state["train_seconds"]


_HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "nnz", "active_neurons", "pruned", "test_loss", "test_acc",
                 "seconds")


def train_truly_sparse(data: TensorData, cfg: dict, seed: int, overrides: dict | None = None,
                       eval_every: int = 1, progress: bool = False,
                       checkpoint: str | os.PathLike | None = None) -> dict[str, Any]:
    """Train a truly sparse MLP with SET (and optionally importance pruning) on ``data`` (CPU).

    Per epoch ``e`` (0-based): one pass over the shuffled training set (SGD, batch
    ``BATCH_SIZE``); then, unless ``e`` is the last epoch: importance pruning of every
    hidden layer if ``PRUNE`` and ``should_prune(e, PRUNE_START, PRUNE_EVERY)``, then
    SET evolution (``ZETA``; the output layer too if ``EVOLVE_LAST``); with ``PRUNE`` and
    ``PRUNE_REMOVE`` the neurons pruned so far are removed (:func:`remove_neurons`) before the
    evolution, and regrowth that landed on them is moved to present neurons after it
    (:func:`regrow_alive`), so only pruning shrinks nnz; then the LR
    schedule steps and (every ``eval_every`` epochs and after the last) the test set is evaluated.
    The loop is the :class:`~sparsenb.train.trainer.Trainer`'s (no method; the end-of-epoch topology
    change is :class:`TopologyEvolution` in the method's place, so it runs before the LR schedule
    steps, after the last batch's autograd graph is gone).

    Args:
        data: the data set; its test split is evaluated.
        cfg: config (keys in the module docstring); ``overrides`` replace keys of it.
        seed: seeds the topology/init generator, the evolution generator, dropout and the batch order.
        checkpoint: path of a checkpoint written (atomically) after every epoch and resumed from
            if it exists: the run then continues bit-identically to an uninterrupted one. It holds
            the model (any nnz), optimizer, scheduler, the SET evolution generator, the pruned
            neurons, the history and every RNG state (python, numpy, torch, the loader's
            shuffling generator): the :class:`~sparsenb.train.trainer.Trainer`'s checkpoint, with the
            evolution's state (:meth:`TopologyEvolution.state_dict`) as its ``method`` entry.

    Returns:
        dict with ``test_acc``, ``test_loss``, ``train_loss``, ``history`` (per epoch:
        ``epoch, train_loss, train_acc, test_loss?, test_acc?, nnz, active_neurons, pruned, seconds``),
        ``sizes``, ``nnz`` (final), ``nnz_init``, ``active_neurons`` (final, per hidden layer),
        ``neurons_pruned`` (distinct neurons hit by importance pruning, per hidden layer),
        ``seconds``, ``train_seconds``, ``peak_rss_mb``.
    """
    cfg = {**cfg, **(overrides or {})}
    t0 = time.perf_counter()
    set_seed(seed)
    sizes = [math.prod(data.input_shape), *cfg["HIDDEN"], data.num_classes]
    model = build_truly_sparse(sizes, cfg, seed)
    nnz_init = model.nnz()
    evo_gen = torch.Generator().manual_seed(seed + 10_000)
    opt = make_optimizer(model, cfg.get("OPTIMIZER", "sgd"), lr=cfg["LR"], momentum=cfg.get("MOMENTUM", 0.9),
                         weight_decay=cfg.get("WEIGHT_DECAY", 0.0))
    epochs = cfg["EPOCHS"]
    sched = make_scheduler(opt, cfg.get("SCHEDULE", "constant"), epochs)
    train_loader, test_loader = data.loaders(cfg["BATCH_SIZE"], seed=seed,
                                             test_batch_size=cfg.get("TEST_BATCH_SIZE", 1000))
    evolution = TopologyEvolution(model, opt, cfg, epochs, evo_gen)
    eval_seconds = {"last": 0.0}

    def evaluate_fn(trainer: Trainer, loader: Any) -> dict[str, Any]:
        row: dict[str, Any] = {"nnz": model.nnz(), "active_neurons": active_neurons(model),
                               "pruned": evolution.pruned_now}
        te = time.perf_counter()
        if (trainer.epoch + 1) % eval_every == 0 or trainer.epoch == epochs - 1:
            ev = evaluate(model, loader)
            row["test_loss"], row["test_acc"] = ev["loss"], ev["acc"]
        eval_seconds["last"] = time.perf_counter() - te
        return row

    def after_epoch(trainer: Trainer, row: dict) -> None:
        evolution.train_seconds += row["seconds"] - eval_seconds["last"]
        if progress:
            print(f"epoch {row['epoch']}/{epochs}: " + ", ".join(
                f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()
                if k in _HISTORY_KEYS and k != "epoch"), flush=True)

    trainer = Trainer(model, evolution, opt, epochs=epochs, scheduler=sched, device="cpu", amp=False,
                      progress=False, batch_bar=False, checkpoint=checkpoint, callbacks=[after_epoch],
                      evaluate_fn=evaluate_fn)
    history = [{k: row[k] for k in _HISTORY_KEYS if k in row} for row in trainer.fit(train_loader, test_loader)]
    last = history[-1]
    return {"sizes": sizes, "seed": seed, "activation": cfg.get("ACTIVATION", "relu"),
            "prune": bool(cfg.get("PRUNE", False)), "test_acc": last["test_acc"], "test_loss": last["test_loss"],
            "train_loss": last["train_loss"], "history": history, "nnz_init": nnz_init, "nnz": model.nnz(),
            "active_neurons": active_neurons(model), "neurons_pruned": [len(s) for s in evolution.pruned_sets],
            "seconds": time.perf_counter() - t0, "train_seconds": evolution.train_seconds,
            "peak_rss_mb": peak_rss_mb()}


def train_masked_set(data: TensorData, cfg: dict, seed: int, progress: bool = False) -> dict[str, Any]:
    """The masked-dense twin of :func:`train_truly_sparse` (ReLU, no pruning).

    Same sizes, optimizer, schedule, batch size and epochs; masks from
    :class:`sparsenb.methods.set.SET` with ``distribution="er"`` at the global density
    ``sum(er_layer_nnz) / sum(n_in * n_out)``, which reproduces the truly sparse
    per-layer nnz (up to rounding). Masked SET evolves every layer, the output layer
    included (run the truly sparse twin with ``EVOLVE_LAST=True``). The SET method is seeded
    with ``seed + 10_000`` (see the comment in the code: seeding it with ``seed`` correlates the
    random mask with the initial weights). ``cfg["DROPOUT"]``
    and ``ACTIVATION`` are not used (plain ReLU MLP, no dropout); the init is
    ``nn.Linear``'s, i.e. ``TrulySparseLinear(init="linear")``.

    Returns ``{"test_acc", "test_loss", "train_loss", "history", "nnz", "layer_nnz", "seconds"}``.
    """
    t0 = time.perf_counter()
    set_seed(seed)
    sizes = [math.prod(data.input_shape), *cfg["HIDDEN"], data.num_classes]
    nnz = er_layer_nnz(sizes, cfg["EPSILON"])
    numel = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    model = MLP(sizes[0], sizes[1:-1], sizes[-1])
    # The method's generator must not replay the global stream that just drew the weights: with
    # ``Generator().manual_seed(seed)`` after ``set_seed(seed)`` its mask scores would equal the uniforms
    # behind the first layer's init, and the "random" mask would keep exactly the largest positive weights.
    meth = methods.get("set", sparsity=1.0 - sum(nnz) / numel, distribution="er", drop_fraction=cfg["ZETA"],
                       seed=seed + 10_000)
    opt = make_optimizer(model, cfg.get("OPTIMIZER", "sgd"), lr=cfg["LR"], momentum=cfg.get("MOMENTUM", 0.9),
                         weight_decay=cfg.get("WEIGHT_DECAY", 0.0))
    sched = make_scheduler(opt, cfg.get("SCHEDULE", "constant"), cfg["EPOCHS"])
    train_loader, test_loader = data.loaders(cfg["BATCH_SIZE"], seed=seed)
    trainer = Trainer(model, meth, opt, epochs=cfg["EPOCHS"], scheduler=sched, device="cpu", progress=progress)
    history = trainer.fit(train_loader, test_loader)
    return {"sizes": sizes, "seed": seed, "test_acc": history[-1]["test_acc"], "test_loss": history[-1]["test_loss"],
            "train_loss": history[-1]["train_loss"], "history": history, "nnz": trainer.masks.nnz(),
            "layer_nnz": [v["nnz"] for v in trainer.masks.report().values()], "seconds": time.perf_counter() - t0}


class MaskedSquareLinear(nn.Module):
    """``F.linear(x, W * mask, b)``: a dense weight times a bool mask (what sparsenb.Masking keeps)."""

    def __init__(self, n: int, density: float, generator: torch.Generator):
        super().__init__()
        self.lin = nn.Linear(n, n)
        self.register_buffer("mask", torch.rand(n, n, generator=generator) < density)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.lin.weight * self.mask, self.lin.bias)


def _step_bytes(module: nn.Module) -> int:
    """Bytes of parameters + buffers + gradients (after a backward)."""
    ts = list(module.parameters()) + list(module.buffers()) + [p.grad for p in module.parameters() if p.grad is not None]
    return sum(t.numel() * t.element_size() for t in ts)


def scaling_sweep(widths: Sequence[int], epsilon: float, batch: int = 128, dense_cap: int = 8000,
                  steps: int = 3, rounds: int = 3, seed: int = 0) -> list[dict[str, Any]]:
    """Forward+backward time and memory of one square ``width x width`` layer vs width.

    Variants: ``dense`` (``nn.Linear``) and ``masked`` (dense weight times bool mask)
    up to ``dense_cap`` (inclusive); ``sparse`` (:class:`TrulySparseLinear` with the ER
    density of ``epsilon``: ``nnz = 2 * epsilon * width``) at every width. Time: median
    over ``rounds`` (variants interleaved) of the mean ms of ``steps`` steps
    (``loss = y.square().mean(); loss.backward()``), after one warm-up step. Memory:
    ``bytes`` = parameters + buffers + gradients of the layer, measured; for the
    dense and masked variants above the cap, ``bytes_needed`` = the same count computed
    without building them: weight + gradient ``2 * 4 * (w^2 + w)`` (+ the ``w^2``-byte bool
    mask for masked).

    Returns rows ``{"variant", "width", "nnz", "ms", "bytes"}`` (dense beyond the cap:
    ``ms = None``, ``bytes = None``, ``bytes_needed``).
    """
    rows = []
    for w in widths:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(batch, w, generator=g, requires_grad=True)
        density = min(1.0, 2 * epsilon / w)
        mods: dict[str, nn.Module] = {"sparse": TrulySparseLinear(w, w, epsilon=epsilon, generator=g)}
        if w <= dense_cap:
            torch.manual_seed(seed)
            mods["dense"] = nn.Linear(w, w)
            mods["masked"] = MaskedSquareLinear(w, density, g)
        times: dict[str, list[float]] = {n: [] for n in mods}

        def step(m: nn.Module) -> None:
            for p in m.parameters():
                p.grad = None
            x.grad = None
            m(x).square().mean().backward()

        for m in mods.values():
            step(m)
        names = list(mods)
        for r in range(rounds):
            for n in names[r % len(names):] + names[:r % len(names)]:
                t0 = time.perf_counter()
                for _ in range(steps):
                    step(mods[n])
                times[n].append((time.perf_counter() - t0) / steps * 1e3)
        for n in ("dense", "masked", "sparse"):
            if n in mods:
                m = mods[n]
                nnz = m.nnz if n == "sparse" else int(m.mask.sum()) if n == "masked" else w * w
                rows.append({"variant": n, "width": w, "nnz": nnz, "ms": statistics.median(times[n]),
                             "bytes": _step_bytes(m)})
            else:
                rows.append({"variant": n, "width": w, "nnz": w * w if n == "dense" else round(density * w * w),
                             "ms": None, "bytes": None,
                             "bytes_needed": (2 * 4 * (w * w + w)) + (w * w if n == "masked" else 0)})
        del mods
    return rows


# ------------------------------------------------------------------ figures
def plot_scaling(rows: Sequence[dict], title: str = ""):
    """Two panels vs width (log-log): ms per fwd+bwd step and layer memory (MB), one line per variant.

    Variants beyond the dense cap have ``ms = None``: their memory is drawn dashed from ``bytes_needed``.
    """
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 3.8))
    style = {"dense": ("tab:red", "o"), "masked": ("tab:orange", "s"), "sparse": ("tab:blue", "^")}
    label = {"dense": "dense nn.Linear", "masked": "masked dense (W * mask)", "sparse": "truly sparse (CSR)"}
    for v, (c, mk) in style.items():
        rs = [r for r in rows if r["variant"] == v]
        run_ = [r for r in rs if r["ms"] is not None]
        if run_:
            ax_t.plot([r["width"] for r in run_], [r["ms"] for r in run_], marker=mk, color=c, label=label[v])
            ax_m.plot([r["width"] for r in run_], [r["bytes"] / 2**20 for r in run_], marker=mk, color=c,
                      label=label[v])
        need = [r for r in rs if r["ms"] is None]
        if need:
            xs = ([run_[-1]["width"]] if run_ else []) + [r["width"] for r in need]
            ys = ([run_[-1]["bytes"] / 2**20] if run_ else []) + [r["bytes_needed"] / 2**20 for r in need]
            ax_m.plot(xs, ys, ls="--", color=c, alpha=0.6, label=f"{label[v]}: would need (not run)")
    for ax in (ax_t, ax_m):
        ax.set_xscale("log"), ax.set_yscale("log"), ax.set_xlabel("layer width (square layer)")
        ax.grid(alpha=0.3, which="both")
    ax_t.set_ylabel("ms per forward+backward (batch 128)")
    ax_m.set_ylabel("MB: parameters + buffers + gradients")
    ax_m.legend(fontsize=7)
    ax_t.set_title("time per step"), ax_m.set_title("layer memory")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_pruning(pruned: Sequence[dict], reference: Sequence[dict], title: str = ""):
    """Per epoch: test accuracy (left) and share of hidden neurons still having inputs (right),
    for the pruned runs and their unpruned reference (seed-wise lines)."""
    import matplotlib.pyplot as plt

    fig, (ax_a, ax_n) = plt.subplots(1, 2, figsize=(10, 3.8))
    for runs, c, name in ((reference, "tab:gray", "no pruning"), (pruned, "tab:green", "importance pruning")):
        for i, r in enumerate(runs):
            h = [row for row in r["history"] if "test_acc" in row]
            total = sum(r["sizes"][1:-1])
            ax_a.plot([row["epoch"] for row in h], [100 * row["test_acc"] for row in h], color=c,
                      alpha=0.8, label=name if i == 0 else None)
            ax_n.plot([row["epoch"] for row in r["history"]],
                      [100 * sum(row["active_neurons"]) / total for row in r["history"]], color=c, alpha=0.8,
                      label=name if i == 0 else None)
    ax_a.set_xlabel("epoch"), ax_a.set_ylabel("test accuracy (%)"), ax_a.legend(), ax_a.grid(alpha=0.3)
    ax_n.set_xlabel("epoch"), ax_n.set_ylabel("hidden neurons with >= 1 input (%)"), ax_n.grid(alpha=0.3)
    ax_n.set_ylim(0, 105)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------- claims
def _mean(rs: Sequence[dict], k: str = "test_acc") -> float:
    return sum(r[k] for r in rs) / len(rs)


def _std(rs: Sequence[dict], k: str = "test_acc") -> float:
    """Sample standard deviation over runs (0 for one run)."""
    m = _mean(rs, k)
    return (sum((r[k] - m) ** 2 for r in rs) / max(1, len(rs) - 1)) ** 0.5


def claims(cfg: dict, num_classes: int, threads: int, cross: Sequence[dict] | None = None,
           scaling: Sequence[dict] | None = None, set_truly: Sequence[dict] | None = None,
           set_masked: Sequence[dict] | None = None, acts: dict[str, dict[str, list[dict]]] | None = None,
           big: dict | None = None, dense_eq: dict | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The notebook's recorded numbers and its claims, from the results of the sections it ran.

    Args:
        cfg: the resolved settings (``SECTIONS``, ``HIDDEN``, ``DATASET``, ``SEEDS``, ``EPOCHS``,
            ``HIDDEN_ACT``, ``ACT_INITS``).
        num_classes: classes of the data (chance-level rule of :mod:`sparsenb.nb.claims`).
        threads: torch threads of the run (recorded).
        cross: rows of :func:`sparsenb.layers.backend.crossover_sweep` (section ``crossover``).
        scaling: rows of :func:`scaling_sweep` (section ``scaling``).
        set_truly, set_masked: one :func:`train_truly_sparse` / :func:`train_masked_set` result per seed
            (section ``set``).
        acts: ``{init: {"relu": runs, "allrelu": runs, "pruned": runs}}`` (sections ``activation`` and
            ``pruning``); the first of ``ACT_INITS`` keeps the plain claim ids, the others get ``+<init>_init``.
        big: the big run's result and ``dense_eq`` its :func:`dense_equivalent_bytes` (section ``scale``).

    Returns:
        ``(metrics, claims)``: ``{name: value}`` for :meth:`Run.record`, and one dict of :meth:`Run.claim`
        keyword arguments per claim; a section not in ``SECTIONS`` gives its claim as ``not evaluated``.

    Rules: ``scaling`` holds if the sparse layer's bytes grow between 0.5 and 2 times as fast as its width;
    ``set`` if truly sparse and masked SET are within 0.5 points; ``activation`` if All-ReLU's mean accuracy
    beats ReLU's; ``pruning`` if importance pruning leaves at least 30 % more neurons without inputs than
    no pruning, at most 1 point less accurate; ``scale`` if a >= 1,000,000-neuron MLP trains within 30 min.
    """
    from ..layers.backend import crossover_densities
    from ..nb.claims import comparison

    sections = cfg["SECTIONS"]
    m: dict[str, Any] = {"threads": threads}
    out: list[dict[str, Any]] = []
    if "crossover" in sections:
        m["crossover"] = cross
        m["crossover_density"] = {str(w): c for w, c in crossover_densities(cross).items()}
    on = f"(MLP {cfg['HIDDEN']}, {cfg['DATASET']})"
    text = {"scaling": "Truly sparse layer memory grows linearly with width at fixed epsilon (dense: quadratically)",
            "set": f"Truly sparse SET matches masked SET within 0.5 points {on}",
            "activation": f"All-ReLU improves accuracy over ReLU {on}",
            "pruning": f"Importance pruning removes a large fraction of neurons with little accuracy loss {on}",
            "scale": f"An MLP with 1,000,000 hidden neurons trains with truly sparse SET on a 2-core CPU within 30 "
                     f"minutes ({cfg['DATASET']})"}
    for section in [s for s in text if s not in sections]:  # a claim is never dropped silently
        out.append(dict(text=text[section], holds=None, id=section, state="not evaluated",
                        reason=f"section {section!r} not in SECTIONS {sections}"))
    if "scaling" in sections:
        m["scaling"] = scaling
        sp = [r for r in scaling if r["variant"] == "sparse"]
        growth = (sp[-1]["bytes"] / sp[0]["bytes"]) / (sp[-1]["width"] / sp[0]["width"])
        m["scaling/sparse_bytes_growth_over_width_growth"] = growth
        out.append(dict(text=text["scaling"], holds=0.5 <= growth <= 2.0, id="scaling",
                        detail=f"bytes grew {sp[-1]['bytes'] / sp[0]['bytes']:.1f}x for a "
                               f"{sp[-1]['width'] / sp[0]['width']:.0f}x wider layer ({sp[0]['width']} -> "
                               f"{sp[-1]['width']}); time {sp[0]['ms']:.2f} -> {sp[-1]['ms']:.2f} ms"))
    if "set" in sections:
        for name, rs in (("set_truly_sparse", set_truly), ("set_masked", set_masked)):
            m[f"{name}/test_acc_mean"], m[f"{name}/test_acc_std"] = _mean(rs), _std(rs)
            m[f"{name}/seconds_mean"] = _mean(rs, "seconds")
        gap = _mean(set_truly) - _mean(set_masked)
        state, reason = comparison(abs(gap) <= 0.005, {"truly sparse SET": _mean(set_truly),
                                                       "masked SET": _mean(set_masked)}, num_classes)
        out.append(dict(text=text["set"], holds=abs(gap) <= 0.005, id="set", state=state, reason=reason,
                        detail=f"truly sparse {100 * _mean(set_truly):.2f} ± {100 * _std(set_truly):.2f} vs masked "
                               f"{100 * _mean(set_masked):.2f} ± {100 * _std(set_masked):.2f} % over {cfg['SEEDS']} seeds "
                               f"(gap {100 * gap:+.2f} points); both evolve all layers"))
    for init, arm in (acts or {}).items():  # the same rules on each init arm
        first = init == cfg["ACT_INITS"][0]  # the authors' init keeps the ids
        key = (lambda v: v) if first else (lambda v, init=init: f"{v}+{init}_init")
        tag = "" if first else f" (sparsity-aware init {init!r})"
        relu, allrelu, pruned = arm["relu"], arm["allrelu"], arm["pruned"]
        if "activation" in sections:
            for name, rs in (("relu", relu), ("allrelu", allrelu)):
                m[f"{key(name)}/test_acc_mean"], m[f"{key(name)}/test_acc_std"] = _mean(rs), _std(rs)
            holds = _mean(allrelu) > _mean(relu)
            state, reason = comparison(holds, {"All-ReLU": _mean(allrelu), "ReLU": _mean(relu)}, num_classes)
            out.append(dict(text=text["activation"] + tag, holds=holds, id=key("activation"), state=state, reason=reason,
                            detail=f"All-ReLU {100 * _mean(allrelu):.2f} ± {100 * _std(allrelu):.2f} vs ReLU "
                                   f"{100 * _mean(relu):.2f} ± {100 * _std(relu):.2f} % ({cfg['SEEDS']} seeds, "
                                   f"{cfg['EPOCHS']} epochs, {len(cfg['HIDDEN_ACT'])} hidden layers)"))
        if "pruning" in sections:
            total = sum(pruned[0]["sizes"][1:-1])
            removed = [1 - sum(r["active_neurons"]) / total for r in pruned]
            removed_ref = [1 - sum(r["active_neurons"]) / total for r in allrelu]
            frac, frac_ref = sum(removed) / len(removed), sum(removed_ref) / len(removed_ref)
            m[f"{key('pruned')}/test_acc_mean"], m[f"{key('pruned')}/test_acc_std"] = _mean(pruned), _std(pruned)
            m[f"{key('pruning')}/neurons_removed_frac_mean"] = frac
            m[f"{key('pruning')}/neurons_without_inputs_unpruned_frac_mean"] = frac_ref
            m[f"{key('pruning')}/nnz_final_over_init_mean"] = sum(r["nnz"] / r["nnz_init"] for r in pruned) / len(pruned)
            loss = _mean(allrelu) - _mean(pruned)
            holds = frac - frac_ref >= 0.3 and loss <= 0.01
            state, reason = comparison(holds, {"pruned": _mean(pruned), "unpruned": _mean(allrelu)}, num_classes)
            out.append(dict(text=text["pruning"] + tag, holds=holds, id=key("pruning"), state=state, reason=reason,
                            detail=f"{100 * frac:.1f} % of hidden neurons have no input left (unpruned: "
                                   f"{100 * frac_ref:.1f} %); accuracy {100 * _mean(pruned):.2f} vs "
                                   f"{100 * _mean(allrelu):.2f} % (loss {100 * loss:+.2f} points). 'Large' = at least "
                                   f"30 % more neurons removed than without pruning, 'little' = at most 1 point"))
    if "scale" in sections:
        hidden = sum(big["sizes"][1:-1])
        for k in ("nnz", "test_acc", "seconds", "train_seconds", "peak_rss_mb"):
            m[f"big/{k}"] = big[k]
        m["big/sizes"], m["big/hidden_neurons"] = big["sizes"], hidden
        m["big/epochs"], m["big/dense_equivalent_bytes"] = len(big["history"]), dense_eq
        if hidden < 1_000_000:
            out.append(dict(text=text["scale"], holds=None, id="scale", state="not evaluated",
                            reason=f"this profile's big MLP has {hidden:,} hidden neurons, fewer than 1,000,000 "
                                   f"(run --profile scale)"))
        else:
            state, reason = comparison(big["seconds"] <= 1800, {"1M-neuron MLP": big["test_acc"]}, num_classes)
            out.append(dict(text=text["scale"], holds=big["seconds"] <= 1800, id="scale", state=state, reason=reason,
                            detail=f"{big['sizes']}, nnz {big['nnz']:,}, {len(big['history'])} epochs on "
                                   f"{cfg['DATASET']} in {big['seconds'] / 60:.1f} min, peak RSS "
                                   f"{big['peak_rss_mb'] / 1024:.2f} GB (dense equivalent: "
                                   f"{dense_eq['training'] / 2**30:.0f} GB to train), test acc {100 * big['test_acc']:.2f} %"))
    return m, out
