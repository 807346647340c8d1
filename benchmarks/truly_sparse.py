"""Truly sparse vs dense vs masked-dense linear layers: fwd+bwd time and memory.

Curci, Mocanu, Pechenizkiy (2021), "Truly Sparse Neural Networks at Scale", arXiv:2102.01732.

Usage::

    python benchmarks/truly_sparse.py [--quick] [--threads 2] [--out results/benchmarks/truly_sparse.json]

What is measured, for square layers ``width x width`` (1,000 / 4,000 / 16,000),
batch 128, float32, CPU:

* variants: ``dense`` (``nn.Linear``), ``masked`` (a dense weight times a bool
  mask in the forward, ``F.linear(x, W * mask, b)``, as :class:`sparsenb.Masking`
  keeps a dense weight and a bool mask; time and memory do not depend on the
  density, so it is measured once per width at density 1 %) and ``sparse``
  (:class:`sparsenb.layers.TrulySparseLinear`) at densities 10 % / 1 % / 0.1 %;
* time: one forward + backward (``loss = y.square().mean(); loss.backward()``,
  gradients of the input, the weights/values and the bias), no optimizer step.
  All variants of a width are built once; then ``rounds`` interleaved rounds
  (the order rotates every round) each time a block of ``steps`` steps per
  variant after ``warmup`` steps. Reported: median ms/step over rounds, and the
  median over rounds of the per-round ratio dense_time / variant_time
  (``speedup_vs_dense``: > 1 means faster than dense);
* memory, two measures:
  - ``layer_bytes``: bytes of the layer's parameters + buffers (values, bias,
    index buffers incl. the CSR caches; for masked the weight and the bool mask).
    Exact and load-independent; proportional to nnz for the truly sparse layer;
  - ``step_peak_rss_mb``: in a fresh subprocess per (width, variant, density):
    ``ru_maxrss`` (peak resident set, KiB on Linux) after building the layer and
    running 2 fwd+bwd steps, minus ``ru_maxrss`` after ``import torch`` and
    creating the input batch. It is the increase of the process's high-water
    mark caused by the layer + its gradients + the step's temporaries (allocator
    caching included), i.e. what a training process would need on top of its
    baseline. Not affected by other processes' load.
* machine: torch threads are set explicitly (``--threads``) and recorded;
  ``os.getloadavg()`` is recorded at start, end and after every round (the
  machine is shared, so timings from a loaded round are visible as such).

Target (from the issue): at 1 % density and width >= 4,000 the truly sparse
layer is >= 10x faster than dense. The JSON is written atomically.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sparsenb.layers.truly_sparse import TrulySparseLinear  # noqa: E402
from sparsenb.experiments.truly_sparse import MaskedSquareLinear  # noqa: E402
from sparsenb.nb.record import write_json  # noqa: E402

DEFAULT_OUT = ROOT / "results" / "benchmarks" / "truly_sparse.json"
FULL = {"widths": [1000, 4000, 16000], "densities": [0.1, 0.01, 0.001], "batch": 128,
        "rounds": {1000: 7, 4000: 5, 16000: 3}, "steps": {1000: 20, 4000: 5, 16000: 1},
        "warmup": {1000: 5, 4000: 2, 16000: 1}}
QUICK = {"widths": [64, 256], "densities": [0.1, 0.01], "batch": 16,
         "rounds": {64: 2, 256: 2}, "steps": {64: 2, 256: 2}, "warmup": {64: 1, 256: 1}}
TARGET = {"density": 0.01, "min_width": 4000, "speedup": 10.0}


def build(variant: str, width: int, density: float, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    if variant == "dense":
        torch.manual_seed(seed)
        return nn.Linear(width, width)
    if variant == "masked":
        torch.manual_seed(seed)
        return MaskedSquareLinear(width, density, g)
    if variant == "sparse":
        return TrulySparseLinear(width, width, density=density, generator=g)
    raise ValueError(variant)


def layer_bytes(module: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in list(module.parameters()) + list(module.buffers()))


def step(module: nn.Module, x: torch.Tensor) -> None:
    for p in module.parameters():
        p.grad = None
    x.grad = None
    loss = module(x).square().mean()
    loss.backward()


def _maxrss_kib() -> int:
    """Peak RSS of this process in KiB: ``VmHWM`` of /proc/self/status (Linux). Not ``ru_maxrss``:
    on Linux a child started by fork+exec inherits the parent's ``ru_maxrss`` high-water mark."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child_memory(variant: str, width: int, density: float, batch: int, threads: int) -> dict:
    """Runs in a subprocess: peak-RSS increase of building the layer + 2 fwd+bwd steps."""
    torch.set_num_threads(threads)
    x = torch.randn(batch, width, requires_grad=True)
    base = _maxrss_kib()
    m = build(variant, width, density)
    for _ in range(2):
        step(m, x)
    peak = _maxrss_kib()
    return {"step_peak_rss_mb": (peak - base) / 1024, "baseline_rss_mb": base / 1024, "layer_bytes": layer_bytes(m)}


def measure_memory(variant: str, width: int, density: float, batch: int, threads: int) -> dict:
    code = ("import json,sys; sys.path.insert(0, %r); import importlib.util as u; "
            "s=u.spec_from_file_location('tsb', %r); m=u.module_from_spec(s); s.loader.exec_module(m); "
            "print(json.dumps(m.child_memory(%r, %d, %r, %d, %d)))"
            % (str(ROOT), str(Path(__file__).resolve()), variant, width, density, batch, threads))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_width(width: int, densities: list[float], batch: int, rounds: int, steps: int, warmup: int,
                log=print) -> dict[str, Any]:
    x = torch.randn(batch, width, requires_grad=True, generator=torch.Generator().manual_seed(1))
    mods = {"dense": build("dense", width, 1.0), "masked": build("masked", width, 0.01)}
    for d in densities:
        mods[f"sparse@{d:g}"] = build("sparse", width, d)
    names = list(mods)
    for n in names:
        for _ in range(warmup):
            step(mods[n], x)
    times: dict[str, list[float]] = {n: [] for n in names}
    loads = []
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            t0 = time.perf_counter()
            for _ in range(steps):
                step(mods[n], x)
            times[n].append((time.perf_counter() - t0) / steps * 1e3)
        loads.append(os.getloadavg()[0])
        log(f"  width {width} round {r + 1}/{rounds}: " + ", ".join(f"{n} {times[n][-1]:.2f}" for n in names)
            + f" ms (load {loads[-1]:.2f})")
    res = {"ms_per_step": {n: statistics.median(v) for n, v in times.items()},
           "ms_per_step_rounds": times, "loadavg_1min_rounds": loads,
           "speedup_vs_dense": {n: statistics.median(times["dense"][i] / times[n][i] for i in range(rounds))
                                for n in names if n != "dense"},
           "layer_bytes": {n: layer_bytes(m) for n, m in mods.items()},
           "nnz": {n: (m.nnz if isinstance(m, TrulySparseLinear) else
                       int(m.mask.sum()) if isinstance(m, MaskedSquareLinear) else width * width) for n, m in mods.items()}}
    del mods
    return res


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a test), not a measurement")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: on the shared 2-core machine 2 threads oversubscribe)")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--no-memory", action="store_true", help="skip the per-config subprocess memory runs")
    ap.add_argument("--only-memory", action="store_true",
                    help="keep the timings in --out and (re)measure only the memory (subprocesses)")
    args = ap.parse_args(argv)
    s = QUICK if args.quick else FULL
    if args.only_memory:
        data = json.loads(Path(args.out).read_text())
        for w, res in data["results"].items():
            w = int(w)
            mem = {"dense": measure_memory("dense", w, 1.0, s["batch"], args.threads),
                   "masked": measure_memory("masked", w, 0.01, s["batch"], args.threads)}
            for d in s["densities"]:
                mem[f"sparse@{d:g}"] = measure_memory("sparse", w, d, s["batch"], args.threads)
            res["step_peak_rss_mb"] = {n: m["step_peak_rss_mb"] for n, m in mem.items()}
        data["memory_measured"] = _dt.datetime.now().isoformat(timespec="seconds")
        write_json(args.out, data)
        print_table(data)
        return data
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    data: dict[str, Any] = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "cpu_model": platform.processor() or platform.machine(),
        "cores": os.cpu_count(), "loadavg_start": list(os.getloadavg()),
        "settings": {"quick": args.quick, "batch": s["batch"], "widths": s["widths"], "densities": s["densities"],
                     "rounds": {str(k): v for k, v in s["rounds"].items()},
                     "steps": {str(k): v for k, v in s["steps"].items()},
                     "warmup": {str(k): v for k, v in s["warmup"].items()},
                     "timed": "forward + backward (input, weight/values, bias grads), no optimizer step",
                     "memory": ("layer_bytes = bytes of parameters + buffers; step_peak_rss_mb = ru_maxrss increase "
                                "in a fresh subprocess (VmHWM) from (torch imported, input made) to (layer built + 2 fwd+bwd)")},
        "target": TARGET, "results": {}}
    for w in s["widths"]:
        print(f"width {w}")
        res = bench_width(w, s["densities"], s["batch"], s["rounds"][w], s["steps"][w], s["warmup"][w])
        if not args.no_memory:
            mem = {"dense": measure_memory("dense", w, 1.0, s["batch"], args.threads),
                   "masked": measure_memory("masked", w, 0.01, s["batch"], args.threads)}
            for d in s["densities"]:
                mem[f"sparse@{d:g}"] = measure_memory("sparse", w, d, s["batch"], args.threads)
            res["step_peak_rss_mb"] = {n: m["step_peak_rss_mb"] for n, m in mem.items()}
        data["results"][str(w)] = res
        write_json(args.out, data)
    met = {}
    for w, res in data["results"].items():
        key = f"sparse@{TARGET['density']:g}"
        if int(w) >= TARGET["min_width"] and key in res["speedup_vs_dense"]:
            met[w] = bool(res["speedup_vs_dense"][key] >= TARGET["speedup"])
    data["target_met"] = met
    data["loadavg_end"] = list(os.getloadavg())
    data["seconds"] = round(time.perf_counter() - t_start, 1)
    write_json(args.out, data)
    print_table(data)
    return data


def print_table(data: dict) -> None:
    print(f"\nthreads {data['threads']}, load {data['loadavg_start'][0]:.2f} -> {data['loadavg_end'][0]:.2f}")
    print(f"{'width':>6} {'variant':>14} {'ms/step':>10} {'x faster than dense':>20} {'layer MB':>10} {'peak RSS +MB':>13}")
    for w, res in data["results"].items():
        for n, ms in res["ms_per_step"].items():
            sp = res["speedup_vs_dense"].get(n, 1.0)
            rss = res.get("step_peak_rss_mb", {}).get(n, float("nan"))
            print(f"{w:>6} {n:>14} {ms:>10.2f} {sp:>20.2f} {res['layer_bytes'][n] / 2**20:>10.2f} {rss:>13.1f}")
    print("target met (1% density, width >= 4000, >= 10x):", data["target_met"])


if __name__ == "__main__":
    main()
