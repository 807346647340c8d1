"""Driver of the AFAF notebook: class-incremental task sequences learned by AFAF and the baselines.

Sokar, Mocanu, Pechenizkiy (2022), ECML-PKDD (method: :mod:`sparsenb.methods.afaf`; model:
:mod:`sparsenb.models.continual`; EWC: :mod:`sparsenb.methods.ewc`; tasks:
:func:`sparsenb.data.split_classes`; metrics: :mod:`sparsenb.train.metrics`).

Arms (one model per arm and seed, tasks learned one after another, one head over all classes):

* ``finetune``: the dense CNN trained on each task in turn (the lower bound of forgetting).
* ``ewc``: the same with the EWC penalty (Kirkpatrick et al. 2017).
* ``static``: a random sparse subnetwork per task from the AFAF fractions; earlier connections
  stay fixed, but no neuron is frozen and nothing is reused.
* ``afaf_noreuse``: AFAF without the reuse of candidate neurons (allocation + importance freezing).
* ``afaf``: AFAF (reuse from task ``REUSE_FROM`` on).

After every task each arm is evaluated on the test split of every task seen so far: class-incremental
accuracy (argmax over all classes) and task-incremental accuracy (argmax over the task's classes).
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..data import load, split_classes
from ..data.continual import ClassTask
from ..methods.afaf import AFAF, AFAFConfig
from ..methods.ewc import EWC
from ..models.continual import ContinualCNN
from ..train.metrics import average_accuracy, continual_accuracy, forgetting
from ..train.trainer import Trainer
from .spec import settings_class

__all__ = ["Settings", "OURS", "ARMS", "make_tasks", "afaf_config", "run_arm", "summarize", "claims",
           "compare_rows", "plot_accuracy_matrices", "plot_accuracy_after_each_task", "plot_neurons"]

Settings = settings_class("16_afaf")  # typed, frozen; from specs/16_afaf.json

ARMS = ("finetune", "ewc", "static", "afaf_noreuse", "afaf")
LABELS = {"finetune": "fine-tuning", "ewc": "EWC", "static": "static sparse / task",
          "afaf_noreuse": "AFAF w/o reuse", "afaf": "AFAF"}


def _m(m: dict, key: str) -> float:
    return m.get(key, float("nan"))


OURS = {  # the README gallery's number of each claim id in the spec, from results.json's metrics m
    "afaf_forgets_less_than_finetune": lambda m: (f"CIL forgetting AFAF {_m(m, 'afaf/forgetting_cil'):.3f} vs fine-tuning "
                                                  f"{_m(m, 'finetune/forgetting_cil'):.3f}"),
    "afaf_forgets_less_than_static": lambda m: (f"CIL forgetting AFAF {_m(m, 'afaf/forgetting_cil'):.3f} vs static "
                                                f"{_m(m, 'static/forgetting_cil'):.3f}"),
    "afaf_cil_above_finetune_ewc": lambda m: (f"final CIL accuracy AFAF {_m(m, 'afaf/final_cil'):.3f} vs fine-tuning "
                                              f"{_m(m, 'finetune/final_cil'):.3f}, EWC {_m(m, 'ewc/final_cil'):.3f}"),
    "afaf_forward_transfer": lambda m: (f"new-task TIL accuracy with reuse {_m(m, 'afaf/new_task_til_reuse'):.3f} vs "
                                        f"without {_m(m, 'afaf_noreuse/new_task_til_reuse'):.3f}"),
}


def make_tasks(cfg: Any) -> list[ClassTask]:
    """The task sequence of a notebook config: ``DATASET`` split into tasks of ``CLASSES_PER_TASK`` classes."""
    data = load(cfg.DATASET)
    shape = tuple(data.X_train.shape[1:])
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] < 12:
        raise ValueError(f"DATASET {cfg.DATASET!r} gives inputs of shape {shape}; AFAF's CNN needs square images "
                         f"(channels, height, width) of at least 12x12, e.g. DATASET='mnist5k' or 'cifar10-jpeg'")
    return split_classes(data, cfg.CLASSES_PER_TASK, cfg.CLASS_ORDER, cfg.TRAIN_PER_CLASS, cfg.TEST_PER_CLASS, seed=0)


def afaf_config(cfg: Any, arm: str) -> AFAFConfig:
    """AFAF's fractions from the notebook config; ``static`` and ``afaf_noreuse`` switch parts off."""
    return AFAFConfig(alloc=tuple(cfg.ALLOC), freeze=tuple(cfg.FREEZE), density=tuple(cfg.DENSITY),
                      reuse=arm == "afaf", reuse_from=cfg.REUSE_FROM, l_reuse=cfg.L_REUSE,
                      reuse_fraction=cfg.REUSE_FRACTION, free_fraction=cfg.FREE_FRACTION,
                      freeze_by="none" if arm == "static" else "importance", init=cfg.INIT)


def build_model(cfg: Any, tasks: Sequence[ClassTask]) -> ContinualCNN:
    shape = tuple(tasks[0].X_train.shape[1:])
    num_classes = sum(len(t.classes) for t in tasks)
    return ContinualCNN(in_channels=shape[0], num_classes=num_classes, image_size=shape[-1], width=cfg.WIDTH)


@torch.no_grad()
def evaluate(model: torch.nn.Module, tasks: Sequence[ClassTask], upto: int, batch: int = 1000) -> tuple[list, list]:
    """(CIL, TIL) accuracy on the test split of tasks ``0..upto``."""
    model.eval()
    cil, til = [], []
    for task in tasks[:upto + 1]:
        logits = torch.cat([model(task.X_test[i:i + batch]) for i in range(0, len(task.X_test), batch)])
        c, t = continual_accuracy(logits, task.y_test, task.classes)
        cil.append(c)
        til.append(t)
    model.train()
    return cil, til


class _TaskBatches:
    """One task's training batches: a fresh permutation per epoch from the task's own generator
    (seeded by seed and task), batches of ``batch`` in that order; the Trainer's loader."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor, batch: int, generator: torch.Generator):
        self.X, self.y, self.batch, self.g = X, y, batch, generator

    def __len__(self) -> int:
        return -(-len(self.X) // self.batch)

    def __iter__(self):
        perm = torch.randperm(len(self.X), generator=self.g)
        for i in range(0, len(self.X), self.batch):
            idx = perm[i:i + self.batch]
            yield self.X[idx], self.y[idx]


def train_task(model: torch.nn.Module, task: ClassTask, cfg: Any, seed: int, afaf: AFAF | None = None,
               ewc: EWC | None = None) -> list[float]:
    """``EPOCHS`` of SGD (lr ``LR``, batch ``BATCH``, no momentum, no weight decay) on one task, on the
    :class:`~sparsenb.train.Trainer`; returns the mean cross-entropy per epoch (EWC's penalty excluded).

    AFAF's hooks sit on the optimizer: before each step it masks the gradients to the task's connections
    and notes the weights, after it accumulates the importance ``|Δw * g|``. EWC's penalty is added to the
    loss that is back-propagated (``batch_fn``)."""
    opt = torch.optim.SGD(model.parameters(), lr=cfg.LR)
    batches = _TaskBatches(task.X_train, task.y_train, cfg.BATCH, torch.Generator().manual_seed(10_000 * seed + task.index))
    ce = []  # per batch: (cross-entropy, n), the loss without EWC's penalty

    def batch_fn(trainer: Trainer, batch: Any) -> tuple[torch.Tensor, None, int]:
        x, y = batch
        loss = F.cross_entropy(model(x), y)
        ce.append((loss.item(), len(y)))
        return (loss + ewc.penalty() if ewc is not None and ewc.tasks else loss), None, len(y)

    def before(*_: Any) -> None:  # a step pre-hook returns None: it leaves the step's arguments alone
        afaf.mask_gradients()
        afaf.before_step()

    hooks = []
    if afaf is not None:
        hooks = [opt.register_step_pre_hook(before), opt.register_step_post_hook(lambda *_: afaf.after_step())]
    try:
        Trainer(model, None, opt, epochs=cfg.EPOCHS, device="cpu", progress=False, batch_fn=batch_fn,
                batch_bar=False).fit(batches)
    finally:
        for h in hooks:
            h.remove()
    per_epoch = len(batches)
    return [sum(l * n for l, n in ce[e * per_epoch:(e + 1) * per_epoch]) / sum(n for _, n in ce[e * per_epoch:(e + 1) * per_epoch])
            for e in range(cfg.EPOCHS)]


def run_arm(arm: str, tasks: Sequence[ClassTask], cfg: Any, seed: int) -> dict:
    """One arm, one seed, the whole sequence; JSON-able: accuracy matrices ``cil[i][j]``/``til[i][j]``
    (task ``j`` after learning task ``i``, None for ``j > i``), losses, AFAF's allocation history."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; arms: {ARMS}")
    torch.manual_seed(seed)
    model = build_model(cfg, tasks)
    afaf = AFAF(model, [t.classes for t in tasks], afaf_config(cfg, arm), seed=seed) if arm not in ("finetune", "ewc") else None
    ewc = EWC(model, cfg.EWC_LAMBDA) if arm == "ewc" else None
    T = len(tasks)
    cil = [[None] * T for _ in range(T)]
    til = [[None] * T for _ in range(T)]
    losses, seconds = [], []
    for t, task in enumerate(tasks):
        t0 = time.perf_counter()
        if afaf is not None:
            afaf.begin_task(t, task.X_train, task.y_train)
        losses.append(train_task(model, task, cfg, seed, afaf=afaf, ewc=ewc))
        if afaf is not None:
            afaf.end_task()
        if ewc is not None and t < T - 1:
            g = torch.Generator().manual_seed(seed)
            pick = torch.randperm(len(task.X_train), generator=g)[:cfg.EWC_SAMPLES]
            ewc.consolidate(task.X_train[pick], task.y_train[pick])
        c, ti = evaluate(model, tasks, t)
        cil[t][:t + 1] = c
        til[t][:t + 1] = ti
        seconds.append(time.perf_counter() - t0)
    out = {"arm": arm, "seed": seed, "cil": cil, "til": til, "losses": losses, "seconds": seconds,
           "parameters": sum(p.numel() for p in model.parameters())}
    if afaf is not None:
        out["afaf"] = afaf.history
        out["density"] = [float(o.float().mean()) for o in afaf.old]
    return out


def _mean_matrix(runs: Sequence[dict], key: str) -> list[list[float | None]]:
    T = len(runs[0][key])
    return [[None if runs[0][key][i][j] is None else float(np.mean([r[key][i][j] for r in runs]))
             for j in range(T)] for i in range(T)]


def summarize(results: dict[str, list[dict]], reuse_from: int) -> dict[str, dict]:
    """Per arm (mean over seeds): accuracy matrices, final average CIL/TIL accuracy, forgetting after
    the last task, average accuracy after each task, accuracy on each new task right after learning it."""
    out = {}
    for arm, runs in results.items():
        cil, til = _mean_matrix(runs, "cil"), _mean_matrix(runs, "til")
        T = len(cil)
        reuse_tasks = list(range(reuse_from, T)) or [T - 1]
        out[arm] = {
            "cil": cil, "til": til,
            "final_cil": average_accuracy(cil), "final_til": average_accuracy(til),
            "forgetting_cil": forgetting(cil), "forgetting_til": forgetting(til),
            "avg_cil_after": [average_accuracy(cil, t) for t in range(T)],
            "avg_til_after": [average_accuracy(til, t) for t in range(T)],
            "new_task_cil": [cil[t][t] for t in range(T)], "new_task_til": [til[t][t] for t in range(T)],
            "new_task_til_reuse": float(np.mean([til[t][t] for t in reuse_tasks])),
            "forgetting_cil_seeds": [forgetting(r["cil"]) for r in runs],
            "final_cil_seeds": [average_accuracy(r["cil"]) for r in runs],
            "seconds": float(sum(sum(r["seconds"]) for r in runs)),
        }
    return out


def claims(summary: dict[str, dict], seeds: int, margin: float) -> list[dict]:
    """The four pre-written rules (on the mean over seeds, after the last task).

    1. AFAF forgets less than fine-tuning: CIL forgetting AFAF < fine-tuning.
    2. AFAF forgets less than the static sparse subnetwork per task: CIL forgetting AFAF < static.
    3. AFAF's final class-incremental accuracy is above fine-tuning's and EWC's.
    4. Forward transfer from reuse: on the tasks learned with reuse, AFAF's task-incremental
       accuracy on the new task right after learning it is >= AFAF without reuse. With one seed a
       difference smaller than ``margin`` (either sign) is called inconclusive.
    Each returns ``{"id", "holds", "state", "reason", "detail"}``; an arm missing from the run leaves
    its claims "not evaluated".
    """
    s = summary
    out = []

    def need(*arms):
        missing = [a for a in arms if a not in s]
        return f"arm(s) {', '.join(missing)} not run" if missing else ""

    r = need("afaf", "finetune")
    out.append({"id": "afaf_forgets_less_than_finetune", **({"state": "not evaluated", "reason": r, "holds": None, "detail": ""} if r else {
        "holds": s["afaf"]["forgetting_cil"] < s["finetune"]["forgetting_cil"], "state": None, "reason": "",
        "detail": f"CIL forgetting after the last task: AFAF {s['afaf']['forgetting_cil']:.3f}, fine-tuning "
                  f"{s['finetune']['forgetting_cil']:.3f} (TIL {s['afaf']['forgetting_til']:.3f} vs {s['finetune']['forgetting_til']:.3f}); rule: AFAF < fine-tuning"})})
    r = need("afaf", "static")
    out.append({"id": "afaf_forgets_less_than_static", **({"state": "not evaluated", "reason": r, "holds": None, "detail": ""} if r else {
        "holds": s["afaf"]["forgetting_cil"] < s["static"]["forgetting_cil"], "state": None, "reason": "",
        "detail": f"CIL forgetting after the last task: AFAF {s['afaf']['forgetting_cil']:.3f}, static sparse per task "
                  f"{s['static']['forgetting_cil']:.3f} (TIL {s['afaf']['forgetting_til']:.3f} vs {s['static']['forgetting_til']:.3f}); rule: AFAF < static"})})
    r = need("afaf", "finetune", "ewc")
    out.append({"id": "afaf_cil_above_finetune_ewc", **({"state": "not evaluated", "reason": r, "holds": None, "detail": ""} if r else {
        "holds": s["afaf"]["final_cil"] > max(s["finetune"]["final_cil"], s["ewc"]["final_cil"]), "state": None, "reason": "",
        "detail": f"average CIL accuracy after the last task: AFAF {s['afaf']['final_cil']:.3f}, fine-tuning "
                  f"{s['finetune']['final_cil']:.3f}, EWC {s['ewc']['final_cil']:.3f}; rule: AFAF > both"})})
    r = need("afaf", "afaf_noreuse")
    if r:
        out.append({"id": "afaf_forward_transfer", "state": "not evaluated", "reason": r, "holds": None, "detail": ""})
    else:
        a, b = s["afaf"]["new_task_til_reuse"], s["afaf_noreuse"]["new_task_til_reuse"]
        detail = (f"TIL accuracy on each new task right after learning it, mean over the tasks learned with reuse: "
                  f"AFAF {a:.3f}, AFAF w/o reuse {b:.3f} (difference {a - b:+.3f}); rule: AFAF >= w/o reuse; "
                  f"with {seeds} seed(s) |difference| < {margin} is inconclusive" if seeds == 1 else
                  f"TIL accuracy on each new task right after learning it, mean over reuse tasks and {seeds} seeds: "
                  f"AFAF {a:.3f}, AFAF w/o reuse {b:.3f} ({a - b:+.3f}); rule: AFAF >= w/o reuse")
        if seeds == 1 and abs(a - b) < margin:
            out.append({"id": "afaf_forward_transfer", "holds": None, "state": "inconclusive",
                        "reason": f"one seed and a difference of {a - b:+.3f}, below the {margin} margin set before running",
                        "detail": detail})
        else:
            out.append({"id": "afaf_forward_transfer", "holds": a >= b, "state": None, "reason": "", "detail": detail})
    return out


def compare_rows(summary: dict[str, dict]) -> list[dict]:
    """The rows of the notebook's "ours beside the paper's" table (orderings only; the paper gives split CIFAR-10)."""
    def v(arm: str, key: str) -> str:
        return f"{summary[arm][key]:.3f}" if arm in summary else "—"

    return [{"setting": "CIL forgetting (lower = better)",
             "ours": f"AFAF {v('afaf', 'forgetting_cil')}, static {v('static', 'forgetting_cil')}, "
                     f"fine-tuning {v('finetune', 'forgetting_cil')}, EWC {v('ewc', 'forgetting_cil')}",
             "paper": "AFAF forgets less than fine-tuning and the sparse baselines (split CIFAR-10)"},
            {"setting": "final CIL accuracy",
             "ours": f"AFAF {v('afaf', 'final_cil')}, fine-tuning {v('finetune', 'final_cil')}, EWC {v('ewc', 'final_cil')}",
             "paper": "AFAF above fine-tuning and the regularisation methods"},
            {"setting": "new-task TIL accuracy on reuse tasks",
             "ours": f"AFAF {v('afaf', 'new_task_til_reuse')}, without reuse {v('afaf_noreuse', 'new_task_til_reuse')}",
             "paper": "reusing related neurons helps the new task (forward transfer)"}]


# -- figures -----------------------------------------------------------------------------------

def plot_accuracy_matrices(summary: dict[str, dict], key: str = "cil"):
    """One heat map per arm: accuracy on task j (columns) after learning task i (rows)."""
    import matplotlib.pyplot as plt

    arms = [a for a in ARMS if a in summary]
    fig, axes = plt.subplots(1, len(arms), figsize=(2.9 * len(arms), 3.0), squeeze=False)
    for ax, arm in zip(axes[0], arms):
        m = np.array([[np.nan if v is None else v for v in row] for row in summary[arm][key]])
        ax.imshow(m, vmin=0, vmax=1, cmap="viridis")
        T = m.shape[0]
        for i in range(T):
            for j in range(i + 1):
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7, color="w" if m[i, j] < 0.6 else "k")
        ax.set_xticks(range(T), [f"T{j + 1}" for j in range(T)], fontsize=7)
        ax.set_yticks(range(T), [f"after T{i + 1}" for i in range(T)], fontsize=7)
        ax.set_title(f"{LABELS[arm]}\nfinal {summary[arm]['final_' + key]:.3f}, forg. {summary[arm]['forgetting_' + key]:.3f}", fontsize=8)
    fig.suptitle(f"{'Class' if key == 'cil' else 'Task'}-incremental accuracy on task j after learning task i", fontsize=10)
    fig.tight_layout()
    return fig


def plot_accuracy_after_each_task(summary: dict[str, dict]):
    """Average accuracy over the tasks seen so far, after each task: CIL (left) and TIL (right)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    for ax, key, title in ((axes[0], "avg_cil_after", "class-incremental"), (axes[1], "avg_til_after", "task-incremental")):
        for arm in ARMS:
            if arm in summary:
                v = summary[arm][key]
                ax.plot(range(1, len(v) + 1), v, marker="o", label=LABELS[arm], lw=2.2 if arm == "afaf" else 1.2)
        ax.set_xlabel("tasks learned")
        ax.set_ylabel("mean accuracy over seen tasks")
        ax.set_ylim(0, 1.02)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_neurons(history: Sequence[dict], layer_names: Sequence[str] = ("conv1", "conv2", "conv3", "fc1", "fc2")):
    """AFAF's free hidden neurons (before each task's allocation) and frozen ones after it, per layer."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.0))
    T = len(history)
    for l, name in enumerate(layer_names):
        axes[0].plot(range(1, T + 1), [h["free_neurons"][l] for h in history], marker="o", label=name)
        axes[1].plot(range(1, T + 1), [h["frozen_total"][l] for h in history], marker="o", label=name)
    axes[0].set_title("free neurons at allocation", fontsize=10)
    axes[1].set_title("frozen neurons after the task", fontsize=10)
    for ax in axes:
        ax.set_xlabel("task")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig
