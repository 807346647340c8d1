"""Truly sparse vs dense vs masked-dense linear layers: fwd+bwd time at 1 and N threads, and memory.

Curci, Mocanu, Pechenizkiy (2021), "Truly Sparse Neural Networks at Scale", arXiv:2102.01732.

Usage (a few minutes on 2 cores; ``--quick``: seconds, for tests)::

    python benchmarks/truly_sparse.py [--quick] [--threads N] [--out FILE]

What is measured, for square layers ``width x width`` (1,024 / 4,096 / 16,384),
batch 128, float32, CPU:

* variants: ``dense`` (``nn.Linear``), ``masked`` (a dense weight times a bool
  mask in the forward, ``F.linear(x, W * mask, b)``; its cost does not depend on
  the density, so it is measured at 1 %), ``sparse``
  (:class:`sparsenb.layers.TrulySparseLinear`) at densities 10 % / 1 % / 0.1 %, and
  ``compiled`` (the same layer with ``compiled_transposes=True``: its transposed copies by a
  kernel ``torch.compile`` builds, see :mod:`sparsenb.layers.transpose`) at 1 %;
* time: one forward + backward (gradients of the input, the weights/values and the
  bias), no optimizer step, at 1 thread and at ``--threads`` (default: all cores),
  in two *contexts* that differ only in the memory layout of what comes in:

  - ``hidden``: the layer as a hidden layer of :class:`sparsenb.layers.TrulySparseMLP`
    sees it. The input is column-major (``(N, n)`` with strides ``(1, N)``: the layout
    in which the previous truly sparse layer writes its output) and the upstream
    gradient is given, column-major too (the layout of the next truly sparse layer's
    input gradient): ``y.backward(g)``.
  - ``standalone``: a drop-in for ``nn.Linear`` at the edge of a model. The input is a
    row-major leaf tensor and the loss is ``y.square().mean()``. The layer transposes
    the input in the forward and the loss's (row-major) gradient in the backward, and
    autograd transposes the input gradient back into the leaf's layout (three serial,
    memory-bound copies); the loss's elementwise kernels write fresh batch-sized buffers:
    all of that is time the second core hardly shortens.

  All variants of a width are built once; then interleaved rounds (order of variants
  rotating; each round times every variant in both contexts at every thread count, see
  ``benchmarks/common.py``). A timed block runs the profile's number of steps, more for fast
  variants: enough steps for the block to last ``min_block_s`` (0.2 s; the count per variant,
  from its fastest warm-up step, is ``steps_per_block`` in the JSON), so that a 5 ms step is
  timed in its steady state and not in the wake of the 100 ms dense step before it.
  Reported per context and thread count: median ms/step and ``speedup_vs_dense``
  (median of the per-round ratio dense / variant, with spread); per context and variant
  ``thread_scaling``: the median of the per-round ratio time(N threads) / time(1 thread)
  (0.5 = perfect);
* memory (``--no-memory`` skips it): ``layer_bytes`` (parameters + buffers, exact)
  and ``step_peak_rss_mb``: the increase of peak RSS (``VmHWM``) in a fresh
  subprocess from (torch imported, input made) to (layer built + 2 fwd+bwd);
* a whole model, for scale (no target): the training step (forward, cross-entropy, backward,
  SGD step) of a :class:`sparsenb.layers.TrulySparseMLP` 784-4096-4096-4096-10 whose hidden
  layers have 1 % density, on a row-major batch of 128 (``mlp`` in the JSON): its time at 1 and
  at N threads and their paired ratio, in rounds like the layers';
* the 1-minute load average after every round.

Targets (issue 14), each checked in both contexts: at 4,096^2 and 1 % density the
truly sparse layer is >= 10x faster than dense at the machine's thread count, and its
N-thread time is <= 0.6x its 1-thread time (checked for ``sparse`` and for ``compiled``);
at 16,384^2 and 0.1 % it is >= 20x faster than dense.
"""
from __future__ import annotations

import argparse
import json
import math
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

sys.path.insert(0, str(ROOT / "benchmarks"))
from common import (OUT_HELP, finish, load_avg, machine, machine_cores, output_path, paired_ratio,  # noqa: E402
                    write_progress, write_result)
from sparsenb.layers.truly_sparse import TrulySparseLinear, TrulySparseMLP  # noqa: E402
from sparsenb.experiments.truly_sparse import MaskedSquareLinear  # noqa: E402
from sparsenb.nb.perf_table import bound_within_quartiles  # noqa: E402

FULL = {"widths": [1024, 4096, 16384], "densities": [0.1, 0.01, 0.001], "compiled_densities": [0.01], "batch": 128,
        "rounds": {1024: 7, 4096: 7, 16384: 3}, "steps": {1024: 10, 4096: 3, 16384: 1},
        "warmup": {1024: 3, 4096: 1, 16384: 1}, "min_block_s": 0.2}
MLP_FULL = {"sizes": [784, 4096, 4096, 4096, 10], "density": 0.01, "batch": 128, "rounds": 9, "min_block_s": 0.5}
MLP_QUICK = {"sizes": [64, 128, 128, 10], "density": 0.1, "batch": 16, "rounds": 2, "min_block_s": 0.0}
QUICK = {"widths": [64, 256], "densities": [0.1, 0.01], "compiled_densities": [0.1], "batch": 16,
         "rounds": {64: 2, 256: 2}, "steps": {64: 2, 256: 2}, "warmup": {64: 1, 256: 1}, "min_block_s": 0.0}
CONTEXTS = {"hidden": "hidden layer of TrulySparseMLP: column-major input and upstream gradient",
            "standalone": "drop-in for nn.Linear: row-major input, loss y.square().mean()"}
# (variant, width, density, what, bound): speedup_vs_dense >= bound, or thread_scaling <= bound, at N threads;
# each is checked in every context
TARGETS = [{"variant": "sparse", "width": 4096, "density": 0.01, "what": "speedup_vs_dense", "bound": 10.0},
           {"variant": "sparse", "width": 16384, "density": 0.001, "what": "speedup_vs_dense", "bound": 20.0},
           {"variant": "sparse", "width": 4096, "density": 0.01, "what": "thread_scaling", "bound": 0.6},
           {"variant": "compiled", "width": 4096, "density": 0.01, "what": "thread_scaling", "bound": 0.6}]


def build(variant: str, width: int, density: float, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    if variant == "dense":
        torch.manual_seed(seed)
        return nn.Linear(width, width)
    if variant == "masked":
        torch.manual_seed(seed)
        return MaskedSquareLinear(width, density, g)
    if variant in ("sparse", "compiled"):
        return TrulySparseLinear(width, width, density=density, generator=g, compiled_transposes=variant == "compiled")
    raise ValueError(variant)


def layer_bytes(module: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in list(module.parameters()) + list(module.buffers()))


def step(module: nn.Module, x: torch.Tensor, grad_y: torch.Tensor | None = None) -> None:
    """One forward + backward: ``y.backward(grad_y)`` if an upstream gradient is given, else the loss
    ``y.square().mean()``. Gradients of the parameters and of ``x`` are cleared first."""
    for p in module.parameters():
        p.grad = None
    x.grad = None
    y = module(x)
    if grad_y is None:
        y.square().mean().backward()
    else:
        y.backward(grad_y)


def context_inputs(context: str, batch: int, width: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(x, grad_y)`` of a context (see the module docstring); ``grad_y`` is ``None`` for the loss."""
    g = torch.Generator().manual_seed(seed)
    if context == "standalone":
        return torch.randn(batch, width, requires_grad=True, generator=g), None
    if context == "hidden":  # (batch, width) views of (width, batch) row-major tensors: column-major
        x = torch.randn(width, batch, generator=g).t().requires_grad_()
        return x, torch.randn(width, batch, generator=g).t()
    raise ValueError(f"unknown context {context!r}; one of {sorted(CONTEXTS)}")


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


def steps_per_block(seconds_per_step: float, steps: int, min_block_s: float) -> int:
    """Steps timed in one block: at least ``steps``, and enough for the block to last ``min_block_s``.

    A block of a few milliseconds is dominated by what happened before it (caches and the heap
    left by another variant, a thread-count switch); timing fast variants over as long a block
    as slow ones measures their steady state, as in training, where a layer runs step after step.
    """
    return max(steps, math.ceil(min_block_s / max(seconds_per_step, 1e-6)))


def ms_per_step(fn, steps: int) -> float:
    """Milliseconds per call of ``fn`` over ``steps`` calls in a row."""
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / steps * 1e3


def bench_width(width: int, densities: list[float], batch: int, rounds: int, steps: int, warmup: int,
                thread_counts: list[int], min_block_s: float = 0.0, compiled_densities: list[float] = (),
                log=print) -> dict[str, Any]:
    inputs = {c: context_inputs(c, batch, width) for c in CONTEXTS}
    mods = {"dense": build("dense", width, 1.0), "masked": build("masked", width, 0.01)}
    for d in densities:
        mods[f"sparse@{d:g}"] = build("sparse", width, d)
    for d in compiled_densities:  # the same layer with compiled_transposes=True (its first step compiles)
        mods[f"compiled@{d:g}"] = build("compiled", width, d)
    names = list(mods)
    last: dict[str, float] = {}
    for t in thread_counts:
        torch.set_num_threads(t)
        for n in names:
            for c in CONTEXTS:
                for _ in range(warmup):
                    last[n] = min(last.get(n, math.inf), ms_per_step(lambda: step(mods[n], *inputs[c]), 1) / 1e3)
    n_steps = {n: steps_per_block(last[n], steps, min_block_s) for n in names}
    times = {c: {t: {n: [] for n in names} for t in thread_counts} for c in CONTEXTS}
    loads = []
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            for c in (list(CONTEXTS) if r % 2 == 0 else list(CONTEXTS)[::-1]):
                for t in (thread_counts if r % 2 == 0 else thread_counts[::-1]):
                    torch.set_num_threads(t)
                    times[c][t][n].append(ms_per_step(lambda: step(mods[n], *inputs[c]), n_steps[n]))
        load = load_avg()
        loads.append(load[0] if load else None)
        log(f"  width {width} round {r + 1}/{rounds}: " + " | ".join(
            f"{c} {t} thr: " + ", ".join(f"{n} {times[c][t][n][-1]:.2f}" for n in names)
            for c in CONTEXTS for t in thread_counts) + f" ms (load {loads[-1]})")
    t1, tn = thread_counts[0], thread_counts[-1]
    contexts = {}
    for c in CONTEXTS:
        per_threads = {}
        for t in thread_counts:
            spread = {n: paired_ratio(times[c][t]["dense"], times[c][t][n]) for n in names if n != "dense"}
            per_threads[str(t)] = {"ms_per_step": {n: statistics.median(v) for n, v in times[c][t].items()},
                                   "ms_per_step_rounds": times[c][t],
                                   "speedup_vs_dense": {n: s["median"] for n, s in spread.items()},
                                   "speedup_spread": spread}
        contexts[c] = {"threads": per_threads,
                       "thread_scaling": ({n: paired_ratio(times[c][tn][n], times[c][t1][n]) for n in names}
                                          if tn != t1 else {})}
    res = {"contexts": contexts, "loadavg_1min_rounds": loads, "steps_per_block": n_steps,
           "layer_bytes": {n: layer_bytes(m) for n, m in mods.items()},
           "nnz": {n: (m.nnz if isinstance(m, TrulySparseLinear) else
                       int(m.mask.sum()) if isinstance(m, MaskedSquareLinear) else width * width) for n, m in mods.items()}}
    del mods
    return res


def bench_mlp(sizes: list[int], density: float, batch: int, rounds: int, thread_counts: list[int],
              min_block_s: float, log=print) -> dict[str, Any]:
    """Training step of a TrulySparseMLP (hidden layers at ``density``) at each thread count, paired rounds."""
    g = torch.Generator().manual_seed(0)
    # the ER epsilon that gives the first square hidden layer (sizes[1] x sizes[2]) the wanted density
    eps = density * sizes[1] * sizes[2] / (sizes[1] + sizes[2])
    mlp = TrulySparseMLP(sizes, epsilon=eps, generator=g)
    opt = torch.optim.SGD(mlp.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, sizes[0], generator=g)
    target = torch.randint(0, sizes[-1], (batch,), generator=g)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(mlp(x), target).backward()
        opt.step()

    fastest = math.inf
    for t in thread_counts:
        torch.set_num_threads(t)
        for _ in range(2):
            fastest = min(fastest, ms_per_step(train_step, 1) / 1e3)
    n_steps = steps_per_block(fastest, 1, min_block_s)
    times: dict[int, list[float]] = {t: [] for t in thread_counts}
    loads = []
    for r in range(rounds):
        for t in (thread_counts if r % 2 == 0 else thread_counts[::-1]):
            torch.set_num_threads(t)
            times[t].append(ms_per_step(train_step, n_steps))
        load = load_avg()
        loads.append(load[0] if load else None)
        log(f"  MLP round {r + 1}/{rounds}: " + ", ".join(f"{t} thr {times[t][-1]:.2f}" for t in thread_counts)
            + f" ms (load {loads[-1]})")
    t1, tn = thread_counts[0], thread_counts[-1]
    return {"sizes": sizes, "density": [layer.nnz / (layer.in_features * layer.out_features) for layer in mlp.layers],
            "nnz": mlp.nnz(), "batch": batch, "steps_per_block": n_steps, "loadavg_1min_rounds": loads,
            "timed": "training step: forward, cross-entropy, backward, SGD(momentum) step; row-major input",
            "ms_per_step": {str(t): statistics.median(v) for t, v in times.items()},
            "ms_per_step_rounds": {str(t): v for t, v in times.items()},
            "thread_scaling": paired_ratio(times[tn], times[t1]) if tn != t1 else None}


def targets_met(data: dict) -> list[dict]:
    """Each target of :data:`TARGETS` in each context whose width and density were measured, with its
    value and verdict."""
    out = []
    top = str(data["threads"])
    for tg in TARGETS:
        res = data["results"].get(str(tg["width"]))
        key = f"{tg['variant']}@{tg['density']:g}"
        if res is None:
            continue
        for c, ctx in res["contexts"].items():
            if key not in ctx["threads"][top]["speedup_vs_dense"]:
                continue
            if tg["what"] == "speedup_vs_dense":
                value = ctx["threads"][top]["speedup_vs_dense"][key]
                met = value >= tg["bound"]
            else:
                if key not in ctx["thread_scaling"]:
                    continue
                value = ctx["thread_scaling"][key]["median"]
                met = value <= tg["bound"]
            out.append({**tg, "context": c, "threads": data["threads"], "value": value, "met": bool(met)})
    return out


def memory(width: int, densities: list[float], batch: int, threads: int) -> dict[str, float]:
    mem = {"dense": measure_memory("dense", width, 1.0, batch, threads),
           "masked": measure_memory("masked", width, 0.01, batch, threads)}
    for d in densities:
        mem[f"sparse@{d:g}"] = measure_memory("sparse", width, d, batch, threads)
    return {n: m["step_peak_rss_mb"] for n, m in mem.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a test), not a measurement")
    ap.add_argument("--threads", type=int, help="the N of '1 vs N threads' (default: all cores of the machine)")
    ap.add_argument("--out", help=OUT_HELP)
    ap.add_argument("--no-memory", action="store_true", help="skip the per-config subprocess memory runs")
    ap.add_argument("--widths", type=int, nargs="+", help="a subset of the profile's widths")
    ap.add_argument("--rounds", type=int, help="paired rounds per width (default: the profile's, 7 at 4,096); "
                    "more rounds narrow the median ratio on a machine whose speed drifts")
    args = ap.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        ap.error(f"--rounds must be >= 1, got {args.rounds}")
    out = output_path("truly_sparse", ap, args)
    s = dict(QUICK if args.quick else FULL)
    if args.widths:
        bad = set(args.widths) - set(s["widths"])
        if bad:
            ap.error(f"--widths {sorted(bad)} not in {s['widths']}")
        s["widths"] = args.widths
    if args.rounds:
        s["rounds"] = {w: args.rounds for w in s["rounds"]}
    threads = args.threads or machine_cores()
    thread_counts = sorted({1, threads})
    t_start = time.perf_counter()
    data: dict[str, Any] = {
        "benchmark": "truly_sparse", **machine(threads),
        "settings": {"quick": args.quick, "batch": s["batch"], "widths": s["widths"], "densities": s["densities"],
                     "compiled_densities": s["compiled_densities"],
                     "thread_counts": thread_counts,
                     "rounds": {str(k): v for k, v in s["rounds"].items()},
                     "steps": {str(k): v for k, v in s["steps"].items()},
                     "warmup": {str(k): v for k, v in s["warmup"].items()},
                     "min_block_s": s["min_block_s"],
                     "timed": "forward + backward (input, weight/values, bias grads), no optimizer step",
                     "contexts": CONTEXTS,
                     "memory": ("layer_bytes = bytes of parameters + buffers; step_peak_rss_mb = VmHWM increase "
                                "in a fresh subprocess from (torch imported, input made) to (layer built + 2 fwd+bwd)")},
        "targets": TARGETS, "results": {}}
    for w in s["widths"]:
        print(f"width {w}")
        res = bench_width(w, s["densities"], s["batch"], s["rounds"][w], s["steps"][w], s["warmup"][w], thread_counts,
                          s["min_block_s"], s["compiled_densities"])
        if not args.no_memory:
            res["step_peak_rss_mb"] = memory(w, s["densities"], s["batch"], threads)
        data["results"][str(w)] = res
        write_progress(out, data)
    m = MLP_QUICK if args.quick else MLP_FULL
    print(f"TrulySparseMLP {'-'.join(map(str, m['sizes']))}")
    data["mlp"] = bench_mlp(m["sizes"], m["density"], m["batch"], m["rounds"], thread_counts, m["min_block_s"])
    write_progress(out, data)
    torch.set_num_threads(threads)
    data["target_met"] = targets_met(data)
    data["seconds"] = round(time.perf_counter() - t_start, 1)
    finish(data, [x for r in data["results"].values() for x in r["loadavg_1min_rounds"]]
           + data["mlp"]["loadavg_1min_rounds"], threads)
    write_result(out, data)
    print_table(data)
    return data


def print_table(data: dict) -> None:
    print(f"\nload {data['load_avg_at_start'][0]:.2f} -> {data['load_avg_at_end'][0]:.2f}"
          + (" (machine busy: timings disturbed)" if data["machine_busy"] else ""))
    tcs = data["settings"]["thread_counts"]
    head = f"{'width':>6} {'context':>10} {'variant':>14} " + " ".join(
        f"{f'ms@{t}thr':>10} {f'x dense@{t}':>10}" for t in tcs)
    print(head + f" {'N/1 thr':>8} {'layer MB':>9}")
    for w, res in data["results"].items():
        for c, ctx in res["contexts"].items():
            for n in ctx["threads"][str(tcs[0])]["ms_per_step"]:
                cols = " ".join(f"{ctx['threads'][str(t)]['ms_per_step'][n]:>10.2f} "
                                f"{ctx['threads'][str(t)]['speedup_vs_dense'].get(n, 1.0):>10.2f}" for t in tcs)
                sc = ctx["thread_scaling"].get(n, {}).get("median", float("nan"))
                print(f"{w:>6} {c:>10} {n:>14} {cols} {sc:>8.2f} {res['layer_bytes'][n] / 2**20:>9.2f}")
    mlp = data["mlp"]
    print(f"TrulySparseMLP {'-'.join(map(str, mlp['sizes']))} training step: " + ", ".join(
        f"{t} thr {v:.2f} ms" for t, v in mlp["ms_per_step"].items())
        + (f", N/1 thr {mlp['thread_scaling']['median']:.2f}" if mlp["thread_scaling"] else ""))
    for t in data["target_met"]:
        ctx = data["results"][str(t["width"])]["contexts"][t["context"]]
        key = f"{t['variant']}@{t['density']:g}"
        s = (ctx["threads"][str(t["threads"])]["speedup_spread"][key] if t["what"] == "speedup_vs_dense"
             else ctx["thread_scaling"][key])
        edge = " (bound within quartiles)" if bound_within_quartiles(s, t["bound"]) else ""
        sign = ">=" if t["what"] == "speedup_vs_dense" else "<="
        print(f"target {t['what']} of {t['variant']} at {t['width']}^2, {t['density']:g}, {t['context']}: "
              f"{t['value']:.3f} (quartiles {s['q1']:.3f}-{s['q3']:.3f}; {sign} {t['bound']}) "
              f"-> {'met' if t['met'] else 'NOT met'}{edge}")


if __name__ == "__main__":
    main()
