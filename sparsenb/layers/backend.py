"""Where sparse wins: the measured crossover between masked-dense and truly sparse linear layers.

A sparse linear layer can be computed two ways in sparsenb:

* ``"masked"``: a dense ``nn.Linear`` whose weight carries a bool mask
  (:func:`sparsenb.sparsify`, re-applied after each optimizer step). Its time per
  training step is that of the dense layer (plus a few %, ``benchmarks/mask_overhead.py``)
  at *any* density: it computes every zero.
* ``"truly_sparse"``: :class:`~sparsenb.layers.truly_sparse.TrulySparseLinear`, which
  stores and computes only the ``nnz`` connections; its time grows with ``nnz`` (CSR
  products and an SDDMM) and has a per-call overhead the dense BLAS kernel does not have.

Truly sparse wins below a *crossover density* that depends on the layer's size (and on
the machine). :func:`crossover_sweep` measures time per training step (forward, backward
and an SGD step, batch 128) of dense, masked and truly sparse square layers over widths
and densities; :func:`crossover_densities` finds, per width, the density at which the
truly sparse layer becomes as fast as the masked one (log-log interpolation between the
measured densities). ``benchmarks/crossover.py`` runs it and writes
``results/benchmarks/crossover.json``; :data:`CROSSOVER_DENSITY` holds its result, and
``sparse_linear(..., backend="auto")`` picks by it (:func:`choose_backend`).

:data:`CROSSOVER_DENSITY` was measured on one machine. To pick by your own machine's crossover,
measure it and pass the table::

    python benchmarks/crossover.py --out my_crossover.json      # under a minute on 2 cores
    layer = sparse_linear(4096, 4096, 0.05, backend="auto", table=crossover_table("my_crossover.json"))
"""
from __future__ import annotations

import json
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from .truly_sparse import TrulySparseLinear

__all__ = ["CROSSOVER_DENSITY", "choose_backend", "sparse_linear", "crossover_table", "crossover_sweep",
           "crossover_densities", "plot_crossover"]

#: ``{width: density}``: below this density a truly sparse square ``width x width`` layer trains
#: faster than a masked dense one (batch 128, float32, CPU); 0.0 would mean never (on a 2-core
#: Intel Xeon with AVX-512 the masked layer won at 256^2 at every density measured; there the
#: table was {256: 0.0, 1024: 0.21, 4096: 0.26}). Measured by ``benchmarks/crossover.py``
#: (``results/benchmarks/crossover.json``: 2-core AMD EPYC, 1 thread, idle machine; see the load
#: recorded there); a test checks the two agree.
CROSSOVER_DENSITY: dict[int, float] = {256: 0.11, 1024: 0.27, 4096: 0.27}

BACKENDS = ("auto", "masked", "truly_sparse")


def choose_backend(in_features: int, out_features: int, density: float,
                   table: dict[int, float] | None = None) -> str:
    """``"truly_sparse"`` if ``density`` is below the crossover density of a layer this size, else ``"masked"``.

    The size is the geometric mean ``sqrt(in_features * out_features)`` (a square layer of the
    same number of weights); the crossover is interpolated linearly in ``log(width)`` between
    the measured widths of ``table`` (default :data:`CROSSOVER_DENSITY`) and held constant
    beyond them.
    """
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    table = dict(sorted((CROSSOVER_DENSITY if table is None else table).items()))
    if not table:
        raise ValueError("the crossover table is empty; measure it with benchmarks/crossover.py")
    w = math.sqrt(in_features * out_features)
    widths, dens = list(table), list(table.values())
    if w <= widths[0]:
        cross = dens[0]
    elif w >= widths[-1]:
        cross = dens[-1]
    else:
        i = next(i for i in range(1, len(widths)) if w <= widths[i])
        t = (math.log(w) - math.log(widths[i - 1])) / (math.log(widths[i]) - math.log(widths[i - 1]))
        cross = dens[i - 1] + t * (dens[i] - dens[i - 1])
    return "truly_sparse" if density < cross else "masked"


def crossover_table(path: str | os.PathLike) -> dict[int, float]:
    """The ``{width: crossover density}`` table of a ``benchmarks/crossover.py`` output file, for
    :func:`choose_backend` and :func:`sparse_linear` (``table=``); a width where the truly sparse
    layer was never faster gets 0.0 (the masked layer is always chosen there)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        cross = data["crossover_density"]
        table = {int(w): float(c) if c is not None else 0.0 for w, c in cross.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path} is not an output of benchmarks/crossover.py ({type(e).__name__}: {e}); "
                         f"measure one with: python benchmarks/crossover.py --out {path}") from e
    if not table:
        raise ValueError(f"{path} holds no crossover density; measure one with: python benchmarks/crossover.py")
    return table


def sparse_linear(in_features: int, out_features: int, density: float, backend: str = "auto",
                  bias: bool = True, generator: torch.Generator | None = None,
                  table: dict[int, float] | None = None) -> nn.Module:
    """A linear layer with exactly ``round(density * in * out)`` random connections.

    Args:
        backend: ``"truly_sparse"`` (:class:`TrulySparseLinear`), ``"masked"`` (``nn.Linear``
            with a uniform random mask from :func:`sparsenb.sparsify`: attach it to your
            optimizer with ``sparsenb.Masking(layer).attach(opt)`` to keep it exactly sparse),
            or ``"auto"``: the faster of the two for this size and density on the measured
            machine (:func:`choose_backend`).
        generator: random generator of the topology (and of the init of the truly sparse layer).
        table: ``{width: crossover density}`` that ``"auto"`` picks by (default
            :data:`CROSSOVER_DENSITY`; your machine's: :func:`crossover_table`).

    The returned module records its choice in ``.sparse_backend``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        backend = choose_backend(in_features, out_features, density, table)
    if backend == "truly_sparse":
        layer: nn.Module = TrulySparseLinear(in_features, out_features, density=density, bias=bias,
                                             generator=generator)
    else:
        from ..core.masks import Masking, topk_mask

        layer = nn.Linear(in_features, out_features, bias=bias)
        masks = Masking(layer, ["weight"])
        scores = torch.rand(layer.weight.shape, generator=generator)
        masks.update("weight", topk_mask(scores, round(density * layer.weight.numel())))
    layer.sparse_backend = backend
    return layer


# -------------------------------------------------------------- measurement
def _time_steps(step, rounds_times: list[float], steps: int) -> None:
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    rounds_times.append((time.perf_counter() - t0) / steps * 1e3)


def crossover_sweep(widths: Sequence[int], densities: Sequence[float], batch: int = 128, rounds: int = 3,
                    steps: int = 2, seed: int = 0) -> list[dict[str, Any]]:
    """Time per training step of square layers: dense, masked and truly sparse at each density.

    One step = ``zero_grad``, forward, ``loss = y.square().mean()``, backward, SGD step
    (lr 0.01, momentum 0.9); for ``masked`` the masks are attached to the optimizer (the
    full sparsenb contract: re-masked after every step). ``dense`` and ``masked`` do not
    depend on the density and are measured once per width (masked at the smallest density).
    Per width, all variants are timed in ``rounds`` interleaved rounds of ``steps`` steps
    (after one warm-up step each); reported: the median ms per step and, per variant, the
    median over rounds of the paired ratio to dense.

    Returns rows ``{"width", "variant", "density", "ms", "x_dense"}`` (density 1.0 for dense).
    """
    rows = []
    for w in widths:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(batch, w, generator=g)
        torch.manual_seed(seed)
        mods: dict[tuple[str, float], nn.Module] = {("dense", 1.0): nn.Linear(w, w),
                                                    ("masked", min(densities)): sparse_linear(
                                                        w, w, min(densities), "masked", generator=g)}
        for d in densities:
            mods[("sparse", d)] = sparse_linear(w, w, d, "truly_sparse", generator=g)
        steppers = {}
        for key, m in mods.items():
            opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
            if key[0] == "masked":
                from ..core.masks import Masking

                Masking(m, ["weight"]).attach(opt)

            def step(m=m, opt=opt):
                opt.zero_grad(set_to_none=True)
                m(x).square().mean().backward()
                opt.step()

            step()
            steppers[key] = step
        times: dict[tuple[str, float], list[float]] = {k: [] for k in mods}
        keys = list(mods)
        for r in range(rounds):
            for k in keys[r % len(keys):] + keys[:r % len(keys)]:
                _time_steps(steppers[k], times[k], steps)
        dense = times[("dense", 1.0)]
        for (variant, d), ts in times.items():
            rows.append({"width": w, "variant": variant, "density": d, "ms": statistics.median(ts),
                         "x_dense": statistics.median(a / b for a, b in zip(ts, dense))})
    return rows


def crossover_densities(rows: Sequence[dict]) -> dict[int, float | None]:
    """Per width, the density where truly sparse and masked take the same time per step.

    Between the two measured densities where ``ms_sparse / ms_masked`` crosses 1, the
    crossover is interpolated linearly in ``(log density, log ratio)``. If the truly sparse
    layer is faster at every measured density, the largest one is returned as a lower
    bound; if it is slower at every one, ``None``.
    """
    out: dict[int, float | None] = {}
    for w in sorted({r["width"] for r in rows}):
        masked = next(r["ms"] for r in rows if r["width"] == w and r["variant"] == "masked")
        pts = sorted((r["density"], r["ms"] / masked) for r in rows if r["width"] == w and r["variant"] == "sparse")
        faster = [d for d, q in pts if q < 1.0]
        if not faster:
            out[w] = None
            continue
        cross = max(faster)
        for (d0, q0), (d1, q1) in zip(pts, pts[1:]):
            if q0 < 1.0 <= q1:
                t = -math.log(q0) / (math.log(q1) - math.log(q0))
                cross = math.exp(math.log(d0) + t * (math.log(d1) - math.log(d0)))
        out[w] = cross
    return out


def plot_crossover(rows: Sequence[dict], title: str = ""):
    """Time per step vs density, one panel per width: truly sparse (line), masked and dense (levels),
    and the crossover density of :func:`crossover_densities` (grey line: below it the truly sparse
    layer is faster than the masked one, the choice ``backend="auto"`` makes)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")

    widths = sorted({r["width"] for r in rows})
    fig, axes = plt.subplots(1, len(widths), figsize=(4 * len(widths), 3.4), squeeze=False)
    cross = crossover_densities(rows)
    for ax, w in zip(axes[0], widths):
        sp = sorted((r["density"], r["ms"]) for r in rows if r["width"] == w and r["variant"] == "sparse")
        ax.plot([d for d, _ in sp], [m for _, m in sp], "o-", label="truly sparse")
        for variant, style in (("dense", "k--"), ("masked", "r:")):
            ms = next(r["ms"] for r in rows if r["width"] == w and r["variant"] == variant)
            ax.axhline(ms, color=style[0], linestyle=style[1:], label=variant)
        ax.set_xscale("log")
        ax.set_yscale("log")  # scales first: an annotation placed before would use the linear limits
        if cross[w] is not None:
            ax.axvline(cross[w], color="gray", alpha=0.5, label="crossover with masked")
            ax.annotate(f"crossover {cross[w]:.2g}", (cross[w], 0.03), xycoords=ax.get_xaxis_transform(),
                        fontsize=8, rotation=90, va="bottom", ha="right")
        ax.set_xticks([d for d, _ in sp], [f"{d:g}" for d, _ in sp], rotation=45)
        ax.xaxis.set_minor_formatter(NullFormatter())
        low, high = ax.get_ylim()
        if high / low > 10:  # over a decade: label 1-2-5 only, or the minor labels collide
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_minor_formatter(NullFormatter())
        else:
            ax.yaxis.set_minor_formatter(plain)
        ax.yaxis.set_major_formatter(plain)
        ax.set_xlabel("density")
        ax.set_title(f"{w} x {w}")
    axes[0][0].set_ylabel("ms per training step")
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
