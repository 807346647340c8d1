"""SET: Sparse Evolutionary Training.

Mocanu, Mocanu, Stone, Nguyen, Gibescu, Liotta (2018), "Scalable training of
artificial neural networks with adaptive sparse connectivity inspired by
network science", Nature Communications 9:2383.

At the end of every training epoch but the last, for every sparse layer:

1. remove the fraction ``drop_fraction`` (the paper's ``zeta``) of its connections closest to
   zero: the ``round(zeta * n_pos)`` smallest positive weights and the
   ``round(zeta * n_neg)`` largest negative weights (paper, Algorithm 1;
   :func:`sparsenb.core.dropgrow.set_drop`, i.e. :func:`~sparsenb.core.dropgrow.drop` by ``|w|`` per sign);
2. add as many new connections at positions chosen uniformly at random among
   the currently absent ones, so the layer's nnz is unchanged (:func:`~sparsenb.core.dropgrow.grow`
   with uniform random scores).

New weights get a fresh random value (``grow="init"``, the paper's choice) or
zero (``grow="zero"``); their optimizer moments are reset (see :mod:`sparsenb.core.masks`).
The initial topology is Erdős–Rényi in the paper (``distribution="er"``); ERK
gives the same densities for MLPs.

Initialisation in the official code (``dcmocanu/sparse-evolutionary-artificial-neural-networks``):
the Keras version (``SET-MLP-Keras-Weights-Mask``) builds dense ``Dense`` layers with Keras'
default Glorot-uniform weights (dense fan-in and fan-out) and zero biases and enforces the mask as a
kernel constraint, so new connections start at 0 there; the NumPy versions draw initial and new
weights from N(0, 0.1^2) (``SET-MLP-Sparse-Python-Data-Structures``) or He-uniform with the dense
fan-in (``set_mlp_sequential.py``, also the truly sparse code). Here the weights are the model's own
(``sparsenb.core.init.dense_init_(model, "glorot")`` reproduces the Keras start) unless ``init`` of
:class:`~sparsenb.methods.base.Method` asks for the sparsity-aware rule of :mod:`sparsenb.core.init`; a fresh
``grow="init"`` value is ``U(+-1/sqrt(fan_in))`` with the dense fan-in under ``init="dense"`` and
each neuron's kept fan-in under a sparse init.
"""
from __future__ import annotations

from typing import Any

from ..core.dropgrow import grow, set_drop
from ..core.masks import Masking
from .base import Method, register


@register("set")
class SET(Method):
    """Sparse Evolutionary Training (Mocanu et al. 2018); see the module docstring.

    Args:
        drop_fraction: fraction of each layer's connections replaced per epoch (paper's ``zeta``: 0.3).
        grow: value of new connections, ``"init"`` (paper) or ``"zero"``.
        **kwargs: ``sparsity``, ``distribution``, ``dense``, ``seed`` of :class:`Method`.
    """

    SETTINGS = {"ZETA": "drop_fraction"}

    def __init__(self, drop_fraction: float = 0.3, grow: str = "init", **kwargs: Any):
        super().__init__(**kwargs)
        if not 0.0 <= drop_fraction < 1.0:
            raise ValueError(f"drop_fraction must be in [0, 1), got {drop_fraction}")
        if grow not in ("zero", "init"):
            raise ValueError(f"grow must be 'zero' or 'init', got {grow!r}")
        self.drop_fraction, self.grow = drop_fraction, grow

    def on_epoch_end(self, epoch: int, masks: Masking | None) -> None:
        if masks is None or (self.epochs and epoch >= self.epochs - 1):
            return  # no evolution after the last epoch: the final topology is the trained one
        for mp in masks:
            if bool(mp.mask.all()):
                continue  # a dense layer stays dense
            dropped = set_drop(mp.param, mp.mask, self.drop_fraction)
            kept = mp.mask & ~dropped
            grown = grow(self.random_scores(mp.mask), ~kept, int(dropped.sum()))
            change = masks.update(mp.name, kept | grown, grow=self.grow, generator=self.generator)
            self.log(step=(epoch + 1) * self.steps_per_epoch, layer=mp.name, change=change)
