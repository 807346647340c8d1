"""The core of sparse training, shared by every method: what a mask is and how masks are chosen.

* :mod:`.masks`: the mask container (``Masking``, one bool buffer per prunable weight, 1 = kept),
  ``sparsify``, optimizer hooks that keep pruned weights exactly zero, top-k selection.
* :mod:`.distributions`: per-layer density (uniform, ER, ERK), exact integer nnz per layer.
* :mod:`.criteria`: scores, tensor in, tensor out (magnitude, gradient, SNIP, GraSP, SynFlow ...).
* :mod:`.pruning`: scores to masks (global / layer-wise top-k), pruning at initialisation,
  magnitude pruning, layer collapse.
* :mod:`.seeding`: derived random generators, so that mask draws do not disturb other streams.
"""
from . import criteria, distributions, masks, pruning, seeding

__all__ = ["masks", "distributions", "criteria", "pruning", "seeding"]
