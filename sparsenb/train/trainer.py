"""The training loop: device, AMP, progress bars, history, checkpoint and resume.

The :class:`Trainer` is a convenience: masks attached to an optimizer keep any
hand-written loop exactly sparse (:meth:`sparsenb.Masking.attach`). What the
Trainer adds is the method hooks in the right places, evaluation, a per-epoch
history and checkpoints from which a run resumes **bit-identically** on CPU:
a checkpoint carries the model (with its mask buffers), optimizer, scheduler,
AMP scaler, method state and every RNG state (python, numpy, torch, CUDA and
the train loader's generator).

One training step::

    zero_grad -> batch_fn(trainer, batch) = (loss, correct, n)   # forward (autocast on CUDA)
    -> backward
    -> method.after_backward(step, masks)      # dense grads available (RigL)
    -> optimizer.step()                        # mask pre-hook zeroes pruned grads, post-hook re-applies masks
    -> method.after_step(step, masks)
    -> scheduler.step()                        # only with scheduler_step="step"
    -> on_step(trainer, step)
and after each epoch: method.on_epoch_end -> scheduler.step() (scheduler_step="epoch")
-> evaluate_fn(trainer, test_loader) -> callbacks -> checkpoint.

The hot loop stays lean: no host synchronisation per step (loss and correct
predictions are summed on the device and read once per epoch) and no per-step
python objects beyond the batch. ``batch_fn`` and ``evaluate_fn`` make the loop
serve models that are not ``model(x) -> logits`` classifiers (a full-batch graph,
a two-patch network trained by gradient descent); ``on_step`` is the place for
per-step logging at chosen steps.

:func:`evaluate` is the one evaluation helper for a model outside a Trainer
(mean loss and accuracy over batches, exact python arithmetic); ``Trainer.evaluate``
keeps its own reduction (float32, over the concatenated logits) because the
committed records' accuracies were computed that way.
"""
from __future__ import annotations

import os
import pickle
import random
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from ..core.masks import Masking
from ..methods import Method

__all__ = ["Trainer", "pick_device", "set_seed", "make_optimizer", "make_scheduler", "FunctionLR", "evaluate",
           "supervised_batch"]


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA if available, then Apple MPS, then CPU; otherwise ``torch.device(device)``."""
    if str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(model: nn.Module, name: str = "sgd", lr: float = 0.1, momentum: float = 0.9,
                   weight_decay: float = 0.0, nesterov: bool = False) -> torch.optim.Optimizer:
    """``"sgd"`` (with momentum), ``"adam"`` or ``"adamw"`` over all model parameters."""
    params = model.parameters()
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose 'sgd', 'adam' or 'adamw'")


def make_scheduler(optimizer: torch.optim.Optimizer, name: str, epochs: int,
                   milestones: Iterable[float] = (0.5, 0.75), gamma: float = 0.1):
    """Per-epoch LR schedule: ``"constant"``, ``"cosine"`` (to 0 at ``epochs``) or
    ``"step"`` (x ``gamma`` at the given fractions of training)."""
    if name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    if name == "step":
        ms = sorted({max(1, int(f * epochs)) for f in milestones})
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=ms, gamma=gamma)
    raise ValueError(f"unknown scheduler {name!r}; choose 'constant', 'cosine' or 'step'")


class FunctionLR(torch.optim.lr_scheduler.LRScheduler):
    """Set every group's learning rate to ``fn(t)`` exactly, ``t`` = number of ``step()`` calls so far.

    Unlike :class:`torch.optim.lr_scheduler.LambdaLR` (``base_lr * factor``, which rounds), the value
    is ``fn(t)`` itself, so a hand-written rule (e.g. a triangular cyclic LR set before every
    optimizer step) is reproduced to the bit. ``fn`` is not saved in :meth:`state_dict`.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, fn: Callable[[int], float], last_epoch: int = -1):
        self.fn = fn
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [self.fn(self.last_epoch) for _ in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "fn")}


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable, device: str | torch.device | None = None,
             loss_fn: Callable | None = None) -> dict[str, float]:
    """``{"loss", "acc", "n"}`` of ``model`` (eval mode, restored afterwards) over ``batches`` of ``(x, y)``.

    ``loss`` is the mean of ``loss_fn(logits, y, reduction="sum")`` (cross-entropy by default) and
    ``acc`` = correct / n, both in python floats (one host sync per batch). ``batches`` is any
    iterable of ``(x (B, ...), y (B,))`` pairs: a DataLoader, or ``zip(X.split(b), y.split(b))``.
    ``device``: where ``x`` is moved (``None``: the model's first parameter's device).
    """
    loss_fn = loss_fn or F.cross_entropy
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    loss = 0.0
    correct = n = 0
    for x, y in batches:
        out = model(x.to(device, non_blocking=True))
        y = y.to(out.device)
        loss += float(loss_fn(out, y, reduction="sum"))
        correct += int((out.argmax(1) == y).sum())
        n += len(y)
    model.train(was_training)
    return {"loss": loss / max(n, 1), "acc": correct / max(n, 1), "n": n}


def supervised_batch(trainer: "Trainer", batch: Any) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """The default ``batch_fn``: ``(x, y)`` to the device, ``augment``, ``loss_fn(model(x), y)``.

    Returns ``(loss, correct, n)``: the scalar loss to back-propagate, the number of correct
    predictions as a device tensor (``None``: no training accuracy) and the batch size.
    """
    x, y = batch
    device = trainer.device
    if x.device != device:  # a batch already on the device skips two dispatches per step
        x = x.to(device, non_blocking=True)
    if y.device != device:
        y = y.to(device, non_blocking=True)
    if trainer.augment is not None:
        x = trainer.augment(x)
    out = trainer.model(x)
    loss = trainer.loss_fn(out, y)
    return loss, (out.detach().argmax(1) == y).sum(), len(y)


class Trainer:
    """Train ``model`` with a sparse-training ``method``.

    Args:
        model: the network; moved to ``device``.
        method: a :class:`sparsenb.methods.Method` (``None`` = dense).
        optimizer: built over ``model.parameters()``.
        epochs: number of epochs.
        scheduler: optional LR scheduler, stepped once per epoch (``scheduler_step="epoch"``) or
            after every optimizer step (``"step"``; e.g. :class:`FunctionLR` over steps).
        device: ``"auto"`` (CUDA, then MPS, then CPU) or a device.
        amp: mixed precision; ``None`` = on for CUDA only.
        loss_fn: ``loss_fn(logits, targets)``; cross-entropy by default.
        checkpoint: path of a checkpoint file written after every
            ``checkpoint_every`` epochs (atomically) and resumed from if it exists.
        progress: show a tqdm bar over epochs (``"batch"`` adds one per epoch).
        callbacks: ``fn(trainer, row)`` called after each epoch with the history row.
        augment: ``fn(x) -> x`` applied to every training batch on the device (e.g.
            :class:`sparsenb.train.augment.RandomCropFlip`); its ``.generator``, if any, is checkpointed.
        on_step: ``fn(trainer, step)`` after every optimizer step (and the per-step scheduler step),
            ``step`` = 0-based index of the step just taken (as the method hooks see it).
        batch_fn: ``fn(trainer, batch) -> (loss, correct, n)``, how a batch becomes a loss
            (see :func:`supervised_batch`, the default); run under autocast when ``amp``.
        evaluate_fn: ``fn(trainer, test_loader) -> dict`` merged into each epoch's history row
            (called even when ``test_loader`` is None). Default: ``test_loss`` and ``test_acc`` of
            :meth:`evaluate` when a ``test_loader`` is given. ``trainer.epoch`` is the 0-based epoch.
        batch_bar: iterate each epoch's batches through a tqdm bar (shown only with
            ``progress="batch"``). tqdm.auto's bar opens one throwaway iterator of the loader, which
            draws one number from a DataLoader's ``generator`` per epoch: the committed records of
            Trainer runs depend on that draw, so it is the default. ``False`` iterates the loader
            plainly, as a hand-written ``for x, y in loader`` loop does (same batch order as such a loop).

    Attributes:
        masks: the :class:`Masking` the method created (``None`` for dense).
        history: one dict per epoch (``epoch, step, train_loss, train_acc,
            test_loss, test_acc, density, lr, seconds``); ``train_acc`` is nan when ``batch_fn``
            returns no count; ``lr`` is the epoch's learning rate (with ``scheduler_step="step"``: of its first step).
    """

    def __init__(self, model: nn.Module, method: Method | None, optimizer: torch.optim.Optimizer,
                 epochs: int, scheduler: Any = None, device: str | torch.device = "auto",
                 amp: bool | None = None, loss_fn: Callable | None = None,
                 checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 1,
                 progress: bool | str = True, callbacks: Iterable[Callable] = (),
                 init_data: Any = None, augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 scheduler_step: str = "epoch", on_step: Callable[["Trainer", int], None] | None = None,
                 batch_fn: Callable[["Trainer", Any], tuple] | None = None,
                 evaluate_fn: Callable[["Trainer", Any], dict] | None = None, batch_bar: bool = True):
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        if scheduler_step not in ("epoch", "step"):
            raise ValueError(f"scheduler_step must be 'epoch' or 'step', got {scheduler_step!r}")
        self.device = pick_device(device)
        self.model = model.to(self.device)
        self.method = method
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.epochs = epochs
        self.amp = (self.device.type == "cuda") if amp is None else amp
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp and self.device.type == "cuda")
        self.loss_fn = loss_fn or nn.CrossEntropyLoss()
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.checkpoint_every = checkpoint_every
        self.progress = progress
        self.callbacks = list(callbacks)
        self.augment = augment
        self.scheduler_step = scheduler_step
        self.on_step = on_step
        self.batch_fn = batch_fn or supervised_batch
        self.evaluate_fn = evaluate_fn
        self.batch_bar = batch_bar
        self.history: list[dict] = []
        self.step = 0
        self.epoch = 0
        self.start_epoch = 0
        self.masks: Masking | None = method.init_masks(self.model, init_data) if method else None
        if self.masks is not None:
            self.masks.attach(optimizer)

    # ------------------------------------------------------------------ train
    def fit(self, train_loader: Iterable, test_loader: Iterable | None = None) -> list[dict]:
        """Train for ``epochs`` (resuming from ``checkpoint`` if it exists); return the history."""
        spe = len(train_loader)
        if self.method is not None:
            self.method.setup(total_steps=self.epochs * spe, steps_per_epoch=spe, epochs=self.epochs)
        if self.checkpoint is not None and self.checkpoint.exists():
            self.load_checkpoint(self.checkpoint, train_loader)
        bar = tqdm(range(self.start_epoch, self.epochs), desc=type(self.method).__name__ if self.method else "dense",
                   initial=self.start_epoch, total=self.epochs, disable=not self.progress, leave=False)
        per_step = self.scheduler is not None and self.scheduler_step == "step"
        for epoch in bar:
            t0 = time.perf_counter()
            self.epoch = epoch
            lr = self.optimizer.param_groups[0]["lr"]
            train_loss, train_acc = self._train_epoch(train_loader, epoch)
            if self.method is not None:
                self.method.on_epoch_end(epoch, self.masks)
            if not per_step:
                lr = self.optimizer.param_groups[0]["lr"]
                if self.scheduler is not None:
                    self.scheduler.step()
            row = {"epoch": epoch + 1, "step": self.step, "train_loss": train_loss, "train_acc": train_acc,
                   "density": self.masks.density() if self.masks is not None else 1.0, "lr": lr}
            if self.evaluate_fn is not None:
                row.update(self.evaluate_fn(self, test_loader))
            elif test_loader is not None:
                ev = self.evaluate(test_loader)
                row.update(test_loss=ev["loss"], test_acc=ev["acc"])
            row["seconds"] = time.perf_counter() - t0
            self.history.append(row)
            bar.set_postfix(loss=f"{train_loss:.3f}", acc=f"{row.get('test_acc', train_acc):.3f}")
            for cb in self.callbacks:
                cb(self, row)
            if self.checkpoint is not None and ((epoch + 1) % self.checkpoint_every == 0 or epoch + 1 == self.epochs):
                self.save_checkpoint(self.checkpoint, train_loader, epoch + 1)
        bar.close()
        return self.history

    def _train_epoch(self, loader: Iterable, epoch: int) -> tuple[float, float]:
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen = counted = 0
        batch_fn, method, on_step = self.batch_fn, self.method, self.on_step
        sched = self.scheduler if self.scheduler_step == "step" else None
        batches = (tqdm(loader, desc=f"epoch {epoch + 1}", leave=False, disable=self.progress != "batch")
                   if self.batch_bar else loader)
        opt, scaler, amp = self.optimizer, self.scaler, self.amp
        scaled = scaler.is_enabled()
        for batch in batches:
            opt.zero_grad(set_to_none=True)
            if amp:
                with torch.autocast(self.device.type):
                    loss, right, n = batch_fn(self, batch)
            else:  # no autocast context at all: the plain loop's cost
                loss, right, n = batch_fn(self, batch)
            if scaled:
                scaler.scale(loss).backward()
                scaler.unscale_(opt)  # the method sees true gradient magnitudes
            else:
                loss.backward()
            if method is not None:
                method.after_backward(self.step, self.masks)
            if scaled:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            if method is not None:
                method.after_step(self.step, self.masks)
            if sched is not None:
                sched.step()
            self.step += 1
            if on_step is not None:
                on_step(self, self.step - 1)
            loss_sum += loss.detach() * n
            seen += n
            if right is not None:
                correct += right
                counted += n
        acc = float(correct) / counted if counted else (0.0 if seen == 0 else float("nan"))
        return float(loss_sum) / max(seen, 1), acc

    # --------------------------------------------------------------- evaluate
    @torch.no_grad()
    def predict(self, loader: Iterable) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(N, C)`` and targets ``(N,)`` on CPU, model in eval mode."""
        self.model.eval()
        outs, ys = [], []
        for x, y in loader:
            with torch.autocast(self.device.type, enabled=self.amp):
                outs.append(self.model(x.to(self.device, non_blocking=True)).float().cpu())
            ys.append(y)
        return torch.cat(outs), torch.cat(ys)

    def evaluate(self, loader: Iterable) -> dict[str, float]:
        """``{"loss": mean loss, "acc": accuracy}`` over ``loader``."""
        logits, y = self.predict(loader)
        return {"loss": float(self.loss_fn(logits, y)), "acc": float((logits.argmax(1) == y).float().mean())}

    # ------------------------------------------------------------- checkpoint
    def save_checkpoint(self, path: str | os.PathLike, train_loader: Any = None, epoch: int | None = None) -> None:
        """Write everything needed to resume, atomically (temp file + rename)."""
        state = {
            "epoch": self.start_epoch if epoch is None else epoch,
            "step": self.step,
            "history": self.history,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
            "method": self.method.state_dict() if self.method is not None else None,
            "rng": _rng_state(train_loader),
            "augment": _generator_state(self.augment),
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)

    def load_checkpoint(self, path: str | os.PathLike, train_loader: Any = None) -> None:
        """Restore a checkpoint written by :meth:`save_checkpoint`; training continues after its epoch.

        The file is read with ``torch.load(..., weights_only=True)``: tensors and plain data only,
        so a crafted checkpoint cannot run code; anything else raises a ValueError.
        """
        try:  # weights_only: a checkpoint is data; unpickling one must never run code
            state = torch.load(path, map_location=self.device, weights_only=True)
        except pickle.UnpicklingError as e:
            raise ValueError(f"checkpoint {path} holds objects other than tensors and plain data (written by an "
                             f"older sparsenb, or not by sparsenb at all); it is not loaded, to keep its code from "
                             f"running. Delete it to start the run afresh. ({_unpickler_reason(e)})") from None
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.method is not None and state["method"] is not None:
            self.method.load_state_dict(state["method"])
        _set_rng_state(state["rng"], train_loader)
        if state.get("augment") is not None and self.augment is not None:
            self.augment.generator.set_state(state["augment"])
        self.start_epoch, self.step, self.history = state["epoch"], state["step"], list(state["history"])


def _generator_state(obj: Any) -> torch.Tensor | None:
    gen = getattr(obj, "generator", None)
    return gen.get_state() if gen is not None else None


def _unpickler_reason(e: Exception) -> str:
    """The one line of torch's weights_only error that names what was refused."""
    lines = [ln.strip() for ln in str(e).splitlines() if "WeightsUnpickler error" in ln]
    return (lines[0] if lines else str(e).splitlines()[0])[:300]


def _numpy_state() -> tuple:
    """numpy's global RNG state as plain types and a tensor, so the checkpoint loads with ``weights_only=True``."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)


def _rng_state(loader: Any) -> dict:
    gen = getattr(loader, "generator", None)
    return {
        "python": random.getstate(),
        "numpy": _numpy_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "loader": gen.get_state() if gen is not None else None,
    }


def _set_rng_state(state: dict, loader: Any) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    gen = getattr(loader, "generator", None)
    if gen is not None and state["loader"] is not None:
        gen.set_state(state["loader"].cpu())
