"""Exact top-k of a large 1-D score, faster than ``torch.topk`` when ``k`` is a small part of it.

Dynamic sparse training picks the ``k`` smallest kept magnitudes (drop) and the ``k`` largest
scores among absent positions (grow) over every weight of a layer, e.g. ``k`` = 126K of 4.2M
for a 2048x2048 layer at 90 % sparsity with RigL's drop fraction 0.3. ``torch.topk`` on the CPU
costs about as much as sorting a good part of the input; selecting candidates first is cheaper:

1. a sample of the scores (``_SAMPLE`` positions ``i * 2654435761 mod n``, a multiplicative hash:
   no random numbers drawn, spread over rows *and* columns of a weight matrix; a plain stride
   such as ``n // _SAMPLE`` = 256 on a 2048x2048 layer would see only 8 columns, and the scores
   of a column are correlated: ``|dL/dw_ij| = |sum_n delta_i x_j|``) gives a
   threshold ``t`` that at least ``k`` scores reach with a wide margin (the sample's rank
   ``k * m / n`` plus 4 standard deviations of a binomial count, plus 32);
2. one comparison pass and ``nonzero`` keep the candidates ``score >= t`` (``<=`` for the smallest);
3. ``torch.topk`` runs on the candidates only.

The result is the *same set* of indices that ``torch.topk(score, k, largest=largest)`` returns
(the order is unspecified, as with ``sorted=False``). When that set is not unique (scores tied at
the k-th value, some inside and some outside) or when the margin was not enough, or the scores
hold NaN, it falls back to ``torch.topk`` on the whole input, so the choice among ties is torch's
in every case. Runs on any device; one host sync (the candidate count).
"""
from __future__ import annotations

import math

import torch

__all__ = ["topk_indices"]

_MIN_SIZE = 1 << 16   # below this, torch.topk directly
_SAMPLE = 1 << 14     # sample size for the threshold
_HASH = 2654435761  # Knuth's multiplicative constant (odd, about 2^32 / golden ratio)


def _sample_positions(n: int, device: torch.device) -> torch.Tensor:
    """``_SAMPLE`` distinct positions in ``[0, n)``, ``n >= _MIN_SIZE``: ``i * _HASH mod n`` spread
    over the whole range (distinct whenever ``gcd(_HASH, n) = 1``; repeats elsewhere only cost
    sample size, never correctness, since every result is checked)."""
    i = torch.arange(_SAMPLE, dtype=torch.int64, device=device)
    return (i * _HASH) % n


def topk_indices(score: torch.Tensor, k: int, largest: bool = True) -> torch.Tensor:
    """Indices ``(k,)`` (int64) of the ``k`` largest (``largest=False``: smallest) entries of ``score``.

    Args:
        score: 1-D tensor ``(n,)``; any real dtype.
        k: how many, ``0 <= k <= n``.
        largest: pick the largest (default) or the smallest scores.

    Returns:
        The same index set as ``torch.topk(score, k, largest=largest, sorted=False).indices``.
    """
    if score.dim() != 1:
        raise ValueError(f"score must be 1-D, got shape {tuple(score.shape)}")
    n = score.numel()
    if not 0 <= k <= n:
        raise ValueError(f"k={k} outside [0, {n}]")
    if n < _MIN_SIZE or k == 0 or 4 * k > n or not score.is_floating_point():
        return torch.topk(score, k, largest=largest, sorted=False).indices
    sample = score[_sample_positions(n, score.device)]
    m = sample.numel()
    expected = k * m / n
    rank = min(m, int(expected + 4.0 * math.sqrt(expected) + 32))
    t = torch.topk(sample, rank, largest=largest, sorted=False).values
    t = t.min() if largest else t.max()
    cand = (score >= t) if largest else (score <= t)
    idx = cand.nonzero().squeeze(1)
    # NaN anywhere: ``max`` propagates it (a reduction, no full-size bool as ``isnan(score).any()``)
    if idx.numel() < k or bool(torch.isnan(t)) or bool(torch.isnan(score.max())):
        return torch.topk(score, k, largest=largest, sorted=False).indices
    vals = score[idx]
    top = torch.topk(vals, k, largest=largest, sorted=False)
    kth = top.values.min() if largest else top.values.max()
    # a tie at the k-th value that straddles the cut: the set is not unique, let torch choose
    if int((vals == kth).sum()) != int((top.values == kth).sum()):
        return torch.topk(score, k, largest=largest, sorted=False).indices
    return idx[top.indices]
