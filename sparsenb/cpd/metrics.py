"""Change-point detection metrics exactly as TCPDBench defines them.

van den Burg, G.J.J. and Williams, C.K.I. (2020), "An Evaluation of Change Point Detection
Algorithms", arXiv:2003.06222, Section 4 (``alan-turing-institute/TCPDBench``,
``analysis/scripts/metrics.py``). All locations are 0-based indices into the series; a change
point at ``t`` means a new segment starts at ``t``.

F1 against K annotators (margin M = 5)
    Every annotator's set ``T_k`` and the prediction set ``X`` get the point 0 added (the start
    of the series counts as a change point, so an empty prediction is never undefined).
    ``T* = union_k T_k``. A true positive of ``T`` in ``X`` is a ``tau`` in ``T`` with an
    ``x`` in ``X``, ``|tau - x| <= M``, each ``x`` used at most once (each ``tau``, in set
    iteration order, takes its closest unused ``x``)::

        P = |TP(T*, X)| / |X|
        R = (1/K) sum_k |TP(T_k, X)| / |T_k|
        F1 = 2 P R / (P + R)

Covering (Arbelaez et al. 2011, eq. 8) against K annotators
    A set of change points cuts ``0..n-1`` into segments (a point at 0 adds nothing).
    ``C(S', S) = (1/n) sum_{A in S} |A| max_{A' in S'} J(A, A')`` with ``J`` the Jaccard index,
    ``S`` an annotator's segmentation and ``S'`` the prediction's; the score is the mean of
    ``C(S_pred, S_k)`` over the annotators.
"""
from __future__ import annotations

from typing import Iterable, Mapping

__all__ = ["true_positives", "f_measure", "partition_from_cps", "cover_single", "covering"]


def true_positives(truth: Iterable[int], predictions: Iterable[int], margin: int = 5) -> set[int]:
    """The points of ``truth`` matched by a distinct prediction within ``margin`` (closest first).

    Matching follows TCPDBench: the truth points are visited in Python set order and each
    takes the closest still unused prediction (ties: the smaller prediction).
    """
    unused = set(predictions)
    matched = set()
    for tau in set(truth):
        close = sorted((abs(tau - x), x) for x in unused if abs(tau - x) <= margin)
        if close:
            matched.add(tau)
            unused.remove(close[0][1])
    return matched


def f_measure(annotations: Mapping[str, Iterable[int]], predictions: Iterable[int], margin: int = 5,
              return_pr: bool = False) -> float | tuple[float, float, float]:
    """TCPDBench's F1 of ``predictions`` against every annotator (0 added to every set).

    annotations: {annotator_id: change-point indices}; predictions: change-point indices.
    Returns F1, or (F1, precision, recall) with ``return_pr``.
    """
    if not annotations:
        raise ValueError("f_measure needs at least one annotator")
    truth_k = [set(cps) | {0} for cps in annotations.values()]
    pred = set(predictions) | {0}
    union = set().union(*truth_k)
    precision = len(true_positives(union, pred, margin)) / len(pred)
    recall = sum(len(true_positives(t, pred, margin)) / len(t) for t in truth_k) / len(truth_k)
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return (f1, precision, recall) if return_pr else f1


def partition_from_cps(locations: Iterable[int], n_obs: int) -> list[set[int]]:
    """The segments of ``0..n_obs-1`` cut at each location (0 and out-of-range cuts add nothing)."""
    cuts = sorted(c for c in set(locations) if 0 < c < n_obs)
    bounds = [0, *cuts, n_obs]
    return [set(range(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]


def cover_single(pred_segments: list[set[int]], true_segments: list[set[int]]) -> float:
    """Covering of the segmentation ``true_segments`` by ``pred_segments`` (Arbelaez et al., eq. 8)."""
    n = sum(map(len, true_segments))
    if n != sum(map(len, pred_segments)):
        raise ValueError("the two segmentations cover different numbers of points")
    total = 0.0
    for seg in true_segments:
        total += len(seg) * max(len(seg & p) / len(seg | p) for p in pred_segments)
    return total / n


def covering(annotations: Mapping[str, Iterable[int]], predictions: Iterable[int], n_obs: int) -> float:
    """TCPDBench's covering: mean over annotators of the covering of their segmentation by the prediction's."""
    if not annotations:
        raise ValueError("covering needs at least one annotator")
    pred = partition_from_cps(predictions, n_obs)
    scores = [cover_single(pred, partition_from_cps(cps, n_obs)) for cps in annotations.values()]
    return sum(scores) / len(scores)
