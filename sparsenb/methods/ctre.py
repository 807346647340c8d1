"""CTRE: Cosine similarity-based and Random Topology Exploration.

Atashgahi, Pieterse, Liu, Mocanu, Veldhuis, Pechenizkiy (2022), "A
Brain-inspired Algorithm for Training Highly Sparse Neural Networks",
Machine Learning (Springer), doi:10.1007/s10994-022-06266-w, arXiv:1903.07138.

At the end of every training epoch but the last, for every sparse layer
``W`` of shape ``(n_out, n_in)`` with ``n`` active connections (mask 1 = kept):

1. **drop** the ``int(zeta * n)`` active connections of smallest ``|w|`` (the paper's ``zeta`` is
   the option ``drop_fraction``; :func:`sparsenb.core.dropgrow.drop`);
2. **grow** (:func:`sparsenb.core.dropgrow.grow`) as many absent connections (absent after the drop) with the
   largest *absolute cosine similarity* between the activations of their two
   neurons over the training set (the paper's Hebbian-inspired importance of a connection)::

       S[j, i] = | <a_i, b_j> | / (||a_i|| * ||b_j||)

   where ``a_i`` (N,) is input neuron ``i``'s activation and ``b_j`` (N,) output
   neuron ``j``'s activation on the N training examples: the input features
   for the first layer, ReLU outputs for hidden neurons and the softmax
   probabilities for the output layer (as the official code does). A neuron
   that never fires (zero norm) has similarity 0.

Two variants (paper, 'Proposed method'; official code ``ctre_sim`` / ``ctre_seq``):

* ``ctre_sim``: connections grown by similarity that were *just dropped* in
  step 1 are not re-added; the same number of random absent connections is
  grown instead (simultaneous cosine + random exploration). The random ones
  are drawn among positions that are neither kept, nor grown by similarity,
  nor just dropped (just-dropped positions are used only if nothing else is left).
* ``ctre_seq``: similarity growth (just-dropped connections may come back)
  until the validation accuracy has not improved for ``patience`` epochs
  (the code's ``early_stop_epoch``, 40), then random growth (as SET) for the
  rest of training (sequential exploration).

New connections get a fresh value, ``grow="he_uniform"`` (the official
code's ``random_uniform``: ``U(-sqrt(6/n_in), sqrt(6/n_in))``), ``"init"``
(``U(+-1/sqrt(n_in))``, as our SET) or ``"zero"``; their optimizer moments
are reset by :meth:`sparsenb.Masking.update`. With a sparsity-aware ``init``
(:mod:`sparsenb.core.init`) the ``n_in`` of these ranges is each neuron's kept fan-in.

Initialisation in the official code (``zahraatashgahi/CTRE``, ``code/model_utils.py``): the
``masked_fully_connected`` layers of ``tensorflow.contrib.model_pruning`` with their default
``xavier_initializer`` (Glorot-uniform at the *dense* fan-in and fan-out) and zero biases, the
ER mask on top; new connections ``random_uniform`` as above, at the dense fan-in. The notebook's
``INIT="glorot"`` (:func:`sparsenb.core.init.dense_init_`) with ``init="dense"`` is exactly that. Pruned weights stay exactly zero
after every optimizer step (the mask's optimizer hooks).

Where the activations come from
    ``init_masks(model, data)`` keeps a handle on the model and on the
    training set (``data`` = the train DataLoader the Trainer passes as
    ``init_data``, a ``TensorDataset``, or a tensor ``X``). At the end of an
    epoch the method runs the model in eval mode over the training set in
    mini-batches of ``sim_batch_size`` (a loader of its own, not shuffled, so
    the training loader's random stream is untouched), with forward hooks on
    the ``nn.Linear`` layers that record each layer's input (= the previous
    layer's post-activation output); see :func:`activation_similarity`.

Cost of the similarity (stated because it is CTRE's price)
    Per epoch and per layer ``(n_out, n_in)``: ``N * n_in * n_out``
    multiply-adds for the accumulated product ``B^T A`` -- the cost of a
    *dense* forward pass of that layer over the N training examples -- plus
    one forward pass of the sparse network to get the activations, and
    ``O(n_in * n_out)`` memory for the dense score matrix (one float per
    possible connection, like a dense weight). It is computed batched: only
    a ``(sim_batch_size, n)`` slice of activations is held at a time and the
    products and squared norms are summed over mini-batches, instead of
    storing all ``N x n`` activations as the official code does. ``ctre_seq``
    pays it only during its cosine phase; ``ctre_sim`` every epoch.
"""
from __future__ import annotations

import time
from typing import Any, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ..core import criteria
from ..core import init as sparse_init
from ..core.dropgrow import drop, grow
from ..core.masks import Masking
from .base import Method, register

__all__ = ["cosine_similarity", "SimilarityAccumulator", "activation_similarity", "magnitude_drop",
           "ctre_masks", "CTRESim", "CTRESeq"]

GROW_OPTIONS = ("he_uniform", "init", "zero")


def cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``|cos|`` between the columns of ``a`` (N, n_in) and ``b`` (N, n_out): a tensor (n_out, n_in).

    Entry ``[j, i]`` is ``|a[:, i] . b[:, j]| / (||a[:, i]|| ||b[:, j]||)``, 0 where a norm is 0.
    """
    acc = SimilarityAccumulator(a.shape[1], b.shape[1], device=a.device)
    acc.add(a, b)
    return acc.similarity()


class SimilarityAccumulator:
    """Batched ``|cosine similarity|`` of input/output neuron activations over many mini-batches.

    Holds ``G = sum_batches B^T A`` (n_out, n_in) and the squared column norms
    ``sum a_i^2`` (n_in,), ``sum b_j^2`` (n_out,) (each batch's product in float32, the
    sums in float64); :meth:`similarity`
    returns ``|G| / (||b|| ||a||^T)`` (n_out, n_in) as float32. Each :meth:`add`
    of a batch of B rows costs ``B * n_in * n_out`` multiply-adds.
    """

    def __init__(self, n_in: int, n_out: int, device: torch.device | str = "cpu"):
        self.gram = torch.zeros(n_out, n_in, dtype=torch.float64, device=device)
        self.sq_in = torch.zeros(n_in, dtype=torch.float64, device=device)
        self.sq_out = torch.zeros(n_out, dtype=torch.float64, device=device)
        self.rows = 0

    @torch.no_grad()
    def add(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """Add one batch: ``a`` (B, n_in) input activations, ``b`` (B, n_out) output activations."""
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
            raise ValueError(f"need a (B, n_in) and b (B, n_out) with the same B, got {tuple(a.shape)}, {tuple(b.shape)}")
        if a.shape[1] != self.sq_in.numel() or b.shape[1] != self.sq_out.numel():
            raise ValueError(f"accumulator is for n_in={self.sq_in.numel()}, n_out={self.sq_out.numel()}; "
                             f"got a {tuple(a.shape)}, b {tuple(b.shape)}")
        a, b = a.float(), b.float()  # float32 products (fast), summed over batches in float64
        self.gram += (b.T @ a).double()
        self.sq_in += (a * a).sum(0).double()
        self.sq_out += (b * b).sum(0).double()
        self.rows += a.shape[0]

    def similarity(self) -> torch.Tensor:
        norm = self.sq_out.sqrt()[:, None] * self.sq_in.sqrt()[None, :]
        sim = torch.where(norm > 0, self.gram.abs() / norm.clamp_min(1e-300), torch.zeros_like(norm))
        return sim.float()


def _linear_layers(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]


@torch.no_grad()
def activation_similarity(model: nn.Module, batches: Iterable, device: torch.device | str | None = None
                          ) -> dict[str, torch.Tensor]:
    """``{"<linear>.weight": S (n_out, n_in)}``: |cosine similarity| of every ``nn.Linear`` layer's
    input and output neurons over all examples of ``batches`` (``x`` or ``(x, y)`` batches).

    A layer's input activations are what enters it (the flattened features for
    the first layer); its output activations are the input of the next Linear
    layer (the ReLU output of a hidden layer of an MLP) and, for the last
    layer, ``softmax(logits)``. The model runs in eval mode (restored after).
    The Linear layers must form a chain (each one's output feeds the next), as in
    :class:`sparsenb.models.MLP`; otherwise a ValueError says so.
    """
    layers = _linear_layers(model)
    if not layers:
        raise ValueError("activation_similarity needs a model with nn.Linear layers")
    for (n1, l1), (n2, l2) in zip(layers[:-1], layers[1:]):
        if l1.out_features != l2.in_features:
            raise ValueError(f"CTRE needs a chain of Linear layers (an MLP): {n1} has {l1.out_features} outputs "
                             f"but the next Linear {n2} has {l2.in_features} inputs")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    accs = [SimilarityAccumulator(m.in_features, m.out_features, device) for _, m in layers]
    seen: dict[int, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, i=i: seen.__setitem__(i, (inp[0], out)))
             for i, (_, m) in enumerate(layers)]
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            seen.clear()
            model(x.to(device))
            inputs = [seen[i][0].reshape(-1, layers[i][1].in_features).float() for i in range(len(layers))]
            logits = seen[len(layers) - 1][1].float()
            for i, acc in enumerate(accs):
                out = inputs[i + 1] if i + 1 < len(layers) else torch.softmax(logits, dim=1)
                acc.add(inputs[i], out)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return {f"{name}.weight" if name else "weight": acc.similarity() for (name, _), acc in zip(layers, accs)}


def magnitude_drop(weight: torch.Tensor, mask: torch.Tensor, drop_fraction: float) -> torch.Tensor:
    """CTRE's drop: bool mask of the ``int(drop_fraction * nnz)`` kept weights of smallest ``|w|``
    (:func:`sparsenb.core.dropgrow.drop` with CTRE's rounding down)."""
    return drop(criteria.magnitude(weight), mask, int(drop_fraction * int(mask.sum())))


def ctre_masks(weight: torch.Tensor, mask: torch.Tensor, drop_fraction: float, grow_scores: torch.Tensor,
               replace_regrown: bool, random_scores: torch.Tensor) -> tuple[torch.Tensor, dict[str, int]]:
    """One CTRE update of one layer: the new mask and counts.

    Args:
        weight, mask: the layer's weight and bool mask, shape (n_out, n_in).
        drop_fraction: fraction of active connections dropped (smallest ``|w|``; the paper's ``zeta``).
        grow_scores: (n_out, n_in) growth score: the |cosine similarity| (or random scores
            for random growth).
        replace_regrown: CTRE_sim's rule: grown positions that were just dropped are
            replaced by random ones (``random_scores``, (n_out, n_in) in [0, 1)).
        random_scores: uniform scores used for those replacements.

    Returns:
        ``(new_mask, {"dropped", "grown_by_score", "replaced_by_random"})``; the new mask has
        exactly as many True as ``mask``.
    """
    dropped = magnitude_drop(weight, mask, drop_fraction)
    kept = mask & ~dropped
    k = int(dropped.sum())
    grown = grow(grow_scores.to(mask.device), ~kept, k)
    replaced = 0
    if replace_regrown:
        regrown = grown & dropped
        replaced = int(regrown.sum())
        grown = grown & ~regrown
        # random replacements: never kept or already grown; prefer positions that were not just dropped
        pref = random_scores.to(mask.device) + (~dropped).float()
        grown = grown | grow(pref, ~(kept | grown), replaced)
    new = kept | grown
    return new, {"dropped": k, "grown_by_score": k - replaced, "replaced_by_random": replaced}


def _similarity_batches(data: Any, batch_size: int) -> DataLoader:
    if isinstance(data, DataLoader):
        dataset = data.dataset
    elif isinstance(data, torch.utils.data.Dataset):
        dataset = data
    elif torch.is_tensor(data):
        dataset = TensorDataset(data)
    elif isinstance(data, (tuple, list)) and data and torch.is_tensor(data[0]):
        dataset = TensorDataset(data[0])
    else:
        raise ValueError("CTRE needs the training data to compute neuron similarities: pass the train "
                         "DataLoader as init_masks(model, data) (Trainer(..., init_data=train_loader)), "
                         f"a Dataset or a tensor X; got {type(data).__name__}")
    return DataLoader(dataset, batch_size=batch_size, shuffle=False)


class _CTREBase(Method):
    """Shared machinery of the two CTRE variants (see the module docstring).

    Args:
        drop_fraction: fraction of each layer's connections replaced per epoch (the paper's ``zeta``;
            paper code: 0.2).
        grow: value of new connections: ``"he_uniform"`` (paper code), ``"init"`` or ``"zero"``.
        sim_batch_size: mini-batch size of the similarity pass over the training set.
        distribution: per-layer density, default ``"er"`` (the paper's).
    """

    replace_regrown = False

    SETTINGS = {"ZETA": "drop_fraction", "GROW_INIT": "grow", "SIM_BATCH_SIZE": "sim_batch_size"}

    def __init__(self, drop_fraction: float = 0.2, grow: str = "he_uniform", sim_batch_size: int = 1000,
                 distribution: str = "er", **kwargs: Any):
        super().__init__(distribution=distribution, **kwargs)
        if not 0.0 <= drop_fraction < 1.0:
            raise ValueError(f"drop_fraction must be in [0, 1), got {drop_fraction}")
        if grow not in GROW_OPTIONS:
            raise ValueError(f"grow must be one of {GROW_OPTIONS}, got {grow!r}")
        if sim_batch_size < 1:
            raise ValueError(f"sim_batch_size must be >= 1, got {sim_batch_size}")
        self.drop_fraction, self.grow, self.sim_batch_size = drop_fraction, grow, sim_batch_size
        self.model: nn.Module | None = None
        self.batches: DataLoader | None = None
        self.sim_seconds = 0.0  # wall time spent computing similarities
        self.sim_epochs = 0  # epochs at which similarities were computed

    def init_masks(self, model: nn.Module, data: Any = None) -> Masking:
        bad = [n for n, m in model.named_modules()
               if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d))]
        if bad:
            raise ValueError(f"CTRE is defined for MLPs (nn.Linear layers); the model has conv layers {bad}")
        self.model = model
        self.batches = _similarity_batches(data, self.sim_batch_size)
        return super().init_masks(model, data)

    def similarities(self) -> dict[str, torch.Tensor]:
        """The |cosine similarity| score of every Linear layer on the training set (timed)."""
        if self.model is None or self.batches is None:
            raise RuntimeError("call init_masks(model, data) before training a CTRE method")
        t0 = time.perf_counter()
        sims = activation_similarity(self.model, self.batches)
        self.sim_seconds += time.perf_counter() - t0
        self.sim_epochs += 1
        return sims

    def grow_values(self, param: torch.Tensor, new_mask: torch.Tensor) -> torch.Tensor | None:
        """Values for new connections of ``param`` (None = let Masking.update use ``self.grow``):
        ``U(+-sqrt(6 / fan_in))``, with the dense fan-in under ``init="dense"`` and the kept fan-in of
        ``new_mask`` under a sparse init (:func:`sparsenb.core.init.grow_bound`)."""
        if self.grow != "he_uniform":
            return None
        bound = sparse_init.grow_bound(param, new_mask, self.init, "he")
        if torch.is_tensor(bound):
            bound = bound.cpu()
        return (torch.rand(param.shape, generator=self.generator) * 2 - 1) * bound

    def evolve(self, epoch: int, masks: Masking, use_similarity: bool) -> None:
        """Drop and grow every sparse layer once (cosine growth if ``use_similarity``, else random)."""
        sims = self.similarities() if use_similarity else {}
        for mp in masks:
            if bool(mp.mask.all()):
                continue  # a dense layer stays dense
            rand = self.random_scores(mp.mask)
            scores = sims[mp.name] if use_similarity else self.random_scores(mp.mask)
            new, counts = ctre_masks(mp.param, mp.mask, self.drop_fraction, scores,
                                     self.replace_regrown and use_similarity, rand)
            values = self.grow_values(mp.param, new)
            change = masks.update(mp.name, new, grow="zero" if self.grow == "he_uniform" else self.grow,
                                  values=values, generator=self.generator)
            self.log(step=(epoch + 1) * self.steps_per_epoch, layer=mp.name,
                     change={**change, **counts, "cosine": int(use_similarity)})

    def is_last_epoch(self, epoch: int) -> bool:
        return bool(self.epochs) and epoch >= self.epochs - 1

    def state_dict(self) -> dict:
        return {**super().state_dict(), "sim_seconds": self.sim_seconds, "sim_epochs": self.sim_epochs}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.sim_seconds, self.sim_epochs = state["sim_seconds"], state["sim_epochs"]


@register("ctre_sim")
class CTRESim(_CTREBase):
    """CTRE_sim (Atashgahi et al. 2022): every epoch, drop ``drop_fraction`` smallest-|w| connections and grow
    the highest-|cosine similarity| absent ones; grown ones that were just dropped are replaced by
    random ones. See the module docstring.

    Args:
        **kwargs: ``drop_fraction``, ``grow``, ``sim_batch_size``, ``distribution`` (see the base class
            below) and ``sparsity``, ``dense``, ``seed`` of :class:`Method`.
    """

    replace_regrown = True

    def on_epoch_end(self, epoch: int, masks: Masking | None) -> None:
        if masks is None or self.is_last_epoch(epoch):
            return  # no evolution after the last epoch: the final topology is the trained one
        self.evolve(epoch, masks, use_similarity=True)


@register("ctre_seq")
class CTRESeq(_CTREBase):
    """CTRE_seq (Atashgahi et al. 2022): cosine-similarity growth until the validation accuracy has not
    improved for ``patience`` epochs, then random growth. See the module docstring.

    Args:
        val_data: ``(X_val (N_val, ...), y_val (N_val,))`` held out from training; required.
        patience: epochs without a new best validation accuracy before switching (paper code: 40).
        **kwargs: as :class:`CTRESim`.

    Attributes:
        switch_epoch: 0-based epoch at whose end growth became random (``None`` = never).
        val_history: validation accuracy after every epoch.
    """

    SETTINGS = {"PATIENCE": "patience"}

    def __init__(self, val_data: tuple[torch.Tensor, torch.Tensor] | None = None, patience: int = 40,
                 **kwargs: Any):
        super().__init__(**kwargs)
        if val_data is None or len(val_data) != 2 or len(val_data[0]) != len(val_data[1]) or len(val_data[1]) == 0:
            raise ValueError("ctre_seq needs val_data=(X_val, y_val), a non-empty validation split held out "
                             "from training, to detect when the validation accuracy stalls")
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.val_data, self.patience = val_data, patience
        self.best_val, self.since_best = -1.0, 0
        self.switch_epoch: int | None = None
        self.val_history: list[float] = []

    @torch.no_grad()
    def validation_accuracy(self) -> float:
        model = self.model
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        X, y = self.val_data
        correct = 0
        for i in range(0, len(y), self.sim_batch_size):
            logits = model(X[i:i + self.sim_batch_size].to(device))
            correct += int((logits.argmax(1).cpu() == y[i:i + self.sim_batch_size]).sum())
        model.train(was_training)
        return correct / len(y)

    def on_epoch_end(self, epoch: int, masks: Masking | None) -> None:
        if masks is None or self.model is None:
            return
        acc = self.validation_accuracy()
        self.val_history.append(acc)
        if acc > self.best_val:
            self.best_val, self.since_best = acc, 0
        else:
            self.since_best += 1
        if self.switch_epoch is None and self.since_best >= self.patience:
            self.switch_epoch = epoch
        if self.is_last_epoch(epoch):
            return
        self.evolve(epoch, masks, use_similarity=self.switch_epoch is None)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "best_val": self.best_val, "since_best": self.since_best,
                "switch_epoch": self.switch_epoch, "val_history": list(self.val_history)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.best_val, self.since_best = state["best_val"], state["since_best"]
        self.switch_epoch, self.val_history = state["switch_epoch"], list(state["val_history"])
