"""FreeTickets: dense ensembles, DST ensembles and EDST, evaluated for accuracy, uncertainty and cost.

Liu, Chen, Atashgahi, Chen, Sokar, Mocanu, Pechenizkiy, Wang, Mocanu (2022), "Deep Ensembling
with No Overhead for either Training or Testing: The All-Round Blessings of Dynamic Sparsity",
ICLR 2022.

The driver of ``notebooks/08_free_tickets.ipynb``. One unit of work is one training run
(:func:`train_member`):

* ``"dense"``: a dense network (one member of the dense ensemble; member 0 is "single dense");
* ``"dst"``: one independent dynamic sparse training run (RigL-style: magnitude drop, gradient
  growth, cosine-decayed drop fraction, :class:`sparsenb.methods.rigl.RigL` with ``t_end = 1``,
  the official ``main_DST.py``); M of them with different seeds form the **DST ensemble**;
* ``"edst"``: one EDST run (:class:`sparsenb.methods.edst.EDST`) that yields M tickets, the
  **EDST ensemble**.

An ensemble predicts by averaging its members' softmax outputs. Each run returns its members'
test-set probabilities and masks (compactly encoded, so :meth:`sparsenb.nb.record.Run.cached` can
store them as JSON) and what its training cost: optimizer steps, batch size, dense-gradient
steps, forward MACs (dense and sparse, :mod:`sparsenb.train.flops`) and the ITOP rate
(:class:`sparsenb.train.metrics.ITOPTracker`).
"""
from __future__ import annotations

import base64
import time
from typing import Any, Sequence

import numpy as np
import torch

from ..train import calibration, flops, metrics
from .. import methods
from ..models import classic as models
from ..train.augment import RandomCropFlip
from ..data.registry import TensorData
from ..train.trainer import Trainer, make_optimizer, make_scheduler, set_seed
from .spec import settings_class

__all__ = ["Settings", "OURS", "KINDS", "encode_tensor", "decode_tensor", "pack_masks", "unpack_masks", "train_member",
           "member_seeds", "evaluate_arms", "training_costs", "plot_reliability", "plot_cost_quality",
           "plot_edst_phases", "edst_beats_dense", "tickets_diverse", "record_rows", "reliability_rows"]

Settings = settings_class("08_free_tickets")  # typed, frozen; from specs/08_free_tickets.json
def _edst_vs_dense(m: dict, p: str) -> str:
    """08_free_tickets gallery cell: EDST ensemble vs single dense (mean ± std) on dataset prefix ``p``."""
    return ("acc {} vs {} %, NLL {} vs {}, ECE {} vs {} at {:.2f}x dense "
            "training FLOPs (mean ± std over {} seeds)").format(
        *(f"{m.get(p + a + k, float('nan')):{f}} ± {m.get(p + a + k + '_std', float('nan')):{f}}"
          for k, f in (("acc", ".2f"), ("nll", ".3f"), ("ece", ".3f"))
          for a in ("edst_ensemble/", "single_dense/")),
        m.get(p + "edst_ensemble/train_flops", float("nan")), m.get("seeds"))


OURS = {  # the README gallery's number of each claim id in the spec, from results.json's metrics m
    "edst_beats_dense/mnist5k": lambda m: _edst_vs_dense(m, "mnist5k/"),
    "edst_beats_dense/cifar10-jpeg": lambda m: _edst_vs_dense(m, "cifar10-jpeg/"),
    "tickets_diverse/cifar10-jpeg": lambda m, p="cifar10-jpeg/": "disagreement {} vs {} (DST ensemble); mask distance {} vs {}" .format( *(f"{m.get(p + a + k, float('nan')):.3f} ± {m.get(p + a + k + '_std', float('nan')):.3f}" for k in ("disagreement", "mask_distance") for a in ("edst_ensemble/", "dst_ensemble/"))),
}

KINDS = ("dense", "dst", "edst")
ARMS: dict[str, tuple[str, dict[str, str], dict[str, Any]]] = {
    # kind -> (registered method, extra setting names for methods.build, fixed options)
    "dense": ("dense", {}, {}),
    "dst": ("rigl", {"DROP_FRACTION": "drop_fraction"}, {"t_end": 1.0, "grow": "zero"}),
    "edst": ("edst", {}, {}),
}
"""How each kind of run is built: DST is RigL with the notebook's ``DROP_FRACTION``, no freezing
(``t_end = 1``) and zero-initialised growth; EDST reads ``M``, ``EXPLORE_EPOCHS``, ``REFINE_EPOCHS``,
``DELTA_T``, ``DROP_FRACTION``, ``LARGE_DROP``, ``GROWTH`` itself (its ``SETTINGS``)."""


# ------------------------------------------------------------------ encoding
def encode_tensor(t: torch.Tensor) -> dict:
    """A float tensor as ``{"shape", "b64"}`` of its float32 bytes (JSON-storable, exact in float32)."""
    arr = t.detach().cpu().to(torch.float32).numpy()
    return {"shape": list(arr.shape), "b64": base64.b64encode(arr.tobytes()).decode()}


def decode_tensor(d: dict) -> torch.Tensor:
    """Inverse of :func:`encode_tensor` (float32)."""
    arr = np.frombuffer(base64.b64decode(d["b64"]), dtype=np.float32).reshape(d["shape"])
    return torch.from_numpy(arr.copy())


def pack_masks(masks: dict[str, torch.Tensor]) -> dict:
    """Bool masks as ``{name: {"shape", "b64"}}`` of their bits (``numpy.packbits``)."""
    out = {}
    for name, m in masks.items():
        bits = np.packbits(m.detach().cpu().numpy().astype(bool).reshape(-1))
        out[name] = {"shape": list(m.shape), "b64": base64.b64encode(bits.tobytes()).decode()}
    return out


def unpack_masks(d: dict) -> dict[str, torch.Tensor]:
    """Inverse of :func:`pack_masks`."""
    out = {}
    for name, v in d.items():
        n = int(np.prod(v["shape"]))
        bits = np.unpackbits(np.frombuffer(base64.b64decode(v["b64"]), dtype=np.uint8))[:n]
        out[name] = torch.from_numpy(bits.astype(bool)).reshape(v["shape"])
    return out


# --------------------------------------------------------------------- train
def member_seeds(kind: str, seed: int, m: int) -> list[int]:
    """Seeds of the training runs of ensemble ``seed``: ``M`` runs for dense / DST, one for EDST."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if methods.METHODS[ARMS[kind][0]].yields_ensemble:
        return [seed]  # one run yields the whole ensemble
    return [seed * m + j for j in range(m)]


def _method(kind: str, common: dict, setting: dict, seed: int) -> methods.Method:
    name, names, options = ARMS[kind]
    return methods.build(name, {**common, **setting, "seed": seed, **options}, names)


def train_member(data: TensorData, setting: dict, common: dict, kind: str, seed: int, device: str = "auto",
                 progress: bool = True) -> dict[str, Any]:
    """One training run of ``kind`` ("dense", "dst" or "edst") with ``seed``; a JSON-storable summary.

    ``setting``: per-data-set keys ``MODEL``, ``MODEL_KW``, ``EPOCHS`` (dense and each DST run),
    ``EXPLORE_EPOCHS``, ``REFINE_EPOCHS``, ``DELTA_T``, ``BATCH_SIZE``, ``LR``, ``AUGMENT``.
    ``common``: ``M``, ``SPARSITY``, ``DISTRIBUTION``, ``DROP_FRACTION``, ``LARGE_DROP``,
    ``GROWTH``, ``MOMENTUM``, ``WEIGHT_DECAY``.

    Dense and DST runs use SGD with the step schedule (x0.1 at 50 % and 75 % of training, as the
    official ``main_DST.py``); a method with its own schedule (EDST: ``lr_schedule``, i.e.
    :func:`~sparsenb.methods.edst.edst_lr_factor`) and length (``training_epochs``) uses those.

    Returns ``{"kind", "seed", "train_loss" (per epoch), "members": [{"probs", "masks",
    "forward_macs"}] (one for dense/DST, M tickets for EDST; probabilities (N_test, C) and packed
    masks, see :func:`encode_tensor`, :func:`pack_masks`), "f_dense", "steps", "batch_size",
    "dense_grad_steps", "itop", "density", "epochs", "seconds"}``.
    """
    t0 = time.perf_counter()
    set_seed(seed)
    model = models.build(setting["MODEL"], data.input_shape, data.num_classes, **setting.get("MODEL_KW", {}))
    method = _method(kind, common, setting, seed)
    epochs = method.training_epochs(setting["EPOCHS"])
    opt = make_optimizer(model, "sgd", lr=setting["LR"], momentum=common["MOMENTUM"],
                         weight_decay=common["WEIGHT_DECAY"])
    lr_factor = method.lr_schedule()
    if lr_factor is not None:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    else:
        sched = make_scheduler(opt, "step", epochs)
    trainer = Trainer(model, method, opt, epochs=epochs, scheduler=sched, device=device, progress=progress,
                      augment=RandomCropFlip(seed=seed) if setting.get("AUGMENT") else None)
    pin = trainer.device.type == "cuda"
    train_loader, test_loader = data.loaders(setting["BATCH_SIZE"], seed=seed, pin_memory=pin)
    tracker = metrics.ITOPTracker(trainer.masks).attach(opt) if trainer.masks is not None else None
    history = trainer.fit(train_loader)
    example = data.X_train[:2].to(trainer.device)
    f_dense = flops.forward_macs(model, example, masked=False)
    states = method.snapshots()
    members = []
    for state in states:
        if state is not None:
            model.load_state_dict(state)
        probs, _ = calibration.predict_probs(model, test_loader, trainer.device)
        masks = {mp.name: mp.mask for mp in trainer.masks} if trainer.masks is not None else {}
        members.append({"probs": encode_tensor(probs), "masks": pack_masks(masks),
                        "forward_macs": flops.forward_macs(model, example, masked=True)})
    dense_grad = method.dense_gradient_steps()
    return {"kind": kind, "seed": seed, "train_loss": [h["train_loss"] for h in history], "members": members,
            "f_dense": f_dense, "steps": trainer.step, "batch_size": setting["BATCH_SIZE"],
            "dense_grad_steps": dense_grad, "itop": tracker.rate() if tracker is not None else 1.0,
            "density": trainer.masks.density() if trainer.masks is not None else 1.0,
            "reexplorations": len({e["step"] for e in method.events if e.get("kind") == "reexplore"}),
            "epochs": epochs, "seconds": time.perf_counter() - t0}


# ------------------------------------------------------------------ evaluate
def _train_cost(run: dict) -> float:
    f_d = run["f_dense"]
    if run["kind"] == "dense":
        return flops.sparse_run_macs(run["steps"], run["batch_size"], f_d)
    return flops.sparse_run_macs(run["steps"], run["batch_size"], run["members"][0]["forward_macs"], f_d,
                                 run["dense_grad_steps"])


def _mean_std(vals: Sequence[float]) -> tuple[float, float]:
    t = torch.tensor([float(v) for v in vals], dtype=torch.float64)
    return float(t.mean()), float(t.std()) if len(vals) > 1 else 0.0


def evaluate_arms(runs: dict[str, list[list[dict]]], y_test: torch.Tensor, n_bins: int = 15) -> list[dict]:
    """One row per arm: single dense, dense ensemble, single DST, DST ensemble, EDST ticket, EDST ensemble.

    ``runs[kind][s]``: the training runs (outputs of :func:`train_member`) of ensemble ``s`` of
    ``kind``. Single-model rows average the metrics of every individual member; ensemble rows
    average over the ensembles (``s``). Costs are relative to one dense training run (the mean
    over dense runs); inference cost is per example, relative to one dense forward pass. A single
    EDST ticket is charged the whole EDST run (it is a by-product of that run).

    Row keys: ``arm, n, acc, acc_std, nll, nll_std, ece, ece_std, brier, brier_std, train_flops,
    infer_flops, itop, disagreement, disagreement_std, mask_distance, mask_distance_std, per_seed``
    (``*_std``: sample std over the row's items, i.e. over the individual models of a single-model
    arm and over the seeds of an ensemble arm; ``disagreement``/``mask_distance``: mean over member
    pairs of an ensemble, ``None`` for single models and dense masks). ``per_seed[key]`` lists one
    value per seed ``s``: the ensemble's metric, or for a single-model arm the mean over the M
    models trained for seed ``s`` (the paired comparisons of :func:`edst_beats_dense`). ``probs``
    holds the first ensemble's (or member's) probabilities for the reliability diagram.
    """
    dense_cost = float(np.mean([_train_cost(r) for ens in runs["dense"] for r in ens]))
    f_dense = runs["dense"][0][0]["f_dense"]
    rows = []
    for kind, single, ensemble in (("dense", "single dense", "dense ensemble"),
                                   ("dst", "single DST", "DST ensemble"),
                                   ("edst", "EDST ticket", "EDST ensemble")):
        ens_members = [[(m, r) for r in ens for m in r["members"]] for ens in runs[kind]]
        singles = [calibration.summary(decode_tensor(m["probs"]), y_test, n_bins) | {
            "train": _train_cost(r), "infer": m["forward_macs"], "itop": r["itop"], "seed": s,
            "probs": decode_tensor(m["probs"])} for s, ens in enumerate(ens_members) for m, r in ens]
        rows.append(_row(single, singles, dense_cost, f_dense))
        ensembles = []
        for s, (ens, group) in enumerate(zip(ens_members, runs[kind])):
            probs = [decode_tensor(m["probs"]) for m, _ in ens]
            p = calibration.ensemble_probs(probs)
            masks = [unpack_masks(m["masks"]) for m, _ in ens]
            ensembles.append(calibration.summary(p, y_test, n_bins) | {
                "train": sum(_train_cost(r) for r in group), "infer": sum(m["forward_macs"] for m, _ in ens),
                "itop": float(np.mean([r["itop"] for r in group])), "probs": p, "seed": s,
                "disagreement": metrics.pairwise_mean(probs, metrics.disagreement) if len(probs) > 1 else None,
                "mask_distance": (metrics.pairwise_mean(masks, metrics.mask_distance)
                                  if len(masks) > 1 and masks[0] else None)})
        rows.append(_row(ensemble, ensembles, dense_cost, f_dense))
    return rows


def _row(arm: str, items: list[dict], dense_cost: float, f_dense: float) -> dict:
    row: dict[str, Any] = {"arm": arm, "n": len(items)}
    for key in ("acc", "nll", "ece", "brier"):
        row[key], row[f"{key}_std"] = _mean_std([it[key] for it in items])
    row["train_flops"] = float(np.mean([it["train"] for it in items])) / dense_cost
    row["infer_flops"] = float(np.mean([it["infer"] for it in items])) / f_dense
    row["itop"] = float(np.mean([it["itop"] for it in items]))
    for key in ("disagreement", "mask_distance"):
        vals = [it[key] for it in items if it.get(key) is not None]
        row[key], row[f"{key}_std"] = _mean_std(vals) if vals else (None, None)
    seeds = sorted({it["seed"] for it in items})
    row["per_seed"] = {}
    for key in ("acc", "nll", "ece", "brier", "train", "disagreement", "mask_distance"):
        per = [[it[key] for it in items if it["seed"] == s and it.get(key) is not None] for s in seeds]
        if all(per):
            scale = dense_cost if key == "train" else 1.0
            row["per_seed"]["train_flops" if key == "train" else key] = [float(np.mean(v)) / scale for v in per]
    row["probs"] = items[0]["probs"]
    return row


def training_costs(runs: dict[str, list[list[dict]]], delta_t: int) -> dict[str, float]:
    """Training MACs relative to one dense run, for the runs made and for the usual baselines.

    Measured: ``dense`` (one run), ``dense ensemble``, ``DST (one run)``, ``DST ensemble``,
    ``EDST ensemble``. Computed from the same forward costs and the dense run's step count
    (RigL App. H): ``static sparse`` and ``SET`` (``3 f_S`` per step) and ``RigL`` (one
    dense-gradient step every ``delta_t``).
    """
    dense = runs["dense"][0][0]
    f_d, f_s = dense["f_dense"], runs["dst"][0][0]["members"][0]["forward_macs"]
    examples = dense["steps"] * dense["batch_size"]
    base = _train_cost(dense)
    out = {"dense": 1.0,
           "static sparse": flops.training_macs(methods.get("static"), examples, f_s) / base,
           "SET": flops.training_macs(methods.get("set"), examples, f_s) / base,
           "RigL": flops.training_macs(methods.get("rigl", update_every=delta_t), examples, f_s, f_d) / base,
           "dense ensemble": float(np.mean([sum(_train_cost(r) for r in e) for e in runs["dense"]])) / base,
           "DST (one run)": float(np.mean([_train_cost(r) for e in runs["dst"] for r in e])) / base,
           "DST ensemble": float(np.mean([sum(_train_cost(r) for r in e) for e in runs["dst"]])) / base,
           "EDST ensemble": float(np.mean([_train_cost(e[0]) for e in runs["edst"]])) / base}
    return out


def edst_beats_dense(rows: list[dict]) -> tuple[bool, str]:
    """The FreeTickets claim on one data set: the EDST ensemble has higher accuracy, lower NLL and
    lower ECE than a single dense model, at training FLOPs <= one dense run. Returns (holds, detail).

    Rule (fixed before the runs): "beats" in a metric means the mean over seeds of the difference
    (EDST ensemble of seed ``s`` minus the mean single dense model of seed ``s``) is in the
    favourable direction **and** the difference has that sign in every seed; the training-FLOPs
    condition must hold in every seed. With one seed this reduces to the plain comparison.
    """
    r = {row["arm"]: row for row in rows}
    e, d = r["EDST ensemble"], r["single dense"]
    es, ds = e["per_seed"], d["per_seed"]
    if len(es["acc"]) != len(ds["acc"]):
        raise ValueError(f"EDST has {len(es['acc'])} seeds but single dense {len(ds['acc'])}; pair them by seed")
    checks, parts = {}, []
    for key, name, sign in (("acc", "accuracy", 1.0), ("nll", "NLL", -1.0), ("ece", "ECE", -1.0)):
        diffs = [a - b for a, b in zip(es[key], ds[key])]
        checks[name] = bool(sign * float(np.mean(diffs)) > 0 and all(sign * x > 0 for x in diffs))
        parts.append(f"{name} diff {float(np.mean(diffs)):+.4f} (per seed "
                     + ", ".join(f"{x:+.4f}" for x in diffs) + ")")
    checks["training FLOPs <= 1x dense"] = all(x <= 1.0 for x in es["train_flops"])
    detail = (f"EDST ensemble acc {e['acc']:.2f} ± {e['acc_std']:.2f} % / NLL {e['nll']:.4f} ± {e['nll_std']:.4f} / "
              f"ECE {e['ece']:.4f} ± {e['ece_std']:.4f} at {e['train_flops']:.2f}x dense training FLOPs vs single "
              f"dense {d['acc']:.2f} ± {d['acc_std']:.2f} % / NLL {d['nll']:.4f} ± {d['nll_std']:.4f} / "
              f"ECE {d['ece']:.4f} ± {d['ece_std']:.4f} ({len(es['acc'])} seeds, mean ± std); "
              + "; ".join(parts) + "; "
              + ", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in checks.items()))
    return all(checks.values()), detail


def tickets_diverse(rows: list[dict], ratio: float = 0.5) -> tuple[bool, str]:
    """The diversity claim, made testable: the EDST tickets' mean pairwise prediction disagreement
    and mask distance are each at least ``ratio`` times those of the independently trained DST
    ensemble members (the most diverse sparse ensemble here). Decided on the means over seeds;
    the per-seed ratios are reported in the detail. Returns (holds, detail)."""
    r = {row["arm"]: row for row in rows}
    e, d = r["EDST ensemble"], r["DST ensemble"]
    dis, dist = e["disagreement"] / d["disagreement"], e["mask_distance"] / d["mask_distance"]
    per = [a / b for a, b in zip(e["per_seed"]["disagreement"], d["per_seed"]["disagreement"])]
    detail = (f"EDST tickets: disagreement {e['disagreement']:.4f} ± {e['disagreement_std']:.4f}, mask distance "
              f"{e['mask_distance']:.4f} ± {e['mask_distance_std']:.4f}; independent DST runs: "
              f"{d['disagreement']:.4f} ± {d['disagreement_std']:.4f}, {d['mask_distance']:.4f} ± "
              f"{d['mask_distance_std']:.4f}; ratios of the seed means {dis:.2f} and {dist:.2f} (threshold {ratio}); "
              f"per-seed disagreement ratios " + ", ".join(f"{x:.2f}" for x in per)
              + f"; dense ensemble disagreement {r['dense ensemble']['disagreement']:.4f}")
    return bool(dis >= ratio and dist >= ratio), detail


def record_rows(run: Any, prefix: str, rows: list[dict], costs: dict[str, float]) -> None:
    """``run.record`` every number of the table (``<prefix>/<arm_slug>/<metric>``) and of the costs
    (``<prefix>/train_flops/<name>``); ``arm_slug`` is the arm in lower case with ``_`` for spaces."""
    for row in rows:
        slug = row["arm"].lower().replace(" ", "_")
        for key, value in row.items():
            if key not in ("arm", "probs") and value is not None:
                run.record(f"{prefix}/{slug}/{key}", value)
    for name, value in costs.items():
        run.record(f"{prefix}/train_flops/{name.lower().replace(' ', '_')}", value)


# ---------------------------------------------------------------------- plots
def plot_reliability(rows_by_data: dict[str, list[dict]], y_by_data: dict[str, torch.Tensor],
                     arms: Sequence[str] = ("single dense", "dense ensemble", "DST ensemble", "EDST ensemble"),
                     n_bins: int = 15):
    """Reliability diagrams (accuracy vs confidence per bin), one panel per data set.

    Each curve is the first seed's model or ensemble (``row["probs"]``); the ECE in the legend is
    the row's mean over seeds."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows_by_data), figsize=(5 * len(rows_by_data), 4.2), squeeze=False)
    for ax, (name, rows) in zip(axes[0], rows_by_data.items()):
        ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1, label="perfect calibration")
        for row in rows:
            if row["arm"] not in arms:
                continue
            rel = calibration.reliability(row["probs"], y_by_data[name], n_bins)
            keep = rel["count"] > 0
            ax.plot(rel["confidence"][keep], rel["accuracy"][keep], marker="o", ms=3,
                    label=f"{row['arm']} (mean ECE {row['ece']:.3f})")
        ax.set(title=f"{name} (curves: first seed)", xlabel="confidence", ylabel="accuracy", xlim=(0, 1),
               ylim=(0, 1))
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def plot_cost_quality(rows_by_data: dict[str, list[dict]]):
    """Test accuracy and NLL (mean ± std) against training FLOPs (relative to one dense run), per data set."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(2, len(rows_by_data), figsize=(5 * len(rows_by_data), 7), squeeze=False)
    for j, (name, rows) in enumerate(rows_by_data.items()):
        for i, key in enumerate(("acc", "nll")):
            ax = axes[i][j]
            for row in rows:
                ax.errorbar(row["train_flops"], row[key], yerr=row[f"{key}_std"], fmt="o", capsize=3,
                            label=row["arm"])
            ax.axvline(1.0, color="grey", ls=":", lw=1)
            ax.set(xscale="log", xlabel="training FLOPs (x one dense run)",
                   ylabel="test accuracy (%)" if key == "acc" else "test NLL", title=name)
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xticks([0.3, 0.5, 1, 2, 3], ["0.3", "0.5", "1", "2", "3"])
        axes[0][j].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_edst_phases(edst_runs: dict[str, dict], explore: dict[str, int], refine: dict[str, int], m: int):
    """EDST training loss per epoch with the exploration / refinement phases shaded, per data set."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(edst_runs), figsize=(5 * len(edst_runs), 3.5), squeeze=False)
    for ax, (name, run) in zip(axes[0], edst_runs.items()):
        loss = run["train_loss"]
        ax.plot(range(1, len(loss) + 1), loss, marker=".", color="k")
        ax.axvspan(0.5, explore[name] + 0.5, color="tab:blue", alpha=0.12, label="exploration")
        for k in range(m):
            a = explore[name] + k * refine[name]
            ax.axvspan(a + 0.5, a + refine[name] + 0.5, color="tab:orange", alpha=0.08 + 0.08 * (k % 2),
                       label="refinement" if k == 0 else None)
            ax.axvline(a + refine[name] + 0.5, color="tab:red", lw=1, ls="--",
                       label="ticket saved" if k == 0 else None)
        ax.set(title=f"EDST on {name}", xlabel="epoch", ylabel="training loss", yscale="log")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def reliability_rows(rows: list[dict]) -> list[dict]:
    """The rows without their probability tensors and per-seed lists (for tables)."""
    return [{k: v for k, v in r.items() if k not in ("probs", "per_seed")} for r in rows]
