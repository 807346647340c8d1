"""Layers that are sparse in their own right (no dense weight, no mask).

* :mod:`.truly_sparse`: ``TrulySparseLinear`` and its SET evolution, All-ReLU,
  neuron importance pruning and ``TrulySparseMLP`` (Curci, Mocanu, Pechenizkiy
  2021, "Truly Sparse Neural Networks at Scale", arXiv:2102.01732).
* :mod:`.dropout`: ``FastDropout``, dropout whose CPU mask takes 16 random bits an
  element (torch's CPU dropout mask was drawn serially on the AMD CPU of the records).
* :mod:`.transpose`: ``transposed_copy``, the layer's transposed copies on one thread
  (torch) or, opt-in (``compiled_transposes=True``), by a kernel ``torch.compile`` builds.
* :mod:`.backend`: ``sparse_linear(..., backend="auto")`` picks masked-dense or truly
  sparse by the measured crossover density (``CROSSOVER_DENSITY``, or your machine's:
  ``crossover_table``).
"""
from .backend import CROSSOVER_DENSITY, choose_backend, crossover_table, sparse_linear
from .dropout import FastDropout, dropout_mask, fast_dropout
from .transpose import transposed_copy
from .truly_sparse import (
    AllReLU,
    TrulySparseLinear,
    TrulySparseMLP,
    er_density,
    evolve_set,
    importance_prune,
    neuron_importance,
    sample_positions,
    should_prune,
)

__all__ = [
    "TrulySparseLinear", "TrulySparseMLP", "AllReLU", "evolve_set", "importance_prune",
    "neuron_importance", "should_prune", "er_density", "sample_positions",
    "sparse_linear", "choose_backend", "crossover_table", "CROSSOVER_DENSITY", "FastDropout", "fast_dropout", "dropout_mask",
    "transposed_copy",
]
