"""AFAF: sparse subnetworks for class-incremental learning, with neuron reuse and neuron freezing.

Ghada Sokar, Decebal Constantin Mocanu, Mykola Pechenizkiy (2022), "Avoiding Forgetting and
Allowing Forward Transfer in Continual Learning via Sparse Networks", ECML-PKDD 2022
(arXiv:2110.05329). Defaults from the official code (GhadaSokar/AFAF, ``main_CNN.py`` / ``CL.py``).

One network with a single head learns tasks ``t = 0, 1, ...`` (each a set of new classes). For
every task AFAF

1. **allocates** a sparse subnetwork. Neuron layer ``l`` contributes ``a_l = alloc_l * n_l`` neurons
   (conv layers 0.7, first FC 0.2, last hidden FC 0.1; the output layer contributes the task's
   classes) drawn at random from the *free* (not frozen) neurons; weight layer ``k`` (neuron layer
   ``k`` -> ``k + 1``) receives ``int(d_k * a_k * a_{k+1})`` new connections (density
   ``d = 0.25``, classifier 0.7) drawn at random among the pairs of allocated neurons that hold no
   connection yet. A pair is a whole 3x3 kernel for a convolution and a whole spatial block for
   the first FC layer (whose inputs are the conv3 channels).
2. from task ``reuse_from`` on, **reuses** knowledge: for each new class ``c``, the candidate
   neurons of layer ``l`` are the ``reuse_fraction * a_l`` neurons with the largest mean
   activation of class ``c``'s training examples on the *previous* model (``mostrelated``, Sec.
   4.2), frozen or not; the senders of layer ``l`` are those candidates plus ``free_fraction * a_l``
   random free neurons. Weight layers below ``l_reuse`` get no new connections (the conv layers
   are shared as they are), the classifier takes its inputs from random free last-hidden neurons,
   and each class gets ``1 / n_classes`` of every layer's connection budget. Only free neurons
   receive new connections: a frozen candidate is only read.
3. **trains** only the task's connections (``grad *= mask``), the biases of free neurons and the
   task's output units; every connection of an earlier task keeps its value. During the task the
   classifier rows of earlier classes are zero (their logits are their biases, as in the official
   code) and are put back for evaluation.
4. **freezes** the most important neurons: the importance of a connection is
   ``I_w = sum_steps |Δw * g|`` over the task's steps, a neuron's is the sum over its outgoing
   connections, and the top ``freeze_l * a_l`` of the neurons the task used in layer ``l`` are
   frozen (conv 0.1, first FC 0.3, last hidden FC 1.0; the task's output units always). A frozen
   neuron gets no new incoming connection and no bias update ever after, so its function of the
   input is fixed (tests/test_afaf.py checks it is bit-identical after later tasks).

**Initial values.** The official code gives a new connection the model's initial (dense-fan-in)
value. At the cpu sizes here (a 1-channel input, 0.25 density) the signal then shrinks ~5x per
layer and a few epochs do not move it; ``init = "sparse_he"`` draws a new connection from
``U(-b, b)``, ``b = sqrt(6 / k_in)`` with ``k_in`` the receiving neuron's new connections in the
task (Evci et al. 2022; :mod:`sparsenb.core.init`).

``freeze_by = "none"`` and ``reuse = False`` give the static baseline: a random sparse subnetwork
per task from the same fractions, earlier connections fixed, no neuron protected, no reuse.

Not implemented: the official code also runs SpaceNet's drop-and-grow of 20 % of the task's
connections after every epoch; here a task's connections stay where they were drawn.

Masks are bool tensors shaped like each layer's weight, True = the connection exists.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..core.init import grow_bound

__all__ = ["AFAFConfig", "AFAF", "allocation_counts", "top_activated"]


@dataclass
class AFAFConfig:
    """AFAF's fractions, per hidden neuron layer (conv1, conv2, conv3, fc1, fc2) or per weight layer."""
    alloc: tuple[float, ...] = (0.7, 0.7, 0.7, 0.2, 0.1)
    freeze: tuple[float, ...] = (0.1, 0.1, 0.1, 0.3, 1.0)
    density: tuple[float, ...] = (0.25, 0.25, 0.25, 0.25, 0.25, 0.7)
    reuse: bool = True
    reuse_from: int = 2
    l_reuse: int = 3
    reuse_fraction: float = 0.3
    free_fraction: float = 0.7
    freeze_by: str = "importance"  # "importance" | "none" (static baseline)
    init: str = "dense"  # "dense" (official: the model's initial value) | "sparse_he" (by the task's kept fan-in)


def allocation_counts(neuron_counts: list[int], alloc: tuple[float, ...], classes_per_task: int) -> list[int]:
    """Nominal neurons per task of every neuron layer: all inputs, ``int(alloc_l * n_l)`` hidden, the task's classes."""
    if len(alloc) != len(neuron_counts) - 2:
        raise ValueError(f"alloc needs one fraction per hidden layer ({len(neuron_counts) - 2}), got {len(alloc)}")
    return [neuron_counts[0], *(int(a * n) for a, n in zip(alloc, neuron_counts[1:-1])), classes_per_task]


def top_activated(mean_activation: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest entries of ``mean_activation`` (n,) (the 'mostrelated' candidates)."""
    k = max(0, min(k, mean_activation.numel()))
    return torch.argsort(mean_activation, descending=True, stable=True)[:k]


def _pair_view(t: torch.Tensor, n_in: int) -> torch.Tensor:
    """A weight-shaped tensor reduced to (out, in) neuron pairs (sum over kernel or spatial block)."""
    if t.dim() == 4:
        return t.sum(dim=(2, 3))
    if t.shape[1] != n_in:  # fc1 after the flattened conv3: (out, channels * spatial)
        return t.reshape(t.shape[0], n_in, -1).sum(-1)
    return t


def _expand_pairs(pairs: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """(out, in) bool pairs -> a bool mask of the weight's ``shape``."""
    if len(shape) == 4:
        return pairs[:, :, None, None].expand(shape).clone()
    if shape[1] != pairs.shape[1]:
        return pairs.repeat_interleave(shape[1] // pairs.shape[1], dim=1)
    return pairs.clone()


class AFAF:
    """AFAF over a model with ``weight_layers`` and ``neuron_counts`` (:class:`~sparsenb.models.continual.ContinualCNN`).

    Use::

        afaf = AFAF(model, task_classes, AFAFConfig(), seed=0)
        for t in range(len(task_classes)):
            afaf.begin_task(t, X_t, y_t)          # X_t, y_t: the task's training data (for reuse)
            for each step: zero_grad; loss.backward(); afaf.before_step(); afaf.mask_gradients();
                           opt.step(); afaf.after_step()
            afaf.end_task()                       # freezes neurons, restores earlier classifier rows

    Use SGD without momentum or weight decay (the official setting): a masked gradient then leaves
    a weight exactly as it was.
    """

    def __init__(self, model: nn.Module, task_classes: list[list[int]], config: AFAFConfig | None = None,
                 seed: int = 0):
        self.model = model
        self.layers = list(model.weight_layers)
        self.n = list(model.neuron_counts)
        self.task_classes = [list(map(int, c)) for c in task_classes]
        self.cfg = config or AFAFConfig()
        if len(self.cfg.density) != len(self.layers) or len(self.cfg.freeze) != len(self.n) - 2:
            raise ValueError("density needs one value per weight layer, freeze one per hidden layer")
        self.gen = torch.Generator().manual_seed(seed)
        self.counts = allocation_counts(self.n, self.cfg.alloc, max(len(c) for c in self.task_classes))
        self.init = [m.weight.detach().clone() for m in self.layers]
        self.old = [torch.zeros_like(m.weight, dtype=torch.bool) for m in self.layers]
        self.mask = [torch.zeros_like(m.weight, dtype=torch.bool) for m in self.layers]
        self.frozen = [torch.zeros(n, dtype=torch.bool) for n in self.n]  # per neuron layer; [0] stays False
        self.importance = [torch.zeros_like(m.weight) for m in self.layers]
        self.task = -1
        self.history: list[dict] = []
        self._learned_rows: torch.Tensor | None = None
        with torch.no_grad():
            for m in self.layers:
                m.weight.zero_()  # every weight starts absent; allocation puts its initial value back

    # -- allocation ------------------------------------------------------------------------------

    def _sample(self, allowed: torch.Tensor, n: int) -> torch.Tensor:
        """A bool (out, in) matrix with ``min(n, allowed.sum())`` True entries drawn uniformly from ``allowed``."""
        idx = allowed.flatten().nonzero().flatten()
        take = idx[torch.randperm(idx.numel(), generator=self.gen)[:max(0, min(n, idx.numel()))]]
        out = torch.zeros(allowed.numel(), dtype=torch.bool)
        out[take] = True
        return out.reshape(allowed.shape)

    def _random_free(self, layer: int, k: int, exclude: torch.Tensor | None = None) -> torch.Tensor:
        ok = ~self.frozen[layer]
        if exclude is not None:
            ok &= ~exclude
        return self._sample(ok[None, :], k)[0]

    def _connect(self, k: int, send: torch.Tensor, recv: torch.Tensor, budget: int) -> int:
        """Add ``budget`` new connections in weight layer ``k`` between ``send`` (in) and ``recv`` (out) neurons."""
        if budget <= 0:
            return 0
        taken = _pair_view(self.old[k].float(), self.n[k]) > 0
        taken |= _pair_view(self.mask[k].float(), self.n[k]) > 0
        allowed = recv[:, None] & send[None, :] & ~taken
        pairs = self._sample(allowed, budget)
        self.mask[k] |= _expand_pairs(pairs, self.layers[k].weight.shape)
        return int(pairs.sum())

    def _budget(self, k: int) -> int:
        return int(self.cfg.density[k] * self.counts[k] * self.counts[k + 1])

    @torch.no_grad()
    def class_activations(self, X: torch.Tensor, y: torch.Tensor, batch: int = 500) -> dict[int, list[torch.Tensor]]:
        """Mean activation of every hidden neuron per class of ``y`` on the current model:
        ``{class: [(n_1,), ..., (n_5,)]}`` (conv neurons: mean over positions too)."""
        was = self.model.training
        self.model.eval()
        sums: dict[int, list[torch.Tensor]] = {}
        counts: dict[int, int] = {}
        for i in range(0, len(X), batch):
            xb, yb = X[i:i + batch], y[i:i + batch]
            _, hidden = self.model.forward_hidden(xb)
            flat = [h.mean(dim=(2, 3)) if h.dim() == 4 else h for h in hidden]
            for c in yb.unique().tolist():
                sel = yb == c
                s = [f[sel].sum(0) for f in flat]
                sums[c] = s if c not in sums else [a + b for a, b in zip(sums[c], s)]
                counts[c] = counts.get(c, 0) + int(sel.sum())
        self.model.train(was)
        return {c: [s / counts[c] for s in v] for c, v in sums.items()}

    def begin_task(self, t: int, X: torch.Tensor | None = None, y: torch.Tensor | None = None) -> dict:
        """Allocate task ``t``'s subnetwork (reuse needs the task's training data ``X``, ``y``).
        Returns a summary: new connections per layer, the neurons used, the candidates chosen."""
        if t != self.task + 1:
            raise ValueError(f"tasks must come in order: expected {self.task + 1}, got {t}")
        self.task = t
        classes = self.task_classes[t]
        L = len(self.layers)
        self.mask = [torch.zeros_like(m) for m in self.mask]
        self.importance = [torch.zeros_like(m.weight) for m in self.layers]
        out_units = torch.zeros(self.n[-1], dtype=torch.bool)
        out_units[classes] = True
        added = [0] * L
        candidates: dict[int, dict[int, list[int]]] = {}
        reuse = self.cfg.reuse and t >= self.cfg.reuse_from
        if not reuse:
            sel = [torch.ones(self.n[0], dtype=torch.bool)]
            sel += [self._random_free(l, self.counts[l]) for l in range(1, L)]
            sel.append(out_units)
            for k in range(L):
                added[k] = self._connect(k, sel[k], sel[k + 1], self._budget(k))
        else:
            if X is None or y is None:
                raise ValueError(f"task {t} reuses neurons: pass its training data to begin_task")
            acts = self.class_activations(X, y)
            # the shared random free part of every reused layer (drawn once per task), and the last hidden layer
            sub_free = {l: self._random_free(l, int(self.cfg.free_fraction * self.counts[l]))
                        for l in range(self.cfg.l_reuse, L - 1)}
            last_hidden = self._random_free(L - 1, self.counts[L - 1])
            for c in classes:
                send = {}
                candidates[c] = {}
                for l in range(self.cfg.l_reuse, L - 1):
                    cand = top_activated(acts[c][l - 1], int(self.cfg.reuse_fraction * self.counts[l]))
                    candidates[c][l] = cand.tolist()
                    s = sub_free[l].clone()
                    s[cand] = True
                    send[l] = s
                send[L - 1] = last_hidden
                unit = torch.zeros(self.n[-1], dtype=torch.bool)
                unit[c] = True
                for k in range(self.cfg.l_reuse, L):
                    recv = unit if k == L - 1 else send[k + 1] & ~self.frozen[k + 1]
                    added[k] += self._connect(k, send[k], recv, self._budget(k) // len(classes))
        with torch.no_grad():
            for m, mask, w0 in zip(self.layers, self.mask, self.init):
                if self.cfg.init == "sparse_he":
                    b = grow_bound(m.weight, mask, "sparse_he")
                    w0 = (2 * torch.rand(mask.shape, generator=self.gen) - 1) * b
                elif self.cfg.init != "dense":
                    raise ValueError(f"init must be 'dense' or 'sparse_he', got {self.cfg.init!r}")
                m.weight[mask] = w0[mask]
            out = self.layers[-1].weight
            learned = [c for tc in self.task_classes[:t] for c in tc]
            self._learned_rows = out[learned].clone() if learned else None
            if learned:
                out[learned] = 0.0  # earlier classes' logits are their biases while the task trains
        self._learned = learned
        used = [int((_pair_view(m.float(), self.n[k]).sum(0) > 0).sum()) for k, m in enumerate(self.mask)]
        summary = {"task": t, "reuse": reuse, "new_connections": added, "senders_used": used,
                   "candidates": {str(c): {str(l): v for l, v in d.items()} for c, d in candidates.items()},
                   "free_neurons": [int((~f).sum()) for f in self.frozen[1:-1]]}
        self.history.append(summary)
        return summary

    # -- training hooks --------------------------------------------------------------------------

    def trainable_bias(self, k: int) -> torch.Tensor:
        """Bool (n_{k+1},): which biases of weight layer ``k`` train in the current task."""
        if k == len(self.layers) - 1:
            unit = torch.zeros(self.n[-1], dtype=torch.bool)
            unit[self.task_classes[self.task]] = True
            return unit
        return ~self.frozen[k + 1]

    def mask_gradients(self) -> None:
        """Zero every gradient outside the task's connections and outside the trainable biases."""
        for k, m in enumerate(self.layers):
            if m.weight.grad is not None:
                m.weight.grad.mul_(self.mask[k])
            if m.bias is not None and m.bias.grad is not None:
                m.bias.grad.mul_(self.trainable_bias(k))

    def before_step(self) -> None:
        self._before = [m.weight.detach().clone() for m in self.layers]

    def after_step(self) -> None:
        """Accumulate ``I_w += |Δw * g|`` over the task's connections (call after ``optimizer.step()``)."""
        for k, m in enumerate(self.layers):
            if m.weight.grad is not None:
                self.importance[k] += ((m.weight.detach() - self._before[k]) * m.weight.grad).abs() * self.mask[k]

    def neuron_importance(self, layer: int) -> torch.Tensor:
        """(n_layer,): importance of neuron layer ``layer`` (1..L-1) = sum over its outgoing connections."""
        return _pair_view(self.importance[layer], self.n[layer]).sum(0)

    def end_task(self) -> dict:
        """Freeze the task's most important neurons, fix its connections, put back earlier classifier rows."""
        t = self.task
        frozen_now = []
        for l in range(1, len(self.layers)):
            used = (_pair_view(self.mask[l].float(), self.n[l]).sum(0) > 0) & ~self.frozen[l]
            if self.cfg.freeze_by == "importance":
                k = int(self.cfg.freeze[l - 1] * self.counts[l])
                imp = self.neuron_importance(l).clone()
                imp[~used] = -1.0
                order = torch.argsort(imp, descending=True, stable=True)[:min(k, int(used.sum()))]
                self.frozen[l][order] = True
                frozen_now.append(int(order.numel()))
            elif self.cfg.freeze_by == "none":
                frozen_now.append(0)
            else:
                raise ValueError(f"freeze_by must be 'importance' or 'none', got {self.cfg.freeze_by!r}")
        self.frozen[-1][self.task_classes[t]] = True
        for k in range(len(self.layers)):
            self.old[k] |= self.mask[k]
        with torch.no_grad():
            if self._learned_rows is not None:
                self.layers[-1].weight[self._learned] = self._learned_rows
        self.history[-1]["frozen_now"] = frozen_now
        self.history[-1]["frozen_total"] = [int(f.sum()) for f in self.frozen[1:-1]]
        self.history[-1]["density"] = [float(o.float().mean()) for o in self.old]
        return self.history[-1]
