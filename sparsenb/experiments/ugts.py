"""Untrained GNN tickets (UGTs) vs edge-popup vs trained dense GNNs: runs, sweeps, summaries, plots.

Huang, Chen, Fang, Menkovski, Zhao, Yin, Pei, Mocanu, Wang, Pechenizkiy, Liu 2022, LoG, "You Can
Have Better Graph Neural Networks by Not Training Weights at All: Finding Untrained GNNs Tickets".

One run (:func:`ugts_run`) trains one GNN on one graph, full batch (one optimizer step per epoch,
transductive: the loss is the cross-entropy over the train nodes; the :class:`~sparsenb.train.trainer.Trainer`
with a ``batch_fn`` that sets the epoch's sparsity and an ``evaluate_fn`` for the node splits),
with one of three methods:

- ``"ugts"``: frozen random weights, trainable scores, a **global** top-k over all layers' scores
  (:class:`sparsenb.layers.scores.Popup`, ``scope="global"``), the sparsity raised linearly from 0
  to its final value over the first ``RAMP`` (0.5) of the epochs (:func:`gradual_sparsity`);
- ``"edgepopup"``: the same with a **layerwise** top-k of ``|scores|`` at the final sparsity from
  epoch 0 (Ramanujan et al. 2020, CVPR; ``|scores|`` following the authors' code, see
  :mod:`sparsenb.layers.scores`);
- ``"dense"``: all weights trained (Adam, weight decay, dropout), sparsity 0.

The scores are trained with AdamW by default (``optimizer="adamw"``), following the authors' code
(TianjinYellow/UGTs-LoG ``models/supervised_learning.py``, ``SupervisedLearning._new_optimizer``
returns ``torch.optim.AdamW`` for ``--optimizer Adam``); with the authors' ``--weight_decay 0.0`` it
takes the same steps as Adam. The dense baseline uses Adam with L2 weight decay (Kipf & Welling 2017).

Model selection on the validation split: the masks are evaluated at the **final** sparsity after
every epoch and the reported test accuracy is the one of the epoch with the best validation
accuracy (first such epoch on ties), as in the UGTs code.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from ..nb import claims
from ..data.graphs import GraphData
from ..models.gnn import GNN, sparse_features
from ..layers.scores import Popup, gradual_sparsity
from ..train.trainer import Trainer, pick_device, set_seed
from .common import summarize
from .spec import acc_text, settings_class

__all__ = ["Settings", "OURS", "ugts_run", "METHODS", "expected_nnz", "summarize_runs", "pick", "best_by_validation", "ugts_claims", "plot_sweep",
           "plot_depth", "plot_curves"]

Settings = settings_class("11_ugts")  # typed, frozen; from specs/11_ugts.json
OURS = {  # the README gallery's number of each claim id in the spec, from results.json's metrics m
    "gcn_matches_dense": lambda m: (f"{acc_text(m, 'ugts/gcn/L2/val_best')} at sparsity " f"{m.get('ugts/gcn/L2/val_best_sparsity', float('nan')):g} vs dense " f"{acc_text(m, 'dense/gcn/L2/0.0')}"),
    "ugts_beats_edgepopup": lambda m: f"mean gap {100 * m.get('ugts_minus_edgepopup_high', float('nan')):+.2f} points",
    "ugts_degrades_less": lambda m: (f"drop 2 -> {m.get('deep_max_layers', 0)} layers: UGTs " f"{100 * m.get('ugts/depth_drop', float('nan')):.1f} vs dense " f"{100 * m.get('dense/depth_drop', float('nan')):.1f} points"),
    "deep_ugts_beat_dense": lambda m: (f"{m.get('deep_max_layers', 0)} layers: UGTs " f"{acc_text(m, 'deep/ugts/gcn/L' + str(m.get('deep_max_layers', 0)) + '/val_best')} vs dense " f"{acc_text(m, 'deep/dense/gcn/L' + str(m.get('deep_max_layers', 0)))}"),
}

METHODS = ("ugts", "edgepopup", "dense")
OPTIMIZERS = ("adam", "adamw")
_SCOPE = {"ugts": "global", "edgepopup": "layerwise"}
_RANK = {"ugts": "raw", "edgepopup": "abs"}
_OPTIMIZER = {"ugts": "adamw", "edgepopup": "adamw", "dense": "adam"}


def expected_nnz(popup: Popup, sparsity: float) -> int:
    """Weights a :class:`Popup` must keep at ``sparsity``: round((1-s) N) globally, or per tensor summed."""
    sizes = [p.scores.numel() for p in popup.scored.values()]
    if popup.scope == "global":
        return round((1.0 - sparsity) * sum(sizes))
    return sum(round((1.0 - sparsity) * n) for n in sizes)


def _accuracies(logits: torch.Tensor, g: GraphData) -> dict[str, float]:
    pred = logits.argmax(1)
    return {f"{split}_acc": float((pred[m] == g.y[m]).float().mean())
            for split, m in (("train", g.train_mask), ("val", g.val_mask), ("test", g.test_mask))}


def ugts_run(graph: GraphData, method: str, kind: str = "gcn", sparsity: float = 0.9, seed: int = 0,
             layers: int = 2, hidden: int = 256, heads: int = 1, epochs: int = 400, lr: float = 0.01,
             weight_decay: float = 0.0, dropout: float = 0.0, ramp: float = 0.5,
             weight_init: str = "kaiming_uniform", score_init: str = "kaiming_uniform",
             rank: str | None = None, optimizer: str | None = None,
             device: str = "auto", progress: bool = False) -> dict[str, Any]:
    """Train one GNN with ``method`` (see module doc) and return a JSON-serialisable summary.

    ``sparsity`` is ignored for ``"dense"``. ``weight_decay`` / ``dropout`` apply to whatever is
    trained (the scores for popup methods; the UGTs code uses 0 and 0 there).
    ``rank``: what the top-k ranks, ``"raw"`` scores or ``"abs"`` values (None: the method's own,
    raw for UGTs, abs for edge-popup). ``optimizer``: ``"adam"`` or ``"adamw"`` (None: AdamW for the
    scores, Adam for the dense baseline).
    Returns: method, kind, layers, hidden, sparsity, seed, test_acc / val_acc / best_epoch (model
    selection on validation), final_test_acc, nnz / numel / density of the scored weights at the
    final sparsity, expected_nnz, history (per epoch: loss, sparsity, train/val/test accuracy), seconds.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    optimizer = optimizer or _OPTIMIZER[method]
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {OPTIMIZERS}")
    dev = pick_device(device)
    set_seed(seed)
    g = graph.to(dev)
    model = GNN(kind, g.num_features, hidden, g.num_classes, layers=layers, heads=heads, dropout=dropout).to(dev)
    x = g.x if kind == "gin" else sparse_features(g.x)
    final = 0.0 if method == "dense" else float(sparsity)
    popup = None
    if method == "dense":
        params = list(model.parameters())
    else:
        gen = torch.Generator(device=dev).manual_seed(seed)
        popup = Popup(model, final, scope=_SCOPE[method], weight_init=weight_init, score_init=score_init,
                      generator=gen, rank=rank or _RANK[method])
        params = popup.parameters()
    opt_class = torch.optim.AdamW if optimizer == "adamw" else torch.optim.Adam
    opt = opt_class(params, lr=lr, weight_decay=weight_decay)

    state: dict[str, float] = {}

    def batch_fn(trainer: Trainer, _: Any) -> tuple[torch.Tensor, None, int]:
        """One full-batch step: the loss over the train nodes at this epoch's sparsity."""
        state["s_now"] = gradual_sparsity(trainer.epoch, final, epochs, ramp) if method == "ugts" else final
        if popup is not None:
            popup.set_sparsity(state["s_now"])
        logits = model(x, g.edge_index)
        return F.cross_entropy(logits[g.train_mask], g.y[g.train_mask]), None, 1

    @torch.no_grad()
    def evaluate_fn(trainer: Trainer, _: Any) -> dict[str, float]:
        """Accuracies on the three node splits, the masks at the final sparsity."""
        model.eval()
        if popup is not None:
            popup.set_sparsity(final)
        return {"sparsity": state["s_now"], **_accuracies(model(x, g.edge_index), g)}

    t0 = time.perf_counter()
    trainer = Trainer(model, None, opt, epochs=epochs, device=dev, amp=False, progress=progress,
                      batch_fn=batch_fn, evaluate_fn=evaluate_fn)
    history = [{"epoch": h["epoch"] - 1, "loss": h["train_loss"], "sparsity": h["sparsity"],
                **{k: h[k] for k in ("train_acc", "val_acc", "test_acc")}}
               for h in trainer.fit([None])]  # one batch: the whole graph
    best = max(history, key=lambda h: h["val_acc"])  # the first epoch of the best validation accuracy
    out = {"method": method, "kind": kind, "layers": layers, "hidden": hidden, "sparsity": final, "seed": seed,
           "optimizer": optimizer, "rank": None if popup is None else popup.rank,
           "test_acc": best["test_acc"], "val_acc": best["val_acc"], "best_epoch": best["epoch"],
           "final_test_acc": history[-1]["test_acc"], "history": history,
           "seconds": time.perf_counter() - t0}
    if popup is not None:
        popup.set_sparsity(final)
        popup.refresh()
        nnz = sum(int(m.sum()) for m in popup.masks().values())
        numel = sum(m.numel() for m in popup.masks().values())
        out.update(nnz=nnz, numel=numel, density=nnz / numel, expected_nnz=expected_nnz(popup, final),
                   zeros_exact=_pruned_are_zero(popup))
    else:
        numel = sum(p.numel() for p in model.parameters())
        out.update(nnz=numel, numel=numel, density=1.0, expected_nnz=numel, zeros_exact=True)
    return out


@torch.no_grad()
def _pruned_are_zero(popup: Popup) -> bool:
    """Every effective weight outside the masks is exactly 0."""
    from ..layers.scores import scorable_parameters
    for name, module, attr in scorable_parameters(popup.model):
        if bool((getattr(module, attr)[~popup.masks()[name]] != 0).any()):
            return False
    return True


# ---------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------


def summarize_runs(results: Sequence[dict], keys: Sequence[str] = ("method", "kind", "layers", "sparsity"),
                   metric: str = "test_acc") -> list[dict]:
    """Rows grouped by ``keys`` with ``<metric>_mean``, ``<metric>_std`` (0 for one seed), val_acc_mean, n
    (:func:`sparsenb.experiments.common.summarize`, numpy: the python sums of the record up to seven seeds)."""
    return summarize(results, keys, {metric: ("mean", "std"), "val_acc": ("mean",)}, backend="numpy")


def pick(rows: Sequence[dict], **where) -> dict:
    """The one summary row matching ``where`` (e.g. method="ugts", kind="gcn", sparsity=0.9)."""
    found = [r for r in rows if all(r.get(k) == v for k, v in where.items())]
    if len(found) != 1:
        raise KeyError(f"{len(found)} rows match {where}")
    return found[0]


def best_by_validation(rows: Sequence[dict], **where) -> dict:
    """Of the summary rows matching ``where``, the one with the highest mean validation accuracy
    (the first on ties): model selection that never looks at the test split."""
    found = [r for r in rows if all(r.get(k) == v for k, v in where.items())]
    if not found:
        raise KeyError(f"no rows match {where}")
    return max(found, key=lambda r: r["val_acc_mean"])


GRAPH_LABELS = {"cora": "Cora", "citeseer": "Citeseer", "pubmed": "Pubmed"}


def ugts_claims(summary: Sequence[dict], deep_chosen: Sequence[dict], cfg: dict,
                num_classes: int, majority: float | None = None) -> tuple[dict[str, float], list[dict]]:
    """The notebook's claims and the numbers behind them: ``(metrics, claims)``.

    ``summary``: :func:`summarize_runs` of the 2-layer sweep; ``deep_chosen``: per depth, the dense
    row and the UGTs row chosen on validation. Each claim is a dict for ``run.claim(**c)``; its text
    names the graph actually used (``cfg["DATASET"]``), and a comparison in which an arm sits at
    chance is ``inconclusive`` (:func:`sparsenb.nb.claims.comparison`; ``majority``, the share of
    the test nodes' most frequent class, counts as chance too: a deep GCN that over-smooths
    answers one class); one with nothing to compare (no swept sparsity >= ``HIGH_SPARSITY``) is
    ``not evaluated``.

    1. UGTs GCN (sparsity with the best mean validation accuracy) within ``MATCH_POINTS`` of the dense GCN;
    2. UGTs beats edge-popup on average over the swept (kind, sparsity >= ``HIGH_SPARSITY``);
    3. UGTs' accuracy drops less than dense's from the shallowest to the deepest GCN;
    4. UGTs above dense at every depth >= 16 (and at the deepest);
    5. claim 1's rule on every other swept kind (GAT, GIN).
    """
    on = f"on {GRAPH_LABELS.get(cfg['DATASET'], cfg['DATASET'])}"
    metrics, out = {}, []

    def add(text: str, id: str, holds: bool | None, arms: dict[str, float] | None, detail: str) -> None:
        state, reason = claims.comparison(bool(holds), arms, num_classes, majority=majority) if arms else (None, "")
        out.append({"text": text, "id": id, "holds": holds, "detail": detail, "state": state, "reason": reason})

    # 1
    chosen = best_by_validation(summary, method="ugts", kind="gcn")
    dense_gcn = pick(summary, method="dense", kind="gcn", layers=2)
    gap1 = chosen["test_acc_mean"] - dense_gcn["test_acc_mean"]
    metrics.update({"ugts/gcn/L2/val_best_sparsity": chosen["sparsity"],
                    "ugts/gcn/L2/val_best/test_acc_mean": chosen["test_acc_mean"],
                    "ugts/gcn/L2/val_best/test_acc_std": chosen["test_acc_std"], "ugts_minus_dense_gcn": gap1})
    add(f"An untrained sparse GCN (UGTs) matches the trained dense GCN {on}", "gcn_matches_dense",
        gap1 >= -cfg["MATCH_POINTS"] / 100, {"UGTs GCN": chosen["test_acc_mean"], "dense GCN": dense_gcn["test_acc_mean"]},
        f"{cfg['DATASET']}: UGTs GCN at sparsity {chosen['sparsity']:g} (best mean validation accuracy "
        f"{100 * chosen['val_acc_mean']:.2f}%) tests at {100 * chosen['test_acc_mean']:.2f} ± "
        f"{100 * chosen['test_acc_std']:.2f}% vs trained dense {100 * dense_gcn['test_acc_mean']:.2f} ± "
        f"{100 * dense_gcn['test_acc_std']:.2f}% ({100 * gap1:+.2f} points; threshold -{cfg['MATCH_POINTS']} "
        f"points); {cfg['SEEDS']} seeds, {cfg['EPOCHS']['gcn']} epochs")
    # 2
    pairs = [(r["kind"], r["sparsity"], r["test_acc_mean"],
              pick(summary, method="edgepopup", kind=r["kind"], layers=2, sparsity=r["sparsity"])["test_acc_mean"])
             for r in summary if r["method"] == "ugts" and r["sparsity"] >= cfg["HIGH_SPARSITY"]]
    text2 = f"UGTs beats edge-popup at high sparsity {on}"
    if pairs:
        gap2 = sum(u - e for _, _, u, e in pairs) / len(pairs)
        metrics["ugts_minus_edgepopup_high"] = gap2
        add(text2, "ugts_beats_edgepopup", gap2 > 0,
            {f"{who} {k.upper()} s={s:g}": a for k, s, u, e in pairs for who, a in (("UGTs", u), ("edge-popup", e))},
            "; ".join(f"{k.upper()} s={s:g}: UGTs {100 * u:.2f}% vs edge-popup {100 * e:.2f}% ({100 * (u - e):+.2f})"
                      for k, s, u, e in pairs) + f"; mean gap {100 * gap2:+.2f} points")
    else:
        out.append({"text": text2, "id": "ugts_beats_edgepopup", "holds": None, "detail": "", "state": claims.NOT_EVALUATED,
                    "reason": f"no swept sparsity is >= HIGH_SPARSITY = {cfg['HIGH_SPARSITY']}"})
    # 3
    lo_l, hi_l = min(cfg["DEPTHS"]), max(cfg["DEPTHS"])
    drops = {}
    for method in ("ugts", "dense"):
        lo = pick(deep_chosen, method=method, layers=lo_l)["test_acc_mean"]
        hi = pick(deep_chosen, method=method, layers=hi_l)["test_acc_mean"]
        drops[method] = (lo, hi, lo - hi)
        metrics[f"{method}/depth_drop"] = lo - hi
    metrics["deep_max_layers"] = hi_l
    add(f"UGTs degrades less with depth than trained dense (GCN {on})", "ugts_degrades_less", drops["ugts"][2] < drops["dense"][2],
        {f"{m} {L} layers": a for m, (lo, hi, _) in drops.items() for L, a in ((lo_l, lo), (hi_l, hi))},
        "; ".join(f"{m}: {lo_l} layers {100 * lo:.2f}% -> {hi_l} layers {100 * hi:.2f}% (drop {100 * d:.2f} points)"
                  for m, (lo, hi, d) in drops.items()) + f"; UGTs sparsity chosen on validation per depth; "
                                                         f"hidden {cfg['DEEP_HIDDEN']}, {cfg['DEEP_SEEDS']} seed(s)")
    # 4
    deep_pairs = [(L, pick(deep_chosen, method="ugts", layers=L), pick(deep_chosen, method="dense", layers=L))
                  for L in cfg["DEPTHS"] if L >= 16 or L == hi_l]
    add(f"Deep UGTs GCNs beat trained dense GCNs of the same depth (16 layers and more, {on})", "deep_ugts_beat_dense",
        all(u["test_acc_mean"] > d["test_acc_mean"] for _, u, d in deep_pairs),
        {f"{who} {L} layers": r["test_acc_mean"] for L, u, d in deep_pairs for who, r in (("UGTs", u), ("dense", d))},
        "; ".join(f"{L} layers: UGTs (sparsity {u['sparsity']:g}) {100 * u['test_acc_mean']:.2f}% vs dense "
                  f"{100 * d['test_acc_mean']:.2f}%" for L, u, d in deep_pairs))
    # 5
    for kind in [k for k in cfg["MODELS"] if k != "gcn"]:
        ch = best_by_validation(summary, method="ugts", kind=kind)
        dn = pick(summary, method="dense", kind=kind, layers=2)
        metrics[f"ugts/{kind}/L2/val_best_sparsity"] = ch["sparsity"]
        metrics[f"ugts/{kind}/L2/val_best/test_acc_mean"] = ch["test_acc_mean"]
        add(f"An untrained sparse {kind.upper()} (UGTs) matches the trained dense {kind.upper()} {on}",
            f"{kind}_matches_dense", ch["test_acc_mean"] - dn["test_acc_mean"] >= -cfg["MATCH_POINTS"] / 100,
            {f"UGTs {kind.upper()}": ch["test_acc_mean"], f"dense {kind.upper()}": dn["test_acc_mean"]},
            f"{cfg['DATASET']}: UGTs {kind.upper()} at sparsity {ch['sparsity']:g} (best validation) "
            f"{100 * ch['test_acc_mean']:.2f} ± {100 * ch['test_acc_std']:.2f}% vs trained dense "
            f"{100 * dn['test_acc_mean']:.2f} ± {100 * dn['test_acc_std']:.2f}%")
    return metrics, out


# ---------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------

_STYLE = {"ugts": dict(color="tab:red", marker="o", label="UGTs (global, gradual)"),
          "edgepopup": dict(color="tab:blue", marker="s", label="edge-popup (layerwise)"),
          "dense": dict(color="black", label="trained dense")}


def _plain_ticks(axis, values: Sequence[float]) -> None:
    """Major ticks at ``values`` labelled as plain numbers, no minor labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    axis.set_major_locator(FixedLocator(list(values)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


def plot_sweep(rows: Sequence[dict], kinds: Sequence[str], layers: int = 2, title: str = ""):
    """Test accuracy (mean ± std over seeds) vs sparsity, one panel per GNN kind; dense as a band."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(kinds), figsize=(4.6 * len(kinds), 3.6), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for method in ("ugts", "edgepopup"):
            pts = sorted((r["sparsity"], r["test_acc_mean"], r["test_acc_std"]) for r in rows
                         if r["method"] == method and r["kind"] == kind and r["layers"] == layers)
            if pts:
                s, m, e = zip(*pts)
                ax.errorbar(s, m, yerr=e, capsize=3, **_STYLE[method])
        dense = [r for r in rows if r["method"] == "dense" and r["kind"] == kind and r["layers"] == layers]
        if dense:
            d = dense[0]
            ax.axhline(d["test_acc_mean"], color="black", label="trained dense")
            ax.axhspan(d["test_acc_mean"] - d["test_acc_std"], d["test_acc_mean"] + d["test_acc_std"],
                       color="black", alpha=0.1)
        ax.set_xscale("logit")
        swept = sorted({r["sparsity"] for r in rows if r["kind"] == kind and r["method"] != "dense"})
        _plain_ticks(ax.xaxis, swept)
        ax.set_xlabel("sparsity (logit scale)")
        ax.set_ylabel("test accuracy (best validation epoch)")
        ax.set_title(f"{kind.upper()}, {layers} layers")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_depth(rows: Sequence[dict], kind: str = "gcn", title: str = ""):
    """Test accuracy vs number of layers, UGTs vs trained dense."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for method in ("ugts", "dense"):
        pts = sorted((r["layers"], r["test_acc_mean"], r["test_acc_std"]) for r in rows
                     if r["method"] == method and r["kind"] == kind)
        if pts:
            L, m, e = zip(*pts)
            ax.errorbar(L, m, yerr=e, capsize=3, **{**_STYLE[method], "marker": "o"})
    ax.set_xscale("log", base=2)
    _plain_ticks(ax.xaxis, sorted({r["layers"] for r in rows if r["kind"] == kind}))
    ax.set_xlabel("layers")
    ax.set_ylabel("test accuracy (best validation epoch)")
    ax.set_title(title or f"deep {kind.upper()}: over-smoothing")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_curves(results: Sequence[dict], title: str = ""):
    """Validation accuracy per epoch (left) and the sparsity schedule (right) of the given runs."""
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.5))
    for r in results:
        ep = [h["epoch"] for h in r["history"]]
        label = f"{r['method']} s={r['sparsity']:g} seed {r['seed']}"
        style = _STYLE[r["method"]]
        a1.plot(ep, [h["val_acc"] for h in r["history"]], color=style["color"], alpha=0.8, label=label)
        a2.plot(ep, [h["sparsity"] for h in r["history"]], color=style["color"], alpha=0.8, label=label)
    a1.set_xlabel("epoch")
    a1.set_ylabel("validation accuracy (at final sparsity)")
    a2.set_xlabel("epoch")
    a2.set_ylabel("training sparsity")
    for a in (a1, a2):
        a.grid(alpha=0.3)
    a1.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
