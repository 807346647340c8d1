"""Driver of the Sparseland primer (notebook 17): short live experiments, one per question of
Liu & Wang (2023), "Ten Lessons We Have Learned in the New 'Sparseland': A Short Handbook for
Sparse Neural Network Researchers", arXiv:2302.02596.

Every arm trains ``cfg["MODEL"]`` (LeNet-300-100 by default) on ``cfg["DATASET"]`` for the same
number of epochs with the same optimizer and schedule; sparse arms keep ``1 - SPARSITY`` of the
weights (the budget of every comparison). Units of work (each cached by the notebook's ``Run``):

* :func:`train_arm`: one training run of a named arm (see :data:`ARMS`) and one seed;
* :func:`dense_and_after`: the dense run, then from its trained weights every *after-training*
  pruning (magnitude to ``SPARSITY``; unstructured 50 %, 2:4 and channel 50 % for the structured
  comparison), each evaluated right after pruning and after ``FINETUNE_EPOCHS`` of fine-tuning;
* :func:`timing`: measured forward time of one batch through the dense net, the masked nets
  (zeros inside dense weights: the way ``sparsenb`` trains), CSR weights and the channel-pruned net
  compacted into a smaller dense one (:func:`sparsenb.core.pruning.compact_mlp`).

Training cost is counted in *dense-epoch equivalents*: the sum over epochs of the network's
density during that epoch (the Trainer's history), i.e. the fraction of a dense net's
multiply-accumulates an ideal sparse kernel would spend; after-training pruning adds the
fine-tuning epochs at the final density to the dense run's epochs.

:func:`claims` turns the summaries into one checkable statement per lesson. Its rules are fixed
here, before any run (margins from the spec: ``NEAR`` accuracy points, ``SPEEDUP`` and
``NO_SPEEDUP`` time ratios):

1. ``sparse_wide_beats_dense_narrow``: at every budget in ``EQUAL_PARAM_SPARSITIES`` the sparse
   (static random ERK) LeNet-300-100 beats a dense MLP of the same shape narrowed to the same
   number of weights.
2. ``unstructured_most_accurate``: right after pruning the trained dense net to density 0.5
   (no fine-tuning), unstructured magnitude >= 2:4 >= channel pruning in accuracy.
3. ``masks_give_no_speedup``: a masked net (unstructured 50 % or 2:4 as zeros in dense weights)
   runs no faster than dense: median time >= ``NO_SPEEDUP`` x dense.
4. ``channel_pruning_is_faster``: the channel-pruned (50 % of hidden units) net, compacted, takes
   <= ``SPEEDUP`` x the dense time.
5. ``sparse_training_matches_pruning``: RigL trained sparse from scratch reaches accuracy within
   ``NEAR`` of dense-train + magnitude prune + fine-tune at ``SPARSITY``, at less than half its
   training cost.
6. ``gmp_beats_sparse_to_sparse``: dense-to-sparse GMP beats both SET and RigL at the same epochs
   and final budget (its training cost is higher, reported).
7. ``dynamic_beats_static``: the better of SET and RigL beats a static random ERK mask.
8. ``later_pruning_is_better``: pruning after training (+ fine-tuning) >= during (GMP) >= before
   training (SNIP).
9. ``erk_beats_uniform``: a random ERK mask beats a random uniform mask at the same budget.
10. ``random_erk_near_snip``: a random ERK mask is within ``NEAR`` of SNIP at the same budget.
"""
from __future__ import annotations

import copy
import math
import time
from typing import Any, Sequence

import torch
from torch import nn

from .. import methods
from ..core.init import dense_init_
from ..core.masks import Masking, topk_mask
from ..core.pruning import channel_mask, compact_mlp, magnitude_prune, nm_mask
from ..data.registry import TensorData
from ..methods.imp import FixedMasks
from ..models import classic as models
from ..train.timing import csr_forward, time_interleaved
from ..train.trainer import Trainer, evaluate, make_optimizer, make_scheduler, set_seed
from .common import summarize as common_summarize
from .spec import settings_class

__all__ = ["Settings", "OURS", "ARMS", "LINKS", "narrow_hidden", "train_arm", "dense_and_after", "timing",
           "summarize", "claims", "lesson", "plot_section"]

Settings = settings_class("17_sparseland")  # typed, frozen; from specs/17_sparseland.json


def _pct(m: dict, key: str) -> str:
    v = m.get(key)
    return "—" if v is None else f"{100 * v:.2f} %"


OURS = {  # the README gallery's number of each claim id in the spec, from results.json's metrics m
    "sparse_wide_beats_dense_narrow": lambda m: f"sparse {_pct(m, 'acc/static_erk@0.9')} vs dense narrow {_pct(m, 'acc/dense_narrow@0.9')} (0.9)",
    "channel_pruning_is_faster": lambda m: (f"channel 50 % {m.get('time/channel50_compact/ratio', float('nan')):.2f}x, "
                                            f"2:4 masked {m.get('time/nm24_masked/ratio', float('nan')):.2f}x dense time"),
    "dynamic_beats_static": lambda m: f"SET {_pct(m, 'acc/set@0.9')}, RigL {_pct(m, 'acc/rigl@0.9')} vs static {_pct(m, 'acc/static_erk@0.9')}",
}

LINKS = {  # the method notebooks that go deeper, per section
    "equal_params": ["06_truly_sparse", "12_slak"],
    "structured": ["06_truly_sparse", "04_random_search"],
    "pruning_vs_sparse_training": ["03_lottery_tickets", "01_set_rigl"],
    "dense_to_sparse": ["01_set_rigl", "11_ugts"],
    "static_vs_dynamic": ["01_set_rigl", "07_ctre", "08_free_tickets", "09_sup_tickets"],
    "before_during_after": ["02_pruning_at_init", "03_lottery_tickets"],
    "layerwise_random": ["02_pruning_at_init", "05_pruning_fraction"],
}

ARMS = {  # arm name -> (method, options); "@s" in a name is its sparsity
    "static_erk": ("static", {"distribution": "erk"}),
    "static_uniform": ("static", {"distribution": "uniform"}),
    "set": ("set", {"distribution": "erk"}),
    "rigl": ("rigl", {"distribution": "erk"}),
    "gmp": ("gmp", {"distribution": "erk"}),
    "snip": ("snip", {"distribution": "erk", "scope": "global"}),
}


# ------------------------------------------------------------------ models
def narrow_hidden(in_features: int, hidden: Sequence[int], out_features: int, budget: int) -> list[int]:
    """Hidden widths ``round(c * h)`` of a dense MLP ``in -> hidden -> out`` with the largest ``c`` whose
    weight count (biases not counted) is at most ``budget``: a dense net of the same shape as a sparse one."""
    def weights(c: float) -> int:
        widths = [in_features, *[max(1, round(c * h)) for h in hidden], out_features]
        return sum(a * b for a, b in zip(widths[:-1], widths[1:]))

    lo, hi = 0.0, 1.0
    if weights(hi) <= budget:
        return list(hidden)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if weights(mid) <= budget else (lo, mid)
    return [max(1, round(lo * h)) for h in hidden]


def _hidden_of(model_name: str, data: TensorData) -> list[int]:
    model = models.build(model_name, data.input_shape, data.num_classes)
    return [m.out_features for m in model if isinstance(m, nn.Linear)][:-1]


def _model(cfg: dict, data: TensorData, hidden: Sequence[int] | None = None) -> nn.Sequential:
    if hidden is None:
        model = models.build(cfg["MODEL"], data.input_shape, data.num_classes)
    else:
        model = models.build("mlp", data.input_shape, data.num_classes, hidden=tuple(hidden))
    dense_init_(model, cfg["INIT"])
    return model


def _weights(model: nn.Module) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))


# ------------------------------------------------------------------ training
def _fit(model: nn.Module, method, data: TensorData, cfg: dict, seed: int, epochs: int, lr: float) -> tuple[Trainer, list]:
    opt = make_optimizer(model, "sgd", lr=lr, momentum=cfg["MOMENTUM"], weight_decay=cfg["WEIGHT_DECAY"])
    sched = make_scheduler(opt, cfg["SCHEDULE"], epochs)
    train_loader, _ = data.loaders(cfg["BATCH_SIZE"], seed=seed)
    trainer = Trainer(model, method, opt, epochs=epochs, scheduler=sched, device="cpu", progress=False,
                      init_data=train_loader)
    return trainer, trainer.fit(train_loader)


def _accuracy(model: nn.Module, data: TensorData) -> float:
    return evaluate(model, zip(data.X_test.split(2000), data.y_test.split(2000)))["acc"]


def train_arm(data: TensorData, cfg: dict, arm: str, seed: int) -> dict[str, Any]:
    """One run of arm ``"<name>@<sparsity>"`` (``name`` in :data:`ARMS`, or ``dense_narrow``: the dense MLP
    narrowed to the sparse net's weight count). Returns ``{"arm", "seed", "acc", "cost", "density",
    "nnz", "densities" (per epoch), "train_loss" (per epoch), "seconds"}``."""
    t0 = time.perf_counter()
    name, _, s = arm.partition("@")
    sparsity = float(s)
    set_seed(seed)
    if name == "dense_narrow":
        full = _model(cfg, data)
        budget = round((1 - sparsity) * _weights(full))
        in_features = next(m for m in full.modules() if isinstance(m, nn.Linear)).in_features
        hidden = narrow_hidden(in_features, _hidden_of(cfg["MODEL"], data), data.num_classes, budget)
        set_seed(seed)
        model, method = _model(cfg, data, hidden), None
    else:
        method_name, options = ARMS[name]
        opts = dict(options, sparsity=sparsity, seed=seed)
        if method_name == "set":
            opts.update(drop_fraction=cfg["ZETA"])
        if method_name == "rigl":
            opts.update(update_every=cfg["DELTA_T"], drop_fraction=cfg["ALPHA"], t_end=cfg["T_END"])
        if method_name == "gmp":
            opts.update(update_every=cfg["GMP_DELTA_T"], begin=cfg["GMP_BEGIN"], end=cfg["GMP_END"])
        model, method = _model(cfg, data), methods.get(method_name, **opts)
    trainer, hist = _fit(model, method, data, cfg, seed, cfg["EPOCHS"], cfg["LR"])
    nnz = trainer.masks.nnz() if trainer.masks is not None else _weights(model)
    return {"arm": arm, "seed": seed, "acc": _accuracy(model, data), "cost": sum(h["density"] for h in hist),
            "density": hist[-1]["density"], "nnz": nnz, "densities": [h["density"] for h in hist],
            "train_loss": [h["train_loss"] for h in hist], "hidden": [m.out_features for m in model if isinstance(m, nn.Linear)][:-1],
            "seconds": time.perf_counter() - t0}


def after_training_masks(model: nn.Module, kind: str, sparsity: float, cfg: dict) -> Masking:
    """Masks of one after-training pruning of a trained ``model``: ``"magnitude"`` (layer-wise ``DISTRIBUTION``
    counts, largest ``|w|``), ``"unstructured50"`` (the larger half of
    ``|w|`` in each layer), ``"nm"`` (``NM`` = [n, m]), ``"channel50"`` (half of every hidden layer's units by L1 norm; every density-0.5 arm keeps the output layer dense)."""
    masks = Masking(model)
    if kind == "magnitude":
        return magnitude_prune(model, masks, sparsity, scope="layerwise", distribution=cfg["DISTRIBUTION"])
    names = list(masks.params)[:-1]  # the output layer stays dense in the density-0.5 arms
    n, m = cfg["NM"]
    if kind == "unstructured50":  # the largest |w| of each layer, exactly half of them
        new = {name: topk_mask(masks.params[name].param.detach().abs(), masks[name].numel() // 2) for name in names}
    elif kind == "nm":
        new = {name: nm_mask(masks.params[name].param, n, m) for name in names}
    elif kind == "channel50":
        new = {name: channel_mask(masks.params[name].param, masks[name].shape[0] // 2) for name in names}
    else:
        raise ValueError(f"unknown after-training pruning {kind!r}")
    masks.set_masks(new)
    return masks


AFTER = ("magnitude", "unstructured50", "nm", "channel50")


def dense_and_after(data: TensorData, cfg: dict, seed: int) -> dict[str, Any]:
    """The dense run of ``seed`` and every after-training pruning of its weights (:data:`AFTER`),
    each evaluated before and after ``FINETUNE_EPOCHS`` of fine-tuning at ``FINETUNE_LR``.
    Returns ``{"dense": <train_arm-like row>, "after": {kind: {"acc_pruned", "acc", "density", "cost"}}}``."""
    t0 = time.perf_counter()
    set_seed(seed)
    model = _model(cfg, data)
    _, hist = _fit(model, None, data, cfg, seed, cfg["EPOCHS"], cfg["LR"])
    dense = {"arm": "dense@0.0", "seed": seed, "acc": _accuracy(model, data), "cost": float(len(hist)), "density": 1.0,
             "nnz": _weights(model), "densities": [1.0] * len(hist), "train_loss": [h["train_loss"] for h in hist],
             "seconds": time.perf_counter() - t0}
    after = {}
    for kind in AFTER:
        net = copy.deepcopy(model)
        masks = after_training_masks(net, kind, cfg["SPARSITY"], cfg)
        row = {"acc_pruned": _accuracy(net, data), "density": masks.density()}
        _, ft = _fit(net, FixedMasks(masks, seed=seed), data, cfg, seed, cfg["FINETUNE_EPOCHS"], cfg["FINETUNE_LR"])
        row.update(acc=_accuracy(net, data), cost=dense["cost"] + sum(h["density"] for h in ft))
        after[kind] = row
    return {"dense": dense, "after": after, "seconds": time.perf_counter() - t0}


def timing(data: TensorData, cfg: dict) -> dict[str, Any]:
    """Median forward time (ms) of one batch of ``TIMING_BATCH`` inputs, ``TIMING_REPEATS`` rounds timed
    round-robin over the nets (:func:`sparsenb.train.timing.time_interleaved`), through:
    the dense net, the masked nets (unstructured 50 %, N:M: zeros in dense weights), CSR weights at 50 % and
    at ``SPARSITY``, and the channel-pruned (50 %) net compacted into a smaller dense net. The weights are
    random (time does not depend on their values); each compact/CSR net is checked to compute what its masked
    net computes. Returns ``{arm: {"median_ms", "min_ms", "ratio" (to dense), "weights"}}``."""
    torch.manual_seed(0)
    dense = _model(cfg, data).eval()
    x = torch.randn(cfg["TIMING_BATCH"], *data.input_shape)
    nets: dict[str, Any] = {}
    nets["dense"] = (dense, dense)
    for kind, label in (("unstructured50", "unstructured50_masked"), ("nm", "nm24_masked"), ("channel50", "channel50_masked")):
        net = copy.deepcopy(dense)
        after_training_masks(net, kind, 0.5, cfg)
        nets[label] = (net, net)
    compact = compact_mlp(nets["channel50_masked"][0], {n: mp.mask for n, mp in Masking(nets["channel50_masked"][0]).params.items()})
    nets["channel50_compact"] = (compact, nets["channel50_masked"][0])
    nets["unstructured50_csr"] = (csr_forward(nets["unstructured50_masked"][0]), nets["unstructured50_masked"][0])
    hi = copy.deepcopy(dense)
    after_training_masks(hi, "magnitude", cfg["SPARSITY"], cfg)
    nets[f"magnitude{round(100 * cfg['SPARSITY'])}_csr"] = (csr_forward(hi), hi)
    with torch.no_grad():
        for label, (fn, reference) in nets.items():
            torch.testing.assert_close(fn(x), reference(x), rtol=1e-4, atol=1e-4)
    # round-robin: a change of the shared machine's load hits every net alike
    out = time_interleaved({label: (lambda fn=fn: fn(x)) for label, (fn, _) in nets.items()},
                           repeats=cfg["TIMING_REPEATS"], warmup=3)
    for label, (fn, reference) in nets.items():
        out[label]["weights"] = (_weights(fn) if isinstance(fn, nn.Module) else
                                 sum(int(m.weight.ne(0).sum()) for m in reference if isinstance(m, nn.Linear)))
    for label in out:
        out[label]["ratio"] = out[label]["median_ms"] / out["dense"]["median_ms"]
    return out


# ------------------------------------------------------------------ summaries
def summarize(rows: Sequence[dict], after: Sequence[dict]) -> dict[str, dict]:
    """``{arm: {"mean", "std", "n", "cost", "density"}}`` over seeds: the trained arms (``rows``, incl. the
    dense run) and the after-training prunings (``after``: one ``dense_and_after()["after"]`` per seed) as
    ``after_<kind>`` (fine-tuned) and ``after_<kind>/pruned`` (before fine-tuning); the statistics are
    :func:`sparsenb.experiments.common.summarize`'s."""
    long = [{"arm": r["arm"].replace("@0.0", ""), "acc": r["acc"], "cost": r["cost"], "density": r["density"]}
            for r in rows]
    for per_seed in after:
        for kind, r in per_seed.items():
            long.append({"arm": f"after_{kind}", "acc": r["acc"], "cost": r["cost"], "density": r["density"]})
            long.append({"arm": f"after_{kind}/pruned", "acc": r["acc_pruned"], "cost": 0.0, "density": r["density"]})
    return {s["arm"]: {"mean": s["acc_mean"], "std": s["acc_std"], "n": s["n"], "cost": s["cost_mean"],
                       "density": s["density_mean"]}
            for s in common_summarize(long, ("arm",), {"acc": ("mean", "std"), "cost": ("mean",), "density": ("mean",)})}


def _a(S: dict, arm: str) -> float:
    return S[arm]["mean"]


def claims(S: dict, T: dict, cfg: dict) -> list[dict]:
    """The lessons as checkable statements (rules in the module docstring), from the summaries ``S``
    (:func:`summarize`) and the timings ``T`` (:func:`timing`). Each item: ``{"id", "text", "holds",
    "detail", "acc"}``; ``acc`` (arm -> accuracy) is what :func:`sparsenb.nb.claims.comparison` checks
    for chance level (empty for the timing claims)."""
    s = cfg["SPARSITY"]
    on = f"({cfg['MODEL']}, {cfg['DATASET']}, {cfg['EPOCHS']} epochs, {cfg['SEEDS']} seed(s))"
    near = cfg["NEAR"]
    out = []

    def add(id_, text, holds, detail, arms):
        out.append({"id": id_, "text": f"{text} {on}", "holds": bool(holds), "detail": detail,
                    "acc": {a: _a(S, a) for a in arms}})

    budgets = cfg["EQUAL_PARAM_SPARSITIES"]
    wins = [_a(S, f"static_erk@{b}") > _a(S, f"dense_narrow@{b}") for b in budgets]
    add("sparse_wide_beats_dense_narrow", "At an equal number of weights a sparse (random ERK) net beats a dense net narrowed to that count, at every budget",
        all(wins), "; ".join(f"density {1 - b:g}: sparse {100 * _a(S, f'static_erk@{b}'):.2f} % vs dense narrow "
                            f"{100 * _a(S, f'dense_narrow@{b}'):.2f} %" for b in budgets),
        [a for b in budgets for a in (f"static_erk@{b}", f"dense_narrow@{b}")])
    u, nm, ch = (_a(S, f"after_{k}/pruned") for k in ("unstructured50", "nm", "channel50"))
    n, m = cfg["NM"]
    add("unstructured_most_accurate", f"Right after pruning to density 0.5, unstructured >= {n}:{m} >= channel pruning in accuracy",
        u >= nm >= ch, f"unstructured {100 * u:.2f} %, {n}:{m} {100 * nm:.2f} %, channel {100 * ch:.2f} % (no fine-tuning)",
        ["after_unstructured50/pruned", "after_nm/pruned", "after_channel50/pruned"])
    masked = {k: T[k]["ratio"] for k in ("unstructured50_masked", "nm24_masked")}
    add("masks_give_no_speedup", f"Masked sparsity (zeros in dense weights, unstructured 50 % or {n}:{m}) gives no speedup on this CPU: "
        f"time >= {cfg['NO_SPEEDUP']:g}x dense", all(v >= cfg["NO_SPEEDUP"] for v in masked.values()),
        ", ".join(f"{k} {v:.2f}x dense ({T[k]['median_ms']:.2f} vs {T['dense']['median_ms']:.2f} ms)" for k, v in masked.items()), [])
    r = T["channel50_compact"]["ratio"]
    add("channel_pruning_is_faster", f"A channel-pruned (50 % of hidden units) net compacted to smaller dense layers runs in <= {cfg['SPEEDUP']:g}x the dense time",
        r <= cfg["SPEEDUP"], f"{T['channel50_compact']['median_ms']:.2f} vs {T['dense']['median_ms']:.2f} ms ({r:.2f}x); "
        f"CSR at 50 %: {T['unstructured50_csr']['ratio']:.2f}x", [])
    rigl, after = S[f"rigl@{s}"], S["after_magnitude"]
    add("sparse_training_matches_pruning", f"RigL from scratch is within {100 * near:g} points of dense training + magnitude pruning + fine-tuning at sparsity {s:g}, at under half its training cost",
        rigl["mean"] >= after["mean"] - near and rigl["cost"] < 0.5 * after["cost"],
        f"RigL {100 * rigl['mean']:.2f} % at cost {rigl['cost']:.2f} dense epochs; prune after training {100 * after['mean']:.2f} % at cost {after['cost']:.2f}",
        [f"rigl@{s}", "after_magnitude"])
    g, se, ri = (_a(S, f"{k}@{s}") for k in ("gmp", "set", "rigl"))
    add("gmp_beats_sparse_to_sparse", f"Dense-to-sparse GMP beats sparse-to-sparse SET and RigL at sparsity {s:g} (same epochs, same final budget)",
        g > max(se, ri), f"GMP {100 * g:.2f} % (cost {S[f'gmp@{s}']['cost']:.2f}), SET {100 * se:.2f} % (cost {S[f'set@{s}']['cost']:.2f}), "
        f"RigL {100 * ri:.2f} % (cost {S[f'rigl@{s}']['cost']:.2f}) dense epochs", [f"gmp@{s}", f"set@{s}", f"rigl@{s}"])
    st = _a(S, f"static_erk@{s}")
    add("dynamic_beats_static", f"Dynamic sparsity (best of SET, RigL) beats a static random mask at sparsity {s:g}",
        max(se, ri) > st, f"SET {100 * se:.2f} %, RigL {100 * ri:.2f} %, static {100 * st:.2f} %", [f"set@{s}", f"rigl@{s}", f"static_erk@{s}"])
    before, during, aft = _a(S, f"snip@{s}"), g, after["mean"]
    add("later_pruning_is_better", f"At sparsity {s:g}, pruning after training (+ fine-tuning) >= during training (GMP) >= before training (SNIP)",
        aft >= during >= before, f"after {100 * aft:.2f} %, during {100 * during:.2f} %, before {100 * before:.2f} %",
        ["after_magnitude", f"gmp@{s}", f"snip@{s}"])
    eu, er = _a(S, f"static_uniform@{s}"), st
    add("erk_beats_uniform", f"A random mask with ERK layer-wise densities beats a random uniform mask at sparsity {s:g}",
        er > eu, f"ERK {100 * er:.2f} %, uniform {100 * eu:.2f} %", [f"static_erk@{s}", f"static_uniform@{s}"])
    sn = before
    add("random_erk_near_snip", f"Random pruning with ERK ratios is within {100 * near:g} points of SNIP at sparsity {s:g}",
        er >= sn - near, f"random ERK {100 * er:.2f} %, SNIP {100 * sn:.2f} %", [f"static_erk@{s}", f"snip@{s}"])
    return out


# ------------------------------------------------------------------ lessons
def _p(x: float) -> str:
    return f"{100 * x:.2f} %"


def lesson(section: str, S: dict, T: dict, cfg: dict, verdicts: dict[str, str]) -> str:
    """One paragraph (markdown) of what this run shows in ``section``, with its numbers; ``verdicts`` maps
    claim id -> state."""
    s = cfg["SPARSITY"]
    links = ", ".join(f"`notebooks/{n}.ipynb`" for n in LINKS[section])
    v = lambda i: f"**{verdicts.get(i, 'not evaluated')}**"
    acc = lambda arm: _p(S[f"{arm}@{s}"]["mean"])  # mean accuracy of an arm at the lesson's sparsity
    with_std = lambda arm: f"{acc(arm)} ± {100 * S[f'{arm}@{s}']['std']:.2f}"
    if section == "equal_params":
        parts = [f"density {1 - b:g}: sparse {_p(S[f'static_erk@{b}']['mean'])} vs dense narrow {_p(S[f'dense_narrow@{b}']['mean'])}"
                 for b in cfg["EQUAL_PARAM_SPARSITIES"]]
        text = (f"With the same number of weights, the sparse wide net and the dense narrow net compare as follows: {'; '.join(parts)} "
                f"(the full dense net: {_p(S['dense']['mean'])}). Claim *sparse beats dense at equal parameters*: {v('sparse_wide_beats_dense_narrow')}.")
    elif section == "structured":
        n, m = cfg["NM"]
        text = (f"At density 0.5, right after pruning the trained dense net: unstructured {_p(S['after_unstructured50/pruned']['mean'])}, "
                f"{n}:{m} {_p(S['after_nm/pruned']['mean'])}, channel {_p(S['after_channel50/pruned']['mean'])}; after {cfg['FINETUNE_EPOCHS']} epochs of "
                f"fine-tuning {_p(S['after_unstructured50']['mean'])}, {_p(S['after_nm']['mean'])}, {_p(S['after_channel50']['mean'])} "
                f"({v('unstructured_most_accurate')}). Measured time of one batch of {cfg['TIMING_BATCH']}: dense {T['dense']['median_ms']:.2f} ms, "
                f"masked unstructured {T['unstructured50_masked']['ratio']:.2f}x, masked {n}:{m} {T['nm24_masked']['ratio']:.2f}x, "
                f"CSR 50 % {T['unstructured50_csr']['ratio']:.2f}x, CSR {s:g} {T[f'magnitude{round(100 * s)}_csr']['ratio']:.2f}x, "
                f"channel-pruned and compacted {T['channel50_compact']['ratio']:.2f}x the dense time "
                f"(no speedup from masks: {v('masks_give_no_speedup')}; channel pruning faster: {v('channel_pruning_is_faster')}). "
                f"FLOPs would promise 0.5x for all three; only the structure a dense kernel can use delivers it here.")
    elif section == "pruning_vs_sparse_training":
        r, a = S[f"rigl@{s}"], S["after_magnitude"]
        text = (f"At sparsity {s:g}, pruning the trained dense net and fine-tuning it reaches {_p(a['mean'])} for "
                f"{a['cost']:.2f} dense-epoch equivalents of training; RigL, sparse from the first step, reaches {_p(r['mean'])} "
                f"for {r['cost']:.2f} ({r['cost'] / a['cost']:.2f}x the cost); static sparse training {_p(S[f'static_erk@{s}']['mean'])}. "
                f"Claim: {v('sparse_training_matches_pruning')}.")
    elif section == "dense_to_sparse":
        text = (f"GMP starts dense and prunes along the cubic schedule to sparsity {s:g}: {acc('gmp')} at a training "
                f"cost of {S[f'gmp@{s}']['cost']:.2f} dense epochs; sparse-to-sparse SET {acc('set')} and RigL "
                f"{acc('rigl')} at {S[f'rigl@{s}']['cost']:.2f}. Claim *GMP beats both*: {v('gmp_beats_sparse_to_sparse')}.")
    elif section == "static_vs_dynamic":
        text = (f"Same random ERK start, same budget: static {with_std('static_erk')}, SET {with_std('set')}, "
                f"RigL {with_std('rigl')} (std over seeds). Claim *dynamic beats static*: {v('dynamic_beats_static')}.")
    elif section == "before_during_after":
        text = (f"At sparsity {s:g}: before training (SNIP) {acc('snip')}, during (GMP) {acc('gmp')}, "
                f"after (magnitude + {cfg['FINETUNE_EPOCHS']} epochs of fine-tuning) {_p(S['after_magnitude']['mean'])}, "
                f"and after without fine-tuning {_p(S['after_magnitude/pruned']['mean'])}. Claim *later is better*: {v('later_pruning_is_better')}.")
    elif section == "layerwise_random":
        text = (f"Random masks at the same budget (sparsity {s:g}): uniform per layer {acc('static_uniform')}, "
                f"ERK {acc('static_erk')}; SNIP (a data-driven criterion, global) {acc('snip')}. "
                f"Claims: ERK beats uniform {v('erk_beats_uniform')}; random ERK within {100 * cfg['NEAR']:g} points of SNIP {v('random_erk_near_snip')}.")
    else:
        raise ValueError(f"unknown section {section!r}; sections: {sorted(LINKS)}")
    return f"**What our run shows.** {text} Deeper: {links}."


# ------------------------------------------------------------------ figures
def _bars(ax, S: dict, arms: Sequence[str], labels: Sequence[str], title: str, key: str = "mean",
          refs: Sequence[float] = ()) -> None:
    """Bars of the arms' test accuracy (%), with the std over seeds when ``key == "mean"``. The y-range
    covers every error bar and the reference levels ``refs`` (%, lines the caller draws), and each value
    is written above its error bar."""
    vals = [100 * S[a][key] for a in arms]
    errs = [100 * S[a]["std"] for a in arms] if key == "mean" else [0.0] * len(arms)
    ax.bar(range(len(arms)), vals, yerr=errs if key == "mean" else None,
           color=[f"C{i}" for i in range(len(arms))], capsize=3)
    ax.set_xticks(range(len(arms)), labels, rotation=20, ha="right")
    lo = min([v - e for v, e in zip(vals, errs)] + list(refs))
    hi = max([v + e for v, e in zip(vals, errs)] + list(refs))
    ax.set_ylim(max(0, lo - 5), min(100, hi + 2))
    for i, (val, err) in enumerate(zip(vals, errs)):
        ax.text(i, val + err, f"{val:.1f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)


def plot_section(section: str, S: dict, T: dict, cfg: dict, rows: Sequence[dict] = (),
                 input_shape: Sequence[int] = (1, 28, 28)):
    """The figure of one section (matplotlib); ``rows`` are the per-seed runs (for training curves),
    ``input_shape`` the data's (for the per-layer densities)."""
    import matplotlib.pyplot as plt

    s = cfg["SPARSITY"]
    if section == "equal_params":
        fig, ax = plt.subplots(figsize=(6, 3.4))
        arms, labels = [], []
        for b in cfg["EQUAL_PARAM_SPARSITIES"]:
            arms += [f"dense_narrow@{b}", f"static_erk@{b}"]
            labels += [f"dense narrow\n(density {1 - b:g})", f"sparse wide\n(density {1 - b:g})"]
        _bars(ax, S, arms, labels, "equal number of weights", refs=[100 * S["dense"]["mean"]])
        ax.axhline(100 * S["dense"]["mean"], color="k", ls="--", lw=1, label="full dense")
        ax.legend(fontsize=8)
    elif section == "structured":
        n, m = cfg["NM"]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
        kinds, labels = ["unstructured50", "nm", "channel50"], ["unstructured 50 %", f"{n}:{m}", "channel 50 %"]
        x = range(len(kinds))
        a1.bar([i - 0.2 for i in x], [100 * S[f"after_{k}/pruned"]["mean"] for k in kinds], 0.4, label="right after pruning")
        a1.bar([i + 0.2 for i in x], [100 * S[f"after_{k}"]["mean"] for k in kinds], 0.4, label=f"+{cfg['FINETUNE_EPOCHS']} epochs fine-tuning")
        a1.axhline(100 * S["dense"]["mean"], color="k", ls="--", lw=1, label="dense")
        a1.set_xticks(list(x), labels)
        a1.set_ylabel("test accuracy (%)")
        a1.set_ylim(max(0, 100 * min(S[f"after_{k}/pruned"]["mean"] for k in kinds) - 5), 100)
        a1.legend(fontsize=8)
        a1.set_title("accuracy at density 0.5", fontsize=10)
        order = list(T)
        a2.barh(range(len(order)), [T[k]["median_ms"] for k in order], color=["k"] + [f"C{i}" for i in range(len(order) - 1)])
        a2.set_yticks(range(len(order)), [f"{k} ({T[k]['ratio']:.2f}x)" for k in order], fontsize=8)
        a2.invert_yaxis()
        a2.set_xlabel(f"median forward time, batch {cfg['TIMING_BATCH']} (ms, this machine)")
        a2.set_title("measured time, not FLOPs", fontsize=10)
    elif section == "pruning_vs_sparse_training":
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for arm, label in (("dense", "dense"), ("after_magnitude", "dense + prune + fine-tune"), (f"rigl@{s}", "RigL"),
                           (f"set@{s}", "SET"), (f"static_erk@{s}", "static"), (f"gmp@{s}", "GMP"), (f"snip@{s}", "SNIP")):
            ax.errorbar(S[arm]["cost"], 100 * S[arm]["mean"], yerr=100 * S[arm]["std"], fmt="o", capsize=3, label=label)
        ax.set_xlabel("training cost (dense-epoch equivalents)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"accuracy vs training cost, sparsity {s:g}", fontsize=10)
        ax.legend(fontsize=7)
    elif section == "dense_to_sparse":
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4))
        for arm, label in ((f"gmp@{s}", "GMP (dense-to-sparse)"), (f"set@{s}", "SET"), (f"rigl@{s}", "RigL")):
            r = next(x for x in rows if x["arm"] == arm and x["seed"] == 0)
            a1.plot(range(1, len(r["densities"]) + 1), r["densities"], marker="o", ms=3, label=label)
            a2.plot(range(1, len(r["train_loss"]) + 1), r["train_loss"], marker="o", ms=3, label=label)
        a1.set_xlabel("epoch"); a1.set_ylabel("density at the end of the epoch"); a1.legend(fontsize=8)
        a1.set_title("density during training (seed 0)", fontsize=10)
        a2.set_xlabel("epoch"); a2.set_ylabel("training loss"); a2.set_yscale("log"); a2.legend(fontsize=8)
        a2.set_title("training loss (seed 0)", fontsize=10)
    elif section == "static_vs_dynamic":
        fig, ax = plt.subplots(figsize=(5, 3.4))
        _bars(ax, S, [f"static_erk@{s}", f"set@{s}", f"rigl@{s}"], ["static", "SET", "RigL"], f"sparsity {s:g}, same ERK start")
    elif section == "before_during_after":
        fig, ax = plt.subplots(figsize=(6, 3.4))
        _bars(ax, S, [f"snip@{s}", f"gmp@{s}", "after_magnitude/pruned", "after_magnitude"],
              ["before (SNIP)", "during (GMP)", "after, no FT", "after + FT"], f"when is the sparsity chosen? (sparsity {s:g})")
    elif section == "layerwise_random":
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4))
        _bars(a1, S, [f"static_uniform@{s}", f"static_erk@{s}", f"snip@{s}"], ["random uniform", "random ERK", "SNIP"],
              f"equal budget, sparsity {s:g}")
        from ..core.distributions import layer_nnz
        shapes = {f"layer {i}": tuple(mod.weight.shape) for i, mod in
                  enumerate(m for m in models.build(cfg["MODEL"], input_shape, 10).modules() if isinstance(m, nn.Linear))}
        for k, kind in enumerate(("uniform", "erk")):
            nnz = layer_nnz(shapes, 1 - s, kind)
            a2.bar([i + 0.4 * k for i in range(len(nnz))], [nnz[n] / math.prod(shapes[n]) for n in shapes], 0.4, label=kind)
        a2.set_xticks([i + 0.2 for i in range(len(shapes))], list(shapes))
        a2.set_ylabel("layer density"); a2.legend(fontsize=8)
        a2.set_title("per-layer density at the same total budget", fontsize=10)
    else:
        raise ValueError(f"unknown section {section!r}")
    fig.tight_layout()
    return fig
