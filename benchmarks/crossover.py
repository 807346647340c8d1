"""Where sparse wins: time per training step of dense, masked and truly sparse layers vs density and width.

Usage (about two minutes on 2 cores; ``--quick``: seconds, for tests)::

    python benchmarks/crossover.py [--quick] [--threads N] [--out FILE]

Runs :func:`sparsenb.layers.backend.crossover_sweep` (square layers, batch 128, forward +
backward + SGD step; variants interleaved in rounds inside one process) and
:func:`~sparsenb.layers.backend.crossover_densities`. The JSON holds every row, the crossover
density per width, the machine, threads and the load average per width. After re-measuring,
copy the printed ``CROSSOVER_DENSITY`` into ``sparsenb/layers/backend.py`` (a test checks that
the constant and the committed JSON agree): it is what ``sparse_linear(backend="auto")`` uses.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import OUT_HELP, finish, load_avg, machine, machine_cores, output_path, write_result  # noqa: E402
from sparsenb.layers.backend import crossover_densities, crossover_sweep  # noqa: E402

FULL = {"widths": [256, 1024, 4096], "densities": [0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01], "rounds": 5,
        "steps": {256: 20, 1024: 5, 4096: 1}}
QUICK = {"widths": [32, 64], "densities": [0.5, 0.1], "rounds": 2, "steps": {32: 1, 64: 1}}


def rounded(cross: dict[int, float | None]) -> dict[int, float]:
    """Crossover densities at 2 significant digits: the form of ``CROSSOVER_DENSITY``; 0.0 where the
    truly sparse layer was never faster (no density picks it)."""
    return {w: (float(f"{c:.2g}") if c is not None else 0.0) for w, c in cross.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a test), not a measurement")
    ap.add_argument("--threads", type=int, help="torch threads (default: all cores of the machine)")
    ap.add_argument("--out", help=OUT_HELP)
    args = ap.parse_args(argv)
    out = output_path("crossover", ap, args)
    s = QUICK if args.quick else FULL
    threads = args.threads or machine_cores()
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    data: dict[str, Any] = {"benchmark": "crossover", **machine(threads),
                            "settings": {"quick": args.quick, "batch": 128, **{k: v for k, v in s.items() if k != "steps"},
                                         "steps": {str(k): v for k, v in s["steps"].items()},
                                         "timed": "zero_grad + forward + backward + SGD(momentum) step"},
                            "rows": [], "load_avg_per_width": []}
    for w in s["widths"]:
        data["rows"] += crossover_sweep([w], s["densities"], rounds=s["rounds"], steps=s["steps"][w])
        load = load_avg()
        data["load_avg_per_width"].append(load[0] if load else None)
        print(f"width {w}: " + ", ".join(f"{r['variant']}@{r['density']:g} {r['ms']:.2f} ms"
                                         for r in data["rows"] if r["width"] == w), flush=True)
    cross = crossover_densities(data["rows"])
    data["crossover_density"] = {str(w): c for w, c in cross.items()}
    data["crossover_density_rounded"] = {str(w): c for w, c in rounded(cross).items()}
    data["seconds"] = round(time.perf_counter() - t0, 1)
    finish(data, data["load_avg_per_width"], threads)
    write_result(out, data)
    print("CROSSOVER_DENSITY: dict[int, float] = " + repr(rounded(cross)))
    return data


if __name__ == "__main__":
    main()
