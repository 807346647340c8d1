"""Baseline change-point detectors from ``ruptures`` and the zero detector, with the TCPDBench protocols.

Truong, Oudre, Vayatis (2020), "Selective review of offline change point detection methods",
Signal Processing 167 (``ruptures`` 1.1.10): PELT (Killick et al. 2012), binary segmentation,
bottom-up segmentation and window-based detection. The protocols follow van den Burg &
Williams (2020), "An Evaluation of Change Point Detection Algorithms":

* ``default``: one fixed setting per method for every series: cost ``"l2"`` (a change in
  mean), ``min_size=2``, ``jump=1`` (ruptures' own default ``jump=5`` would round every
  location to a multiple of 5), penalty = BIC for a mean change in d channels at unit
  variance, ``(d + 1) log(n)`` (the series are z-scored before detection); the window
  method uses ``width = min(100, n // 5)`` (ruptures' default 100, shortened on short series).
* ``oracle`` ("best" in TCPDBench): every setting of a grid is run and, per series and per
  metric, the best score is kept: an upper bound on what tuning could reach, not a fair
  online number. Grid: cost in {l1, l2} x penalty in ``PEN_FACTORS`` x the default penalty,
  and for the window method also ``width`` in ``WINDOW_WIDTHS``.
* ``zero``: no change point at all (TCPDBench's reference detector).

Every detector returns 0-based change-point locations: the first index of each new segment.
"""
from __future__ import annotations

import math

import numpy as np

from .._optional import require

__all__ = ["METHODS", "PEN_FACTORS", "WINDOW_WIDTHS", "bic_penalty", "detect_ruptures",
           "default_setting", "oracle_grid", "zero"]

METHODS = ("pelt", "binseg", "bottomup", "window")
PEN_FACTORS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0, 25.0)
WINDOW_WIDTHS = (10, 20, 50, 100)


def bic_penalty(z: np.ndarray) -> float:
    """``(d + 1) log(n)`` for a z-scored series z (n, d): BIC for a mean change at unit variance."""
    n, d = z.shape
    return float((d + 1) * math.log(max(n, 2)))


def _window_width(n: int, width: int | None = None) -> int:
    w = width if width is not None else min(100, n // 5)
    return max(4, min(w, n // 2))


def detect_ruptures(z: np.ndarray, method: str, model: str = "l2", pen: float = 1.0,
                    width: int | None = None) -> list[int]:
    """Change points of ``ruptures``' ``method`` on z (n, d): the start index of each new segment."""
    rpt = require("ruptures", "timeseries", "the ruptures change-point baselines")

    n = len(z)
    if n < 4:
        return []
    if method == "pelt":
        algo = rpt.Pelt(model=model, min_size=2, jump=1)
    elif method == "binseg":
        algo = rpt.Binseg(model=model, min_size=2, jump=1)
    elif method == "bottomup":
        algo = rpt.BottomUp(model=model, min_size=2, jump=1)
    elif method == "window":
        algo = rpt.Window(width=_window_width(n, width), model=model, min_size=2, jump=1)
    else:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    bkps = algo.fit(z).predict(pen=pen)
    return [int(b) for b in bkps if 0 < b < n]  # ruptures ends its list with n


def default_setting(z: np.ndarray, method: str) -> dict:
    """The ``default`` protocol's setting of ``method`` for this series."""
    setting = {"model": "l2", "pen": bic_penalty(z)}
    if method == "window":
        setting["width"] = _window_width(len(z))
    return setting


def oracle_grid(z: np.ndarray, method: str) -> list[dict]:
    """Every setting the ``oracle`` protocol tries for ``method`` on this series."""
    base = bic_penalty(z)
    widths = sorted({_window_width(len(z), w) for w in WINDOW_WIDTHS}) if method == "window" else [None]
    grid = []
    for model in ("l1", "l2"):
        for factor in PEN_FACTORS:
            for w in widths:
                setting = {"model": model, "pen": base * factor}
                if w is not None:
                    setting["width"] = w
                grid.append(setting)
    return grid


def zero(z: np.ndarray) -> list[int]:
    """The zero detector: no change point."""
    return []

